"""presample: auto against fixed presample ratios, at an equal priced and an equal wall budget.

Per regime, clock and seed, from the same initial weights: uniform; upper_bound with IS forced on at
p = 2, 3, 5 and 7 (the notebook's exp. 8); IS forced on at the ratio `presample: auto` chooses (bound 7,
the grid's largest); and, with the priced clock, auto and p = 2 each by their own rule. IS is forced on
so that the comparison is of the ratio, not of whether IS runs: at this CPU's prices (a = 0.25 per unit
of p) the rules keep IS off in both regimes, and every variant would be uniform.

The priced clock prices a scored example so that a(2) = --a2 of a training step (default 0.1: a GPU
whose presample is cheap), every ratio in proportion; the wall clock pays what this machine measures.
Run the priced clock anywhere (the runs are deterministic: two or three side by side, one thread each);
the wall clock one run at a time on a quiet machine.

Per regime, clock and variant: final test accuracy minus uniform's, minus the best fixed p's and minus
the median fixed p's (paired by seed, 95% intervals), the share of IS iterations at each ratio and the
ratio's mean, and two speed-ups from the measured tau and a: the 2018 one auto chooses by, and the
two-stage one, which counts the presample's own variance. The issue's goal: auto never worse than the
best fixed p beyond the resolution, and better than the median fixed p. Measured: docs/presample-auto.md.

Usage: python -m benchmarks.presample_auto [--regimes memorised_1k default] [--clocks priced wall]
       [--seeds 0 1 2] [--budget 60] [--a2 0.1] [--out benchmarks/presample_auto.csv] [--summary-only]
"""

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.break_even import REGIMES
from benchmarks.switching_rule import interval_text, merged, run_facts
from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run
from isample.methods.presample_ratio import candidate_ratios
from isample.report.common import confidence_interval

FIXED = (2.0, 3.0, 5.0, 7.0)
BOUND = 7.0
# name -> (method, presample, IS forced on); the rule's variants run under the priced clock only.
VARIANTS = {
    "uniform": ("uniform", 2.0, False),
    **{f"p{p:g}": ("upper_bound", p, True) for p in FIXED},
    "auto": ("upper_bound", "auto", True),
    "rule_p2": ("upper_bound", 2.0, False),
    "rule_auto": ("upper_bound", "auto", False),
}
RULE_VARIANTS = ("rule_p2", "rule_auto")


def score_price(raw: dict, a2: float) -> float:
    """The price per scored example at which a presample of 2b costs a2 training steps."""
    prices, b = raw["train"]["prices"], raw["batch_size"]
    train_step = b * (prices["forward"] + prices["backward"]) + prices["iteration"]
    return a2 * train_step / (2 * b)


def train_variant(raw: dict, variant: str, clock: str, seed: int, data, budget: float, a2: float) -> dict:
    method, presample, forced = VARIANTS[variant]
    changes = {"presample": presample, "sampler": {"presample_max": BOUND}, "train": {"clock": clock}}
    changes["train"]["budget"] = f"{budget:g}s"
    if clock == "priced":
        changes["train"]["prices"] = {"score": score_price(raw, a2)}
    spec = run_spec(validate(merged(raw, changes)), method, f"{budget:g}s", seed)
    if forced:
        spec = dataclasses.replace(spec, options=dataclasses.replace(spec.options, always_importance=True))
    started = time.perf_counter()
    run = train_run(spec, data, progress=False)
    epochs = run.epochs
    scored = epochs["iterations"] * epochs.get("scored_share", 0.0)  # IS iterations per epoch
    facts = {**run_facts(run), "run_seconds": time.perf_counter() - started}
    if method == "uniform":
        return facts
    if presample == "auto":  # its records have a share column per ratio; a fixed ratio's run is all at one
        ratios = {p: (epochs[f"presample_share_{p:g}"].fillna(0) * scored).sum() for p in candidate_ratios(BOUND)}
    else:
        ratios = {p: float(p == presample) * scored.sum() for p in candidate_ratios(BOUND)}
    total = sum(ratios.values())
    return {
        **facts,
        "mean_ratio": sum(p * n for p, n in ratios.items()) / total if total else math.nan,
        **{f"share_p{p:g}": n / total if total else math.nan for p, n in ratios.items()},
    }


def two_stage_speedup(tau: float, ratio: float, a: float) -> float:
    """IS's batch against a uniform batch of b by the variance of their gradient estimates, per unit of
    price. IS's estimate varies twice: its presample is a uniform sample of p b (1 / p of a uniform batch's
    variance), and b are drawn from it with replacement (1 / tau^2 of a uniform draw's from the same
    presample, where the scores are the gradient norms and their mean is small against them). The 2018
    speed-up, tau / (1 + a), leaves out the first, which is largest at small p."""
    return 1.0 / ((1.0 / ratio + 1.0 / tau**2) * (1.0 + a))


