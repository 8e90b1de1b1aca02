"""train_is / train_uniform / train_peer@<method>: equal-budget runs of one selection method, one .xlsx
record per (budget, seed) under results/<method>/ (train_is: two with compare.forced_is, IS under its
rule and IS forced on). A killed stage resumes: finished runs come back
from their checkpoints without training again. SIGTERM or SIGUSR1 (a scheduler's preemption) stops
it after the current iteration with a checkpoint of the run in progress, which the rerun resumes."""

import argparse
import shutil
import threading

from dvclive import Live

from isample.distributed import SINGLE, end_process, exit_code, leave
from isample.experiment import launch
from isample.experiment.config import Params
from isample.experiment.prepared import load_prepared
from isample.experiment.runs import forced_specs, run_specs
from isample.experiment.tables import load_tables
from isample.experiment.train import Preempted, train_run
from isample.methods.catalog import CATALOG
from isample.report.records import EPOCH_COLUMNS, write_run
from stages.common import (
    CHECKPOINT_DIR,
    RESULTS_DIR,
    StageError,
    StageStopped,
    prepared_path,
    replace_directory,
    run_stage,
    stop_on_signals,
    tables_path,
)

STOP = threading.Event()  # set by SIGTERM or SIGUSR1

# Logged to dvclive and written to curve.csv (dvc plots): the record's columns, and the method's own metrics.
LOGGED = (
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_accuracy_weighted",
    "train_loss",
    "train_loss_weighted",
    "scored_share",
    "train_seconds",
)
CURVE_COLUMNS = (
    "epoch",
    "train_seconds",
    "lr",
    "test_accuracy",
    "test_loss",
    "train_loss",
    "train_loss_weighted",
    "train_accuracy_weighted",
    "scored_share",
)


def _launch_processes(params: Params, method: str) -> None:
    device = launch.check_processes(params)  # before any process starts
    code = launch.launch("stages.train", ["--method", method], params.train, device)
    if STOP.is_set():
        raise StageStopped(f"{method}: its processes saved a checkpoint; rerun the stage to resume from it")
    if code:
        where = " or another node went away" if params.train.nodes > 1 else ""
        raise StageError(
            f"a training process of {method} failed{where} (torchrun exit code {code}; its report above names "
            "the rank); rerun the stage (on every node) to resume from the last checkpoint"
        )


def method_tables(method: str, data, group=SINGLE) -> tuple[dict, float]:
    """The per-example tables the method reads and their cost in seconds ({} and 0 for most methods):
    rank 0's on every rank, since each node reads its own copy of the file."""
    names = CATALOG[method].tables
    if not names:
        return {}, 0.0
    return group.object_from(load_tables(tables_path(method), data, names, f"tables@{method}"))


def charged_specs(plain: list, method: str, charged: float) -> list:
    """Beside each run, the same run with its tables' cost charged to its budget (what a user training
    once pays), where the budget leaves time to train."""
    specs = [spec.charged(charged) for spec in plain if charged and spec.budget_seconds > charged]
    if charged and len(specs) < len(plain):
        print(f"{method}: its tables cost {charged:.0f} s, a budget or more: no charged run at those budgets")
    return specs


def main(params: Params, method: str) -> None:
    stop_on_signals(STOP)
    gpus = None if launch.under_torchrun() else launch.hold_gpus(params)  # noqa: F841 (held until the stage ends)
    if params.train.world_size > 1 and not launch.under_torchrun():
        if CATALOG[method].tables:  # a missing or foreign tables file: one line before any process starts
            method_tables(method, load_prepared(prepared_path(params)))
        return _launch_processes(params, method)
    group = launch.join(launch.check_processes(params)) if launch.under_torchrun() else SINGLE
    data = load_prepared(prepared_path(params))
    tables, charged = method_tables(method, data, group)
    plain = run_specs(params, method)
    specs = plain + charged_specs(plain, method, charged) + forced_specs(params, method)
    sweep = len(params.train.budget_list) > 1
    staging = RESULTS_DIR / f".{method}.staging"
    if group.is_local_main:  # each node's first process writes its copy of the records (rank 0's rows)
        shutil.rmtree(staging, ignore_errors=True)
        live = Live(dir=str(staging / "live"), save_dvc_exp=False, dvcyaml=False)
    for spec in specs:
        # One budget: the historical names (seed0/test_accuracy); a sweep prefixes the budget.
        prefix = f"{spec.budget}/seed{spec.seed}" if sweep else f"seed{spec.seed}"
        prefix = f"{spec.variant}/{prefix}" if spec.variant else prefix

        def log_epoch(row: dict, prefix=prefix) -> None:
            if group.is_local_main:
                live.step = int(row["epoch"])
                for name in [*LOGGED, *(key for key in row if key not in EPOCH_COLUMNS)]:
                    live.log_metric(f"{prefix}/{name}", float(row[name]))
                live.next_step()

        checkpoint = CHECKPOINT_DIR / spec.checkpoint_name
        try:
            run = train_run(
                spec,
                data,
                checkpoint_path=checkpoint,
                on_epoch=log_epoch,
                group=group,
                stop_requested=STOP.is_set,
                tables=tables,
            )
        except Preempted:
            raise StageStopped(
                f"{spec.title}: saved {checkpoint} after an iteration; rerun the stage to resume from it"
            ) from None
        if not group.is_local_main:
            continue
        run.params.update({"tables_seconds": f"{charged}"} if charged else {})  # what its tables cost: reported
        write_run(staging / spec.record_name, run)
        if spec is plain[len(plain) - len(params.train.seeds)]:  # dvc plots: the longest budget's first seed
            run.epochs[list(CURVE_COLUMNS)].to_csv(staging / "curve.csv", index=False)
        print(
            f"{spec.title}: {run.status}, {len(run.epochs)} epochs, "
            f"test accuracy {run.final['test_accuracy']:.4f}, chosen by score {run.scored_share:.2f}"
        )
    if group.is_local_main:
        live.end()
        replace_directory(staging, RESULTS_DIR / method)
    leave()  # under torchrun: every rank done, then the group goes (one process: nothing to leave)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=sorted(CATALOG), required=True)
    method = parser.parse_args().method
    if launch.under_torchrun():  # a torchrun process ends without finalization (`end_process` says why)
        end_process(exit_code(lambda: run_stage(lambda params: main(params, method))))
    run_stage(lambda params: main(params, method))
