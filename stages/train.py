"""train_is / train_uniform: equal-budget runs, one .xlsx record per seed under results/<run>/."""

import argparse
import shutil

from dvclive import Live

from isample.config import Params
from isample.data import load_prepared
from isample.records import write_workbook
from isample.train import train_run, record_name
from stages.common import CHECKPOINT_DIR, RESULTS_DIR, prepared_path, replace_directory, run_stage

LOGGED = ("test_accuracy", "test_loss", "train_accuracy", "train_loss", "train_loss_weighted", "is_share",
          "tau_mean", "train_seconds")  # fmt: skip
CURVE_COLUMNS = ("epoch", "train_seconds", "lr", "test_accuracy", "test_loss", "train_loss",
                 "train_loss_weighted", "is_share", "tau_mean", "tau_th_mean")  # fmt: skip


def main(params: Params, run: str) -> None:
    importance = run == "is"
    data = load_prepared(prepared_path(params))
    target = RESULTS_DIR / run
    staging = RESULTS_DIR / f".{run}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    live = Live(dir=str(staging / "live"), save_dvc_exp=False, dvcyaml=False)

    for position, seed in enumerate(params.train.seeds):

        def log_epoch(row: dict, seed=seed) -> None:
            live.step = int(row["epoch"])
            for name in LOGGED:
                live.log_metric(f"seed{seed}/{name}", float(row[name]))
            live.next_step()

        record = train_run(
            params,
            data,
            importance=importance,
            seed=seed,
            checkpoint_path=CHECKPOINT_DIR / run / f"seed{seed}.pt",
            on_epoch=log_epoch,
        )
        write_workbook(staging / record_name(params, importance, seed), record.sheets())
        if position == 0:  # dvc plots draws the first seed's curve against training time
            record.epochs[list(CURVE_COLUMNS)].to_csv(staging / "curve.csv", index=False)
        final = record.epochs.iloc[-1]
        print(
            f"{run} seed {seed}: {len(record.epochs)} epochs, test accuracy {final['test_accuracy']:.4f}, "
            f"IS share {record.summary.set_index('metric').loc['is_share', 'final']:.2f}"
        )
    live.end()
    replace_directory(staging, target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", choices=["is", "uniform"], required=True)
    run = parser.parse_args().run
    run_stage(lambda params: main(params, run))
