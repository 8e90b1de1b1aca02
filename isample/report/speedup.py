"""Section 5, "Speed-up at equal accuracy": final test accuracy against budget, each budget run with its
own fully decayed schedule, and the budget a method needs to match uniform (Kaddour et al. 2023; Arazo
et al. 2021): its facts, its named rules and its words."""

import math

import numpy as np
import pandas as pd

from isample.names import UNIFORM
from isample.report.common import (
    MIN_SEEDS,
    SWEEP_COMMAND,
    Facts,
    Section,
    confidence_interval,
    figure_lines,
    method_name,
    missing_lines,
    number,
    table,
)
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
    return pd.DataFrame(
        [
            {
                "method": run.arm,
                "budget": run.budget_seconds,
                "seed": run.seed,
                "accuracy": float(run.epochs["test_accuracy"].iloc[-1]),
            }
            for run in runs
            if not run.diverged
        ],
        columns=["method", "budget", "seed", "accuracy"],
    )


def speedup_rows(method: str, mine: pd.DataFrame, uniform: pd.DataFrame, past_peak: list[float]) -> list[dict]:
    """Per budget of uniform: the method's speed-up to uniform's final accuracy there, over seeds."""
    rows = []
    for budget in sorted(uniform["budget"].unique()):
        per_seed = []
        for seed, reference in uniform[uniform["budget"] == budget].groupby("seed"):
            curve = mine[mine["seed"] == seed]
            if len(curve) >= 2:
                needed = budget_needed(
                    curve["budget"].tolist(), curve["accuracy"].tolist(), reference["accuracy"].iloc[0]
                )
                per_seed.append(budget / needed if not math.isnan(needed) else math.nan)
        reached = [s for s in per_seed if not math.isnan(s)]
        complete = bool(reached) and len(reached) == len(per_seed)
        low, high = confidence_interval(reached) if complete else (math.nan, math.nan)
        rows.append(
            {
                "method": method,
                "budget": budget,
                "seeds": len(per_seed),
                "not_reached": len(per_seed) - len(reached),
                "speedup": float(np.mean(reached)) if complete else math.nan,
                "ci_low": low,
                "ci_high": high,
                "past_peak": budget in past_peak,
            }
        )
    return rows


def speedup_rule(group: pd.DataFrame) -> str:
    """Over uniform's budgets up to its peak: saves time when every budget's interval lies above
    SAVES_TIME; costs time when uniform's accuracy is out of reach on every seed at some budget or an
    interval lies below 1; otherwise (some seeds reach it, some do not, or the intervals straddle) it
    cannot be told apart from uniform. Intervals need MIN_SEEDS seeds."""
    if (group["not_reached"] == group["seeds"]).any() or (group["ci_high"] < 1).any():
        return "speedup_costs_time"
    if (group["not_reached"] > 0).any():
        return "speedup_within_noise"
    if (group["seeds"] < MIN_SEEDS).any():
        return "speedup_one_seed"
    return "speedup_saves_time" if (group["ci_low"] > SAVES_TIME).all() else "speedup_within_noise"


def speedups(runs: list[Run]) -> Facts:
    """For each method and each of uniform's budgets: the budget the method needs to match uniform's
    final accuracy there, as a speed-up (uniform's budget / the method's), per seed and over seeds."""
    facts = Facts()
    facts.tables["final"] = final = final_accuracy(runs)
    budgets = facts.numbers["budgets"] = sorted(final["budget"].unique())
    if UNIFORM not in set(final["method"]):
        facts.missing.append(UNIFORM)
        return facts
    if len(budgets) < 2:  # one budget gives no accuracy-against-budget curve, so no speed-up is drawn
        facts.conclusions["speedup"] = ("speedup_one_budget", {})
        return facts
    uniform = final[final["method"] == UNIFORM]
    # Past the budget where uniform's mean final accuracy peaks, more time made uniform worse (over-
    # fitting, or a schedule too long for the data): matching it there says nothing about speed.
    curve = uniform.groupby("budget")["accuracy"].mean()
    past_peak = facts.numbers["past_peak"] = sorted(b for b in curve.index if b > curve.idxmax())
    methods = [m for m in final["method"].unique() if m != UNIFORM]
    rows = [row for m in methods for row in speedup_rows(m, final[final["method"] == m], uniform, past_peak)]
    facts.tables["speedup"] = result = pd.DataFrame(rows)
    if past_peak:
        budgets_text = ", ".join(f"{b:g}" for b in past_peak)
        facts.conclusions["past_peak"] = ("speedup_past_peak", {"budgets": budgets_text, "peak": float(curve.idxmax())})
    for method, group in result.groupby("method", sort=False) if len(result) else []:
        group = group[~group["past_peak"]]
        median = float(group["speedup"].median()) if group["speedup"].notna().any() else math.nan
        facts.conclusions[f"speedup_{method}"] = (speedup_rule(group), {"method": method, "median": median})
    return facts


