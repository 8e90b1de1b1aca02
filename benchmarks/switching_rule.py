"""The rule that switches importance sampling on, put to the test: IS forced on beside it.

Per regime and seed, three runs from the same initial weights for the same CPU-time budget: uniform,
upper_bound deciding by its rule (tau > tau_th = 1 + a, the defaults of params.yaml) and upper_bound
with IS always on. One row per regime and variant: final accuracy on the whole test set, the paired
difference from uniform with its 95% interval, the IS share, tau and tau_th averaged over the run
(per iteration), and the speed-up the rule predicts, tau / (1 + a), averaged over the run: for the
always-on run both are measured on the presamples IS actually drew. The verdict of each regime:
the rule predicts IS pays when always-on's tau / (1 + a) exceeds 1; did always-on beat uniform beyond
the resolution, and did the rule end within resolution of the better of uniform and always-on?

Beside it, in every rule run, the tau of the training forward (`tau_training`, what the 2018 code
decides by) against the deciding tau of the trained batch scored as a presample is (`tau`), and the
training time at which each first exceeded tau_th: with BatchNorm they part once the data is nearly
memorised.

The budget is counted in CPU seconds of this process (300 = about 165 s of wall time on 2 cores;
REGIMES), so that other load on the machine shifts no run against another.
Usage: python -m benchmarks.switching_rule [--regimes memorise default wrn] [--seeds 0 1 2]
       (27 runs, about 75 minutes on 2 CPU cores)
"""

import argparse
import dataclasses
import math
import time
from pathlib import Path

import pandas as pd
import yaml

from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run
from isample.report.common import confidence_interval

# name -> (params.yaml overrides, CPU-seconds of budget). The per-epoch curves use a smaller test subset
# than params.yaml's, to keep the whole table within about 75 minutes on 2 cores; the final accuracy of
# every run is on the whole test set.
REGIMES = {
    "default": ({"data": {"test_subset": 1000}}, 300.0),  # 10,000 images with augmentation: still learning
    "memorise": ({"data": {"train_subset": 4000, "test_subset": 1000, "augment": False}}, 300.0),  # fits its data
    # The 2018 paper's network with the 2018 code's LayerNorm, short: 2,000 images, no augmentation.
    "wrn": (
        {
            "data": {"train_subset": 2000, "test_subset": 500, "augment": False},
            "model": {"name": "wrn28_2", "norm": "layer"},
        },
        150.0,
    ),
}
VARIANTS = ("uniform", "rule", "always_on")


def merged(base: dict, overrides: dict) -> dict:
    out = {**base}
    for key, value in overrides.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) else value
    return out


def weighted_mean(epochs: pd.DataFrame, column: str) -> float:
    """Per-iteration mean of an epoch-mean column over the epochs where it is known."""
    if column not in epochs:
        return math.nan
    known = epochs[column].notna()
    weights = epochs.loc[known, "iterations"]
    return float((epochs.loc[known, column] * weights).sum() / weights.sum()) if weights.sum() else math.nan


def first_above(epochs: pd.DataFrame, column: str, threshold) -> float:
    """Training seconds at the end of the first epoch whose mean `column` exceeded `threshold`."""
    above = epochs[column] > threshold
    return float(epochs.loc[above, "train_seconds"].iloc[0]) if above.any() else math.nan


def run_facts(run) -> dict:
    epochs = run.epochs
    facts = {
        "final_accuracy": run.final_accuracy,
        "epochs": len(epochs),
        "iterations": int(epochs["iterations"].sum()),
        "is_share": weighted_mean(epochs, "scored_share"),
        "tau": weighted_mean(epochs, "tau"),
        "tau_training": weighted_mean(epochs, "tau_training"),
        "tau_th": weighted_mean(epochs, "tau_threshold"),
        "a": weighted_mean(epochs, "a"),
        "predicted_speedup": weighted_mean(epochs, "predicted_speedup"),
        "tau_peak": float(epochs["tau"].max()),
    }
    if "tau_threshold" in epochs:
        on = epochs["scored_share"] > 0
        facts["first_on_s"] = float(epochs.loc[on, "train_seconds"].iloc[0]) if on.any() else math.nan
        facts["tau_training_peak"] = float(epochs["tau_training"].max())
        facts["training_tau_above_th_s"] = first_above(epochs, "tau_training", epochs["tau_threshold"])
    return facts


