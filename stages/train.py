"""train_is / train_uniform / train_peer@<method>: equal-budget runs of one selection method, one .xlsx
record per (budget, seed) under results/<method>/. A killed stage resumes: finished runs come back
from their checkpoints without training again."""

import argparse
import shutil

from dvclive import Live

from isample.distributed import SINGLE
from isample.experiment import launch
from isample.experiment.config import Params, with_budget
from isample.experiment.data import load_prepared
from isample.experiment.train import record_name, train_run
from isample.methods import METHODS
from isample.report.records import write_workbook
from stages.common import CHECKPOINT_DIR, RESULTS_DIR, StageError, prepared_path, replace_directory, run_stage

LOGGED = ("test_accuracy", "test_loss", "train_accuracy", "train_accuracy_weighted", "train_loss",
          "train_loss_weighted", "is_share", "tau_mean", "train_seconds")  # fmt: skip
CURVE_COLUMNS = ("epoch", "train_seconds", "lr", "test_accuracy", "test_loss", "train_loss",
                 "train_loss_weighted", "train_accuracy_weighted", "is_share", "tau_mean", "tau_th_mean")  # fmt: skip


def main(params: Params, method: str) -> None:
    device = launch.check_processes(params)  # before any process starts
    if params.train.processes > 1 and not launch.under_torchrun():
        code = launch.launch("stages.train", ["--method", method], params.train.processes, device)
        if code:
            raise StageError(f"a training process of {method} failed (torchrun exit code {code}; its report above "
                             "names the rank); rerun the stage to resume from the last checkpoint")  # fmt: skip
        return
    group = launch.join(device) if launch.under_torchrun() else SINGLE
    data = load_prepared(prepared_path(params))
    target = RESULTS_DIR / method
    staging = RESULTS_DIR / f".{method}.staging"
    if group.is_main:  # only rank 0 writes records, dvclive files and the results folder
        shutil.rmtree(staging, ignore_errors=True)
        live = Live(dir=str(staging / "live"), save_dvc_exp=False, dvcyaml=False)

    budgets = params.train.budget_list
    for budget in budgets:
        run_params = with_budget(params, budget)
        for position, seed in enumerate(params.train.seeds):
            # One budget: the historical names (seed0/test_accuracy); a sweep prefixes the budget.
            prefix = f"seed{seed}" if len(budgets) == 1 else f"{budget}/seed{seed}"

            def log_epoch(row: dict, prefix=prefix) -> None:
                if not group.is_main:
                    return
                live.step = int(row["epoch"])
                for name in LOGGED:
                    live.log_metric(f"{prefix}/{name}", float(row[name]))
                live.next_step()

            record = train_run(
                run_params,
                data,
                method=method,
                seed=seed,
                checkpoint_path=CHECKPOINT_DIR / method / f"{budget.replace(' ', '')}.seed{seed}.pt",
                on_epoch=log_epoch,
                group=group,
            )
            if not group.is_main:
                continue
            write_workbook(staging / record_name(run_params, method, seed), record.sheets())
            if position == 0 and budget == budgets[-1]:  # dvc plots: the longest budget's first seed
                record.epochs[list(CURVE_COLUMNS)].to_csv(staging / "curve.csv", index=False)
            final = record.epochs.iloc[-1]
            print(
                f"{method} {budget} seed {seed}: {record.status}, {len(record.epochs)} epochs, test accuracy "
                f"{final['test_accuracy']:.4f}, IS share {record.summary.set_index('metric').loc['is_share', 'final']:.2f}"
            )
    if group.is_main:
        live.end()
        replace_directory(staging, target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    method = parser.parse_args().method
    run_stage(lambda params: main(params, method))
