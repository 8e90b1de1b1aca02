"""What happens when importance sampling switches on: each score mode and smoothing against uniform.

The default data and model (params.yaml) at lr 0.1 with the notebook's milestones [0.5, 0.75], so
that IS switches on before the first lr drop, for several seeds. Per run: when IS first switched
on; the largest one-epoch drop in test accuracy over the 8 epochs from then (uniform: over the same
span of training time); the importance-weighted train loss over the 3 epochs before and the 8 from
switch-on; the final test accuracy. Targets: weighted loss after <= before on every seed; mean IS
drop <= mean uniform drop + 3 points.
The budget is counted in CPU seconds of this process (`--cpu-budget`, 400 = about 200 s of wall
time on 2 cores), so that other load on the machine shifts no run against another: --jobs 1. About 4
minutes per run on 2 CPU cores. With `--records results` the same facts come from the pipeline's own
upper_bound and uniform records, paired by seed and budget: no training. Measured: docs/how-it-works.md.
"""

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.regimes import curves, data_of, params_of, read_curves, train_timed
from isample.names import IMPORTANCE
from isample.report.records import read_run

AFTER, BEFORE = 8, 3
CURVES = (
    "train_seconds",
    "test_accuracy",
    "scored_share",
    "train_loss_weighted",
    "train_accuracy_weighted",
    "train_accuracy",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cpu-budget", type=float, default=400.0)
    parser.add_argument(
        "--variants", nargs="+", default=["eval:0", "eval:0.1", "batch:0", "batch:0.1"], help="score_mode:smoothing"
    )


def grid(args) -> list[dict]:
    return [{"variant": variant, "seed": seed} for seed in args.seeds for variant in ["uniform", *args.variants]]


def train(point: dict, args) -> dict:
    changes = {"train": {"lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    if point["variant"] != "uniform":
        mode, smoothing = point["variant"].split(":")
        changes["sampler"] = {"score_mode": mode, "smoothing": float(smoothing)}
    method = "uniform" if point["variant"] == "uniform" else "upper_bound"
    run, _, seconds = train_timed(
        params_of("params", changes), method, point["seed"], data_of("params"), clock="cpu", budget=args.cpu_budget
    )
    return {
        "run_status": run.status,
        "final": run.final_accuracy,
        "run_seconds": seconds,
        "curves": curves(run, CURVES),
    }


def largest_drop(epochs: pd.DataFrame) -> float:
    """Largest fall of test accuracy from one epoch to the next within `epochs` (and its predecessor)."""
    accuracy = epochs["test_accuracy"].tolist()
    return max([accuracy[i - 1] - accuracy[i] for i in range(1, len(accuracy))] + [0.0])


def switch_on_facts(is_epochs: pd.DataFrame, uniform_epochs: pd.DataFrame) -> dict:
    on = is_epochs.index[is_epochs["scored_share"] > 0]
    facts = {"final_is": is_epochs["test_accuracy"].iloc[-1], "final_uniform": uniform_epochs["test_accuracy"].iloc[-1]}
    if not len(on):
        return {**facts, "switch_on_s": math.nan}
    first = is_epochs.index.get_loc(on[0])
    span = is_epochs.iloc[max(first - 1, 0) : first + AFTER]  # the epoch before, so the first drop counts
    start, end = span["train_seconds"].iloc[0], span["train_seconds"].iloc[-1]
    uniform_span = uniform_epochs[(uniform_epochs["train_seconds"] >= start) & (uniform_epochs["train_seconds"] <= end)]
    return {
        **facts,
        "switch_on_s": is_epochs["train_seconds"].iloc[first],
        "is_share_after": is_epochs["scored_share"].iloc[first : first + AFTER].mean(),
        "drop_is": largest_drop(span),
        "drop_uniform": largest_drop(uniform_span),
        "weighted_loss_before": is_epochs["train_loss_weighted"].iloc[max(first - BEFORE, 0) : first].mean(),
        "weighted_loss_after": is_epochs["train_loss_weighted"].iloc[first : first + AFTER].mean(),
        "weighted_accuracy_after": is_epochs["train_accuracy_weighted"].iloc[first : first + AFTER].mean(),
        "plain_accuracy_after": is_epochs["train_accuracy"].iloc[first : first + AFTER].mean(),
    }


def from_records(results: Path) -> pd.DataFrame:
    """One row per (budget, seed) the pipeline trained with both upper_bound under its rule and uniform (IS
    forced on, `compare.forced_is`, switches on at its first iteration: it says nothing of the switch)."""
    uniform = {(run.budget_seconds, run.seed): run for run in map(read_run, (results / "uniform").glob("*.xlsx"))}
    rows = []
    for run in sorted(
        (run for run in map(read_run, (results / "upper_bound").glob("*.xlsx")) if run.arm == IMPORTANCE),
        key=lambda r: (r.budget_seconds, r.seed),
    ):
        reference = uniform.get((run.budget_seconds, run.seed))
        if reference is not None:
            facts = switch_on_facts(run.epochs, reference.epochs)
            facts.update(final_is=run.final_accuracy, final_uniform=reference.final_accuracy)
            rows.append(
                {"variant": f"records {run.budget_seconds:g}s", "seed": run.seed, "status": run.status, **facts}
            )
    return pd.DataFrame(rows)


def from_facts(facts: pd.DataFrame) -> pd.DataFrame:
    """One row per IS run: its switch-on facts against the uniform run of its seed."""
    uniform = {row["seed"]: read_curves(row["curves"]) for _, row in facts[facts["variant"] == "uniform"].iterrows()}
    rows = []
    for _, row in facts[facts["variant"] != "uniform"].iterrows():
        if row["seed"] in uniform:
            facts_of_run = switch_on_facts(read_curves(row["curves"]), uniform[row["seed"]])
            rows.append({"variant": row["variant"], "seed": row["seed"], "status": row["status"], **facts_of_run})
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant, over the seeds where IS switched on (a seed where it never did has nothing to judge)."""
    on = table[table["switch_on_s"].notna()].copy()
    if on.empty:
        return pd.DataFrame({"note": ["IS never switched on in these runs: nothing to judge"]})
    on["loss_not_higher"] = on["weighted_loss_after"] <= on["weighted_loss_before"]
    summary = on.groupby("variant", sort=False).agg(
        seeds_on=("seed", "count"),
        switch_on_s=("switch_on_s", "mean"),
        is_share_after=("is_share_after", "mean"),
        drop_is=("drop_is", "mean"),
        drop_uniform=("drop_uniform", "mean"),
        loss_not_higher_on_every_seed=("loss_not_higher", "all"),
    )
    finals = table.groupby("variant", sort=False)[["final_is", "final_uniform"]].mean()
    summary = summary.join(finals, how="right")
    summary["drop_target_met"] = summary["drop_is"] <= summary["drop_uniform"] + 0.03
    return summary


def tables(facts: pd.DataFrame, args) -> list:
    table = from_facts(facts)
    return [("per run:", table), ("means over seeds:", summarize(table).reset_index())]


STUDY = Study(
    name="switch_on",
    doc=__doc__,
    keys=("variant", "seed"),
    grid=grid,
    train=train,
    summarize=tables,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"cpu_budget": args.cpu_budget},
    estimate_seconds=lambda point, args: args.cpu_budget / 2 + 40,
)

if __name__ == "__main__":
    if "--records" in sys.argv:  # the pipeline's records, no training
        records = from_records(Path(sys.argv[sys.argv.index("--records") + 1]))
        print("per run:\n" + records.to_markdown(index=False, floatfmt=".3f"))
        print("\nmeans over seeds:\n" + summarize(records).to_markdown(floatfmt=".3f"))
    else:
        main(STUDY)