def interval_text(differences: list[float]) -> str:
    low, high = confidence_interval(differences)
    mean = sum(differences) / len(differences)
    return f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def regime_rows(regime: str, runs: pd.DataFrame) -> tuple[list[dict], dict]:
    """The table's rows for one regime (means over seeds), and its verdict."""
    accuracy = runs.pivot(index="seed", columns="variant", values="final_accuracy")
    rows = []
    for variant in VARIANTS:
        mine = runs[runs["variant"] == variant]
        differences = (accuracy[variant] - accuracy["uniform"]).tolist()
        rows.append(
            {
                "regime": regime,
                "variant": variant,
                "seeds": len(mine),
                "final_accuracy": mine["final_accuracy"].mean(),
                "minus_uniform_points": "" if variant == "uniform" else interval_text(differences),
                "is_share": mine["is_share"].mean(),
                "tau": mine["tau"].mean(),
                "tau_th": mine["tau_th"].mean(),
                "predicted_speedup": mine["predicted_speedup"].mean(),
            }
        )
    always = runs[runs["variant"] == "always_on"]
    forced = (accuracy["always_on"] - accuracy["uniform"]).tolist()
    low, high = confidence_interval(forced)
    outcome = "IS pays" if low > 0 else "IS loses" if high < 0 else "unresolved"
    predicted = always["predicted_speedup"].mean()
    better = "always_on" if accuracy["always_on"].mean() > accuracy["uniform"].mean() else "uniform"
    rule_gap = (accuracy["rule"] - accuracy[better]).tolist()
    verdict = {
        "regime": regime,
        "predicted_speedup_forced": predicted,
        "rule_predicts": "IS pays" if predicted > 1 else "IS loses",
        "forced_minus_uniform": interval_text(forced),
        "outcome": outcome,
        "rule_right": outcome == "unresolved" or (outcome == "IS pays") == (predicted > 1),
        "better_of_two": better,
        "rule_minus_better": interval_text(rule_gap),
        "rule_within_resolution": confidence_interval(rule_gap)[1] >= 0,
    }
    return rows, verdict


def train_variant(raw: dict, variant: str, seed: int, data, budget: float):
    params = validate(raw)
    method = "uniform" if variant == "uniform" else "upper_bound"
    spec = run_spec(params, method, f"{budget:g}s", seed)
    if variant == "always_on":
        spec = dataclasses.replace(spec, options=dataclasses.replace(spec.options, always_importance=True))
    return train_run(spec, data, progress=False, clock=time.process_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="to redo some runs")
    parser.add_argument("--merge", default=None, help="a facts CSV of an earlier run whose rows these runs replace")
    parser.add_argument("--cpu-budget-scale", type=float, default=1.0, help="multiplies every regime's budget")
    parser.add_argument("--out", default="benchmarks/switching_rule.csv", help="every run's facts")
    parser.add_argument("--epochs-dir", default=None, help="also write every run's epochs there as CSV")
    args = parser.parse_args()
    base = yaml.safe_load(Path("params.yaml").read_text())
    base["train"].pop("budgets", None)
    full = load_dataset(base["data"]["name"], base["data"]["root"], base["data"]["download"])
    facts = []
    for regime in args.regimes:
        overrides, budget = REGIMES[regime]
        budget *= args.cpu_budget_scale
        raw = merged(base, overrides)
        raw["train"].update(budget=f"{budget:g}s", seeds=args.seeds)
        data = subset(full, raw["data"]["train_subset"], raw["data"]["test_subset"])
        for seed in args.seeds:
            runs = {}
            for variant in args.variants:
                runs[variant] = run = train_variant(raw, variant, seed, data, budget)
                if args.epochs_dir:
                    Path(args.epochs_dir).mkdir(parents=True, exist_ok=True)
                    run.epochs.to_csv(Path(args.epochs_dir) / f"{regime}.{variant}.{seed}.csv", index=False)
                facts.append({"regime": regime, "variant": variant, "seed": seed, **run_facts(run)})
                if variant == "rule" and "uniform" in runs:  # uniform trained the same batches until IS switched on
                    uniform, rule = runs["uniform"].epochs, run.epochs
                    epochs = min(len(uniform), len(rule))
                    facts[-1]["uniform_tau_above_th_s"] = first_above(
                        uniform.iloc[:epochs], "tau", rule["tau_threshold"].iloc[:epochs].to_numpy()
                    )
                print(pd.DataFrame([facts[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
                pd.DataFrame(facts).to_csv(args.out, index=False)
    table = pd.DataFrame(facts)
    if args.merge:  # keep the earlier rows these runs did not redo
        earlier = pd.read_csv(args.merge)
        redone = earlier.set_index(["regime", "variant", "seed"]).index.isin(
            table.set_index(["regime", "variant", "seed"]).index
        )
        table = pd.concat([earlier[~redone], table], ignore_index=True)
        table.to_csv(args.out, index=False)
    summarize(table)


def summarize(facts: pd.DataFrame) -> None:
    rows, verdicts = [], []
    for regime, runs in facts.groupby("regime", sort=False):
        regime_table, verdict = regime_rows(regime, runs)
        rows += regime_table
        verdicts.append(verdict)
    print("\n" + pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print("\n" + pd.DataFrame(verdicts).to_markdown(index=False, floatfmt=".3f"))
    rule = facts[facts["variant"] == "rule"]
    columns = [
        "regime",
        "seed",
        "first_on_s",
        "training_tau_above_th_s",
        "uniform_tau_above_th_s",
        "tau_peak",
        "tau_training_peak",
        "tau_th",
    ]
    print("\nThe deciding tau (scoring mode) against the training forward's, in the rule's runs:")
    print(rule[columns].to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
