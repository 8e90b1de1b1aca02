"""Facts and rules of "All methods at equal time": every selection method against uniform, paired by seed,
at one budget (no wording here; `isample.report.text` words the rules)."""

import math

import pandas as pd

from isample.report.facts import MIN_SEEDS, UNIFORM, Facts, confidence_interval, time_to_accuracy
from isample.report.records import Run

TARGET_SHARES = (0.90, 0.95, 1.00)  # time to reach these shares of uniform's best (smoothed) test accuracy
SMOOTHING_EPOCHS = 3  # accuracy is a trailing mean over this many epochs, so one lucky epoch does not count


def smoothed_accuracy(epochs: pd.DataFrame) -> pd.Series:
    """Test accuracy as a trailing mean over SMOOTHING_EPOCHS epochs (fewer at the start)."""
    return epochs["test_accuracy"].rolling(SMOOTHING_EPOCHS, min_periods=1).mean()


def time_to_reach(epochs: pd.DataFrame, target: float) -> float:
    """Training seconds at the first epoch whose smoothed test accuracy reaches target (nan if never)."""
    return time_to_accuracy(epochs.assign(test_accuracy=smoothed_accuracy(epochs)), target)


def method_cost(timing: dict[str, pd.DataFrame] | None, method: str, presample: float | None) -> float:
    """a of `method` from results/timing.xlsx: its own row (upper_bound: the row of its presample ratio)."""
    if timing is None:
        return math.nan
    rows = timing["per_ratio"][timing["per_ratio"]["run"] == method]
    if presample is not None and "presample" in rows and (rows["presample"] == presample).any():
        rows = rows[rows["presample"] == presample]
    return float(rows["a"].iloc[0]) if len(rows) else math.nan


def compare_methods(runs: dict[str, list[Run]], timing: dict[str, pd.DataFrame] | None) -> Facts:
    """Per method: final and best test accuracy, the paired difference from uniform with its 95%
    interval, the cost a, and time to 90/95/100% of uniform's best smoothed accuracy as a ratio to
    uniform's own time; then the ranking and one verdict per method."""
    facts = Facts()
    uniform = {run.seed: run for run in runs.get(UNIFORM, [])}
    if not uniform:
        facts.missing.append(UNIFORM)
        return facts
    rows = []
    for method, method_runs in runs.items():
        healthy = [run for run in method_runs if not run.diverged]
        pairs = [(run, uniform[run.seed]) for run in healthy if run.seed in uniform and not uniform[run.seed].diverged]
        differences = [r.epochs["test_accuracy"].iloc[-1] - u.epochs["test_accuracy"].iloc[-1] for r, u in pairs]
        low, high = confidence_interval(differences)
        presample = float(method_runs[0].params["presample"]) if "presample" in method_runs[0].params else None
        row = {
            "method": method,
            "seeds": len(healthy),
            "diverged": len(method_runs) - len(healthy),
            "final": float(pd.Series([r.epochs["test_accuracy"].iloc[-1] for r in healthy]).mean()),
            "best": float(pd.Series([r.epochs["test_accuracy"].max() for r in healthy]).mean()),
            "difference": float(pd.Series(differences).mean()) if differences else math.nan,
            "ci_low": low,
            "ci_high": high,
            "pairs": len(pairs),
            "a": method_cost(timing, method, presample),
            "selection_share": float(pd.Series([r.epochs["is_iterations"].sum() / r.epochs["iterations"].sum()
                                                for r in healthy]).mean()),  # fmt: skip
        }
        for share in TARGET_SHARES:
            ratios = []
            for run, reference in pairs:
                target = share * smoothed_accuracy(reference.epochs).max()
                ratios.append(time_to_reach(run.epochs, target) / time_to_reach(reference.epochs, target))
            reached = [r for r in ratios if not math.isnan(r)]
            # A method that misses the target on any seed has no time for it: "not reached".
            row[f"time_{share:.2f}"] = float(pd.Series(reached).mean()) if ratios and len(reached) == len(ratios) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    facts.tables["methods"] = table
    others = table.drop(index=UNIFORM, errors="ignore")
    ranked = others.sort_values("difference", ascending=False)
    facts.numbers["ranking"] = ranked.index.tolist()
    for method, row in ranked.iterrows():
        # Rule: a direction needs MIN_SEEDS paired seeds and a 95% interval that excludes zero.
        if row["pairs"] < MIN_SEEDS:
            rule = "method_one_seed"
        elif row["ci_low"] > 0:
            rule = "method_better"
        elif row["ci_high"] < 0:
            rule = "method_worse"
        else:
            rule = "method_within_noise"
        facts.conclusions[f"method_{method}"] = (rule, {"method": method, "diff": 100 * row["difference"],
                                                        "low": 100 * row["ci_low"], "high": 100 * row["ci_high"],
                                                        "n": int(row["pairs"])})  # fmt: skip
    better = [m for m in ranked.index if facts.conclusions[f"method_{m}"][0] == "method_better"]
    if better:
        facts.conclusions["overall"] = ("methods_best", {"method": better[0]})
    elif len(ranked) and (ranked["pairs"] >= MIN_SEEDS).all():
        facts.conclusions["overall"] = ("methods_none_better", {})
    elif len(ranked):
        facts.conclusions["overall"] = ("methods_too_few_seeds", {})
    return facts
