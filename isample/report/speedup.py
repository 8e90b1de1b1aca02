"""Facts and rules of "Speed-up at equal accuracy": final test accuracy against budget, each budget run
with its own fully decayed schedule, and the budget a method needs to match uniform (Kaddour et al. 2023;
Arazo et al. 2021). No wording here."""

import math

import numpy as np
import pandas as pd

from isample.report.facts import MIN_SEEDS, UNIFORM, Facts, confidence_interval
from isample.report.records import Run

SAVES_TIME = 1.10  # a speed-up counts only when its interval lies above this (a saving under 10% is not one)


def budget_needed(budgets: list[float], accuracies: list[float], target: float) -> float:
    """The budget at which accuracy first reaches target, interpolated linearly in log(budget) between
    the two budgets around the crossing; nan when it is never reached. Reached already at the
    smallest budget: that budget (an upper bound on what is needed)."""
    order = np.argsort(budgets)
    budgets, accuracies = np.asarray(budgets, float)[order], np.asarray(accuracies, float)[order]
    for i, accuracy in enumerate(accuracies):
        if accuracy >= target:
            if i == 0:
                return float(budgets[0])
            below, above = accuracies[i - 1], accuracy
            fraction = (target - below) / (above - below)
            log_budget = math.log(budgets[i - 1]) + fraction * (math.log(budgets[i]) - math.log(budgets[i - 1]))
            return math.exp(log_budget)
    return math.nan


def final_accuracy(runs: list[Run]) -> pd.DataFrame:
    """One row per healthy run: method, budget (s), seed, final test accuracy."""
    return pd.DataFrame([{"method": run.method, "budget": run.budget_seconds, "seed": run.seed,
                          "accuracy": float(run.epochs["test_accuracy"].iloc[-1])}
                         for run in runs if not run.diverged],
                        columns=["method", "budget", "seed", "accuracy"])  # fmt: skip


def speedups(runs: list[Run]) -> Facts:
    """For each method and each of uniform's budgets: the budget the method needs to match uniform's
    final accuracy there, as a speed-up (uniform's budget / the method's), per seed and over seeds."""
    facts = Facts()
    table = final_accuracy(runs)
    facts.tables["final"] = table
    budgets = sorted(table["budget"].unique())
    facts.numbers["budgets"] = budgets
    if UNIFORM not in set(table["method"]):
        facts.missing.append(UNIFORM)
        return facts
    if len(budgets) < 2:
        # Rule: one budget gives no accuracy-against-budget curve, so no speed-up is drawn.
        facts.conclusions["speedup"] = ("speedup_one_budget", {})
        return facts
    uniform = table[table["method"] == UNIFORM]
    # Past the budget where uniform's mean final accuracy peaks, more time made uniform worse (over-
    # fitting, or a schedule too long for the data): matching it there says nothing about speed.
    uniform_curve = uniform.groupby("budget")["accuracy"].mean()
    past_peak = sorted(b for b in uniform_curve.index if b > uniform_curve.idxmax())
    facts.numbers["past_peak"] = past_peak
    rows = []
    for method in [m for m in table["method"].unique() if m != UNIFORM]:
        mine = table[table["method"] == method]
        for budget in sorted(uniform["budget"].unique()):
            per_seed = []
            for seed, reference in uniform[uniform["budget"] == budget].groupby("seed"):
                curve = mine[mine["seed"] == seed]
                if len(curve) < 2:
                    continue
                needed = budget_needed(curve["budget"].tolist(), curve["accuracy"].tolist(), reference["accuracy"].iloc[0])
                per_seed.append(budget / needed if not math.isnan(needed) else math.nan)
            reached = [s for s in per_seed if not math.isnan(s)]
            low, high = confidence_interval(reached) if len(reached) == len(per_seed) else (math.nan, math.nan)
            rows.append({
                "method": method, "budget": budget, "seeds": len(per_seed), "not_reached": len(per_seed) - len(reached),
                "speedup": float(np.mean(reached)) if reached and len(reached) == len(per_seed) else math.nan,
                "ci_low": low, "ci_high": high, "past_peak": budget in past_peak,
            })  # fmt: skip
    result = pd.DataFrame(rows)
    facts.tables["speedup"] = result
    if past_peak:
        facts.conclusions["past_peak"] = ("speedup_past_peak", {
            "budgets": ", ".join(f"{b:g}" for b in past_peak), "peak": float(uniform_curve.idxmax())})  # fmt: skip
    for method, group in result.groupby("method", sort=False) if len(result) else []:
        group = group[~group["past_peak"]]
        # Rule, over uniform's budgets up to its peak: saves time when every budget's interval lies
        # above SAVES_TIME; costs time when uniform's accuracy is out of reach on every seed at some
        # budget or an interval lies below 1; otherwise (some seeds reach it, some do not, or the
        # intervals straddle) it cannot be told apart from uniform. Intervals need MIN_SEEDS seeds.
        if (group["not_reached"] == group["seeds"]).any() or (group["ci_high"] < 1).any():
            rule = "speedup_costs_time"
        elif (group["not_reached"] > 0).any():
            rule = "speedup_within_noise"
        elif (group["seeds"] < MIN_SEEDS).any():
            rule = "speedup_one_seed"
        elif (group["ci_low"] > SAVES_TIME).all():
            rule = "speedup_saves_time"
        else:
            rule = "speedup_within_noise"
        median = float(group["speedup"].median()) if group["speedup"].notna().any() else math.nan
        facts.conclusions[f"speedup_{method}"] = (rule, {"method": method, "median": median})
    return facts
