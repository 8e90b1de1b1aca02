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

The budget is counted in CPU seconds of this process (300 = about 165 s of wall time on 2 cores), so
that other load on the machine shifts no run against another: still measured time, so --jobs 1.
27 runs, about 100 minutes on 2 CPU cores. Measured: docs/switching-rule.md.
"""

import argparse
import math

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.paired import interval_text
from benchmarks.regimes import curves, data_of, first_above, params_of, read_curves, run_facts, train_timed
from isample.report.common import confidence_interval

BUDGETS = {"default_cpu": 300.0, "memorise_cpu": 300.0, "wrn_cpu": 150.0}  # regime -> CPU seconds
VARIANTS = ("uniform", "rule", "always_on")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--cpu-budget-scale", type=float, default=1.0, help="multiplies every regime's budget")


def grid(args) -> list[dict]:
    return [
        {"regime": regime, "variant": variant, "seed": seed}
        for regime in args.regimes
        for seed in args.seeds
        for variant in args.variants
    ]


def train(point: dict, args) -> dict:
    regime = point["regime"]
    run, _, seconds = train_timed(
        params_of(regime),
        "uniform" if point["variant"] == "uniform" else "upper_bound",
        point["seed"],
        data_of(regime),
        clock="cpu",
        budget=BUDGETS[regime] * args.cpu_budget_scale,
        options={"always_importance": True} if point["variant"] == "always_on" else None,
    )
    # uniform trained the rule run's batches until IS switched on: the summary sets their epochs side by side
    return {**run_facts(run), "run_seconds": seconds, "curves": curves(run, ("train_seconds", "tau", "tau_threshold"))}


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


def uniform_tau_above_th_s(runs: pd.DataFrame, rule: pd.Series) -> float:
    """When the uniform run of the same seed first had tau above the rule run's threshold (epoch by epoch)."""
    uniform = runs[(runs["variant"] == "uniform") & (runs["seed"] == rule["seed"])]
    if uniform.empty or not isinstance(rule.get("curves"), str):
        return math.nan
    uniform, threshold = read_curves(uniform["curves"].iloc[0]), read_curves(rule["curves"])["tau_threshold"]
    epochs = min(len(uniform), len(threshold))
    return first_above(uniform.iloc[:epochs], "tau", threshold.iloc[:epochs].to_numpy())


def summarize(facts: pd.DataFrame, args=None) -> list:
    rows, verdicts, rules = [], [], []
    for regime, runs in facts.groupby("regime", sort=False):
        regime_table, verdict = regime_rows(regime, runs)
        rows += regime_table
        verdicts.append(verdict)
        for _, rule in runs[runs["variant"] == "rule"].iterrows():
            rules.append({**rule.to_dict(), "uniform_tau_above_th_s": uniform_tau_above_th_s(runs, rule)})
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
    return [
        ("", pd.DataFrame(rows)),
        ("", pd.DataFrame(verdicts)),
        (
            "The deciding tau (scoring mode) against the training forward's, in the rule's runs:",
            pd.DataFrame(rules, columns=columns),
        ),
    ]


STUDY = Study(
    name="switching_rule",
    doc=__doc__,
    keys=("regime", "variant", "seed"),
    grid=grid,
    train=train,
    summarize=summarize,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"cpu_budget_scale": args.cpu_budget_scale},
    estimate_seconds=lambda point, args: 0.75 * BUDGETS[point["regime"]] * args.cpu_budget_scale,
)

if __name__ == "__main__":
    main(STUDY)