def paired(runs: pd.DataFrame, variant: str, reference: pd.Series) -> list[float]:
    mine = runs[runs["variant"] == variant].set_index("seed")["final_accuracy"]
    seeds = mine.index.intersection(reference.dropna().index)
    return (mine.loc[seeds] - reference.loc[seeds]).tolist()


def summarize(facts: pd.DataFrame) -> pd.DataFrame:
    """Per regime, clock and variant: against uniform, the best and the median fixed p, seed by seed."""
    rows = []
    for (regime, clock), runs in facts.groupby(["regime", "clock"], sort=False):
        accuracy = runs.pivot(index="seed", columns="variant", values="final_accuracy")
        fixed = [f"p{p:g}" for p in FIXED if f"p{p:g}" in accuracy]
        best = max(fixed, key=lambda v: accuracy[v].mean()) if fixed else None
        median = accuracy[fixed].median(axis=1) if fixed else pd.Series(dtype=float)
        for variant, group in runs.groupby("variant", sort=False):
            against = {"uniform": accuracy.get("uniform"), "best_fixed": accuracy.get(best), "median_fixed": median}
            row = {"regime": regime, "clock": clock, "variant": variant, "seeds": len(group)}
            row["final_accuracy"] = group["final_accuracy"].mean()
            row["iterations"] = group["iterations"].mean()
            for name, reference in against.items():
                differences = [] if reference is None or variant == name else paired(runs, variant, reference)
                row[f"minus_{name}"] = interval_text(differences) if len(differences) > 1 else ""
                row[f"minus_{name}_mean"] = statistics.fmean(differences) if differences else math.nan
                low, high = confidence_interval(differences) if len(differences) > 1 else (math.nan, math.nan)
                row[f"minus_{name}_low"], row[f"minus_{name}_high"] = low, high
            row["best_fixed"] = best
            shares = (c for c in runs if c.startswith("share_p"))
            for column in ("mean_ratio", *shares, "is_share", "tau", "a", "predicted_speedup"):
                row[column] = group[column].mean() if column in group else math.nan
            row["two_stage_speedup"] = two_stage_speedup(row["tau"], row["mean_ratio"], row["a"])
            rows.append(row)
    return pd.DataFrame(rows)


def goals(table: pd.DataFrame) -> pd.DataFrame:
    """Per regime and clock: is auto (forced) within resolution of the best fixed p, and above the median?"""
    auto = table[table["variant"] == "auto"]
    return pd.DataFrame(
        {
            "regime": auto["regime"],
            "clock": auto["clock"],
            "best_fixed": auto["best_fixed"],
            "auto_minus_best": auto["minus_best_fixed"],
            "never_worse_than_best": auto["minus_best_fixed_high"] >= 0,
            "auto_minus_median": auto["minus_median_fixed"],
            "above_median": auto["minus_median_fixed_low"] > 0,
            "above_median_by_the_mean": auto["minus_median_fixed_mean"] > 0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimes", nargs="+", default=["memorised_1k", "default"], choices=list(REGIMES))
    parser.add_argument("--clocks", nargs="+", default=["priced", "wall"], choices=["priced", "wall"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run, priced or wall")
    parser.add_argument("--a2", type=float, default=0.1, help="priced clock: a presample of 2b in training steps")
    parser.add_argument("--out", default="benchmarks/presample_auto.csv", help="every run's facts (resumes)")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    facts = pd.read_csv(args.out) if args.summary_only else _train_all(args)
    table = summarize(facts)
    shown = [c for c in table.columns if not c.endswith(("_low", "_high", "_mean"))]
    shown = [c for c in shown if not (c.startswith("share_p") and table[c].fillna(0).eq(0).all())]  # never chosen
    print("\n" + table[shown].to_markdown(index=False, floatfmt=".3f"))
    print("\n" + goals(table).to_markdown(index=False, floatfmt=".3f"))


def _train_all(args) -> pd.DataFrame:
    base = yaml.safe_load(Path("params.yaml").read_text())
    base["train"].pop("budgets", None)
    full = load_dataset(base["data"]["name"], base["data"]["root"], base["data"]["download"])
    # Runs already in --out are kept (a priced run's record is the same every time; a wall one is rerun by
    # deleting its row).
    facts = pd.read_csv(args.out).to_dict("records") if Path(args.out).is_file() else []
    done = {(row["regime"], row["clock"], row["variant"], int(row["seed"])) for row in facts}
    for regime in args.regimes:
        raw = merged(base, REGIMES[regime])
        data = subset(full, raw["data"]["train_subset"], raw["data"]["test_subset"])
        for clock in args.clocks:
            for seed in args.seeds:
                for variant in args.variants:
                    if (regime, clock, variant, seed) in done or (clock == "wall" and variant in RULE_VARIANTS):
                        continue
                    run = train_variant(raw, variant, clock, seed, data, args.budget, args.a2)
                    facts.append({"regime": regime, "clock": clock, "variant": variant, "seed": seed, **run})
                    print(pd.DataFrame([facts[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
                    pd.DataFrame(facts).to_csv(args.out, index=False)
    return pd.DataFrame(facts)


if __name__ == "__main__":
    main()