def section(words: dict, runs: list[Run], figures: dict) -> Section:
    facts = speedups(runs)
    out = [words["s5"], ""] + missing_lines(words, facts)
    if facts.missing:
        return Section(out, missing=facts.missing)
    metrics, headline = {}, {}
    result = facts.tables.get("speedup")
    if result is not None and len(result):
        final = facts.tables["final"]
        uniform = final[final["method"] == UNIFORM].groupby("budget")["accuracy"].mean()
        rows = [
            [
                method_name(words, r.method),
                f"{r.budget:g}" + (" †" if r.past_peak else ""),
                number(uniform.get(r.budget, math.nan)),
                words["not_reached"] if math.isnan(r.speedup) else f"{r.speedup:.2f}",
                f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if not math.isnan(r.ci_low) else "-",
                int(r.not_reached),
            ]
            for r in result.itertuples()
        ]
        out += [table(words["cols_speedup"], rows), "", words["speedup_note"], ""]
        concluded = result[~result["past_peak"]]  # the budgets the verdicts use
        metrics["speedup"] = headline["speedup"] = {
            method: float(group["speedup"].median()) if group["speedup"].notna().all() else None
            for method, group in concluded.groupby("method")
        }
    out += [words["conclusion"], ""]
    for rule, values in facts.conclusions.values():
        out.append(f"- {words[rule].format(name=method_name(words, values.get('method', '')), **values)}")
    out += [""] + figure_lines(words, figures, ("accuracy_vs_budget",))
    return Section(out, metrics, headline=headline)


TEXT = {
    "en": {
        "s5": "## 5. Speed-up at equal accuracy",
        "cols_speedup": [
            "method",
            "uniform's budget (s)",
            "uniform's final accuracy",
            "speed-up",
            "95% interval",
            "seeds not reaching it",
        ],
        "speedup_note": "Each budget ran with its own learning-rate schedule, fully decayed within it. For each of "
        "uniform's budgets, the budget a method needs to reach uniform's final test accuracy there is "
        "interpolated on the log-budget axis between the method's own budgets; the speed-up is "
        "uniform's budget over that one (above 1: the method needs less time). A target already reached "
        "at the smallest budget gives a lower bound. Per seed, then the mean and its interval. † marks a "
        "budget past the one where uniform's own accuracy peaks.",
        "speedup_one_budget": "Only one budget ran, so there is no accuracy-against-budget curve and no speed-up is "
        f"drawn. Run several, each with its own schedule: `{SWEEP_COMMAND}`.",
        "speedup_saves_time": "{name} saves time: at every budget of uniform its speed-up interval lies above "
        f"{SAVES_TIME:g} (median speed-up {{median:.2f}}).",
        "speedup_costs_time": "{name} costs time: at some budget no seed reaches uniform's accuracy within the budgets "
        "run, or its speed-up interval lies below 1.",
        "speedup_within_noise": "{name} cannot be told apart from uniform in time to equal accuracy (some seeds reach "
        "uniform's accuracy and some do not, or the intervals straddle 1).",
        "speedup_past_peak": "Uniform's final accuracy is highest at {peak:g} s and lower at {budgets} s: more training "
        "time made it worse (over-fitting, or a schedule too long for the data), so the speed-ups "
        "at those budgets are shown but not used for any conclusion.",
        "speedup_one_seed": "{name}: median speed-up {median:.2f} from one seed; a conclusion needs intervals over "
        "several seeds.",
    },
    "zh": {
        "s5": "## 5. 等精度下的加速比",
        "cols_speedup": ["方法", "均匀采样预算（秒）", "均匀采样最终精度", "加速比", "95% 区间", "未达到的种子数"],
        "speedup_note": "每个预算使用各自的学习率计划，并在该预算内完全衰减。对均匀采样的每个预算，在对数预算轴上于该方法自己的预算之间插值，"
        "得到其达到均匀采样最终测试精度所需的预算；加速比为均匀采样预算除以该预算（大于 1 表示更省时间）。"
        "在最小预算处已达到的目标给出下界。先按种子计算，再取均值及其区间。† 表示超过均匀采样自身精度峰值的预算。",
        "speedup_one_budget": f"只运行了一个预算，因此没有精度-预算曲线，不给出加速比。请运行多个预算（各自的学习率计划）：`{SWEEP_COMMAND}`。",
        "speedup_saves_time": f"{{name}} 节省时间：在均匀采样的每个预算上，其加速比区间都高于 {SAVES_TIME:g}（加速比中位数 {{median:.2f}}）。",
        "speedup_costs_time": "{name} 耗费更多时间：在某个预算上，没有种子在所运行的预算内达到均匀采样的精度，或其加速比区间低于 1。",
        "speedup_within_noise": "{name} 在达到相同精度所需时间上无法与均匀采样区分（部分种子达到均匀采样的精度而部分没有，或区间跨越 1）。",
        "speedup_past_peak": "均匀采样的最终精度在 {peak:g} 秒时最高，在 {budgets} 秒时更低：更多训练时间反而更差（过拟合，或学习率计划对该数据过长），"
        "因此这些预算上的加速比仅列出，不用于任何结论。",
        "speedup_one_seed": "{name}：单个种子的加速比中位数为 {median:.2f}；结论需要多个种子的区间。",
    },
}
RULES = {
    "en": [
        f"Speed-up: over uniform's budgets up to the one where its accuracy peaks, a method saves time when every 95% "
        f"interval of its speed-up lies above {SAVES_TIME:g}, and costs time when no seed reaches uniform's accuracy at "
        "some budget or an interval lies below 1.",
    ],
    "zh": [
        f"加速比：在均匀采样精度达到峰值及之前的预算上，若其加速比的 95% 区间都高于 {SAVES_TIME:g}，则该方法节省时间；"
        "若在某个预算上没有种子达到均匀采样的精度，或某个区间低于 1，则耗费时间。",
    ],
}
