"""What happens when importance sampling switches on: each score mode and smoothing against uniform.

The default data and model (params.yaml) at lr 0.1 with the notebook's milestones [0.5, 0.75], so
that IS switches on before the first lr drop, for several seeds. Per run: when IS first switched
on; the largest one-epoch drop in test accuracy over the 8 epochs from then (uniform: over the same
span of training time); the importance-weighted train loss over the 3 epochs before and the 8 from
switch-on; the final test accuracy. Targets: weighted loss after <= before on every seed; mean IS
drop <= mean uniform drop + 3 points.
The budget is counted in CPU seconds of this process (`--cpu-budget`, 400 = about 200 s of wall
time on 2 cores), so that other load on the machine shifts no run against another.
Usage: python -m benchmarks.switch_on [--seeds 0 1 2] [--cpu-budget 400]
       [--variants eval:0 eval:0.1 batch:0 batch:0.1]   (about 4 minutes per run on 2 CPU cores)
       python -m benchmarks.switch_on --records results   (the same facts from the pipeline's own
       upper_bound and uniform records, paired by seed and budget: no training)
"""

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import yaml

from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.prepared import load_prepared
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run
from isample.report.records import read_run

AFTER, BEFORE = 8, 3


def default_data(params):
    prepared = Path(f"data/prepared/{params.data.name}.pt")
    if prepared.is_file():
        return load_prepared(prepared)
    data = load_dataset(params.data.name, params.data.root, params.data.download)
    return subset(data, params.data.train_subset, params.data.test_subset)


def single_run(params, data, method: str, seed: int, **keywords):
    """train_run of the one budget params.yaml gives, for `method` and `seed`."""
    return train_run(run_spec(params, method, params.train.budget_list[0], seed), data, **keywords)


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
    """One row per (budget, seed) the pipeline trained with both upper_bound and uniform."""
    uniform = {(run.budget_seconds, run.seed): run for run in map(read_run, (results / "uniform").glob("*.xlsx"))}
    rows = []
    for run in sorted(
        map(read_run, (results / "upper_bound").glob("*.xlsx")), key=lambda r: (r.budget_seconds, r.seed)
    ):
        reference = uniform.get((run.budget_seconds, run.seed))
        if reference is not None:
            facts = switch_on_facts(run.epochs, reference.epochs)
            facts.update(final_is=run.final_accuracy, final_uniform=reference.final_accuracy)
            rows.append(
                {"variant": f"records {run.budget_seconds:g}s", "seed": run.seed, "status": run.status, **facts}
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cpu-budget", type=float, default=400.0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["eval:0", "eval:0.1", "batch:0", "batch:0.1"],
        help="score_mode:smoothing pairs",
    )
    parser.add_argument("--out", default="benchmarks/switch_on.csv")
    parser.add_argument("--epochs-dir", default=None, help="also write every run's epochs there as CSV")
    parser.add_argument("--records", type=Path, default=None, help="read the pipeline's records there instead")
    args = parser.parse_args()
    if args.records is not None:
        table = from_records(args.records)
        print("per run:\n" + table.to_string(index=False, float_format="%.3f"))
        print("\nmeans over seeds:\n" + summarize(table).to_string(float_format="%.3f"))
        return
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].pop("budgets", None)
    raw["train"].update(budget=f"{args.cpu_budget:g}s", lr=0.1, lr_milestones=[0.5, 0.75], seeds=args.seeds)
    base = validate(raw)
    data = default_data(base)
    rows = []
    for seed in args.seeds:
        uniform = single_run(base, data, "uniform", seed, progress=False, clock=time.process_time).epochs
        if args.epochs_dir:
            Path(args.epochs_dir).mkdir(parents=True, exist_ok=True)
            uniform.to_csv(Path(args.epochs_dir) / f"uniform.{seed}.csv", index=False)
        for variant in args.variants:
            mode, smoothing = variant.split(":")
            raw["sampler"].update(score_mode=mode, smoothing=float(smoothing))
            record = single_run(validate(raw), data, "upper_bound", seed, progress=False, clock=time.process_time)
            if args.epochs_dir:
                record.epochs.to_csv(Path(args.epochs_dir) / f"{variant.replace(':', '_')}.{seed}.csv", index=False)
            row = {"variant": variant, "seed": seed, "status": record.status, **switch_on_facts(record.epochs, uniform)}
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    print("\nper run:\n" + table.to_string(index=False, float_format="%.3f"))
    print("\nmeans over seeds:\n" + summarize(table).to_string(float_format="%.3f"))


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


if __name__ == "__main__":
    main()
