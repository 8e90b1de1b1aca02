"""train_is / train_uniform: equal-budget runs of one selection method, one .xlsx record per seed under
results/<method>/."""

import argparse
import shutil

from dvclive import Live

from isample.experiment.config import Params
from isample.experiment.data import load_prepared
from isample.report.records import write_workbook
from isample.experiment.train import record_name, train_run
from isample.methods import METHODS
from stages.common import CHECKPOINT_DIR, RESULTS_DIR, prepared_path, replace_directory, run_stage

LOGGED = ("test_accuracy", "test_loss", "train_accuracy", "train_accuracy_weighted", "train_loss",
          "train_loss_weighted", "is_share", "tau_mean", "train_seconds")  # fmt: skip
CURVE_COLUMNS = ("epoch", "train_seconds", "lr", "test_accuracy", "test_loss", "train_loss",
                 "train_loss_weighted", "train_accuracy_weighted", "is_share", "tau_mean", "tau_th_mean")  # fmt: skip


def main(params: Params, method: str) -> None:
    data = load_prepared(prepared_path(params))
    target = RESULTS_DIR / method
    staging = RESULTS_DIR / f".{method}.staging"
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
            method=method,
            seed=seed,
            checkpoint_path=CHECKPOINT_DIR / method / f"seed{seed}.pt",
            on_epoch=log_epoch,
        )
        write_workbook(staging / record_name(params, method, seed), record.sheets())
        if position == 0:  # dvc plots draws the first seed's curve against training time
            record.epochs[list(CURVE_COLUMNS)].to_csv(staging / "curve.csv", index=False)
        final = record.epochs.iloc[-1]
        print(
            f"{method} seed {seed}: {record.status}, {len(record.epochs)} epochs, test accuracy "
            f"{final['test_accuracy']:.4f}, IS share {record.summary.set_index('metric').loc['is_share', 'final']:.2f}"
        )
    live.end()
    replace_directory(staging, target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    method = parser.parse_args().method
    run_stage(lambda params: main(params, method))
