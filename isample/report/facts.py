"""The report's facts and the named rules that turn them into conclusions (no wording here).

Every conclusion is a (rule, values) pair drawn by an explicit rule over the records' numbers,
with its thresholds named below; `isample.report.text` words each rule in English and Chinese.
"""

import math
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats

from isample.report.records import Run

IMPORTANCE, UNIFORM = "upper_bound", "uniform"  # the two methods the notebook compares
NOTEBOOK_A_PER_P = {2: 0.55 / 2, 5: 1.25 / 5}  # experiment 8: presample time / training time per p
SHARP_CHANGE = 0.5  # an IS-share change at an lr milestone counts when it is over half the larger share
MIN_SHARE = 0.05  # ...and that larger share is at least this (a few stray IS iterations are not a regime)
LINEAR_R2 = 0.95  # presample time is linear in p when the fit's R^2 reaches this
PROPORTIONAL_INTERCEPT = 0.1  # ...and proportional when |intercept| is at most this share of the largest time
NON_MODEL_NEGLIGIBLE = 0.05  # non-model time can be ignored at most this share of an iteration
STRONG_CORRELATION = 0.7
PREDICTION_TOLERANCE = 0.10
MIN_SEEDS = 2  # paired seeds needed before a difference gets a direction
MIN_RATIOS = 2  # presample ratios needed before a line is fitted through them


def time_to_accuracy(epochs: pd.DataFrame, target: float) -> float:
    """Training seconds at the first epoch whose test accuracy reaches target (nan if never)."""
    reached = epochs[epochs["test_accuracy"] >= target]
    return float(reached["train_seconds"].iloc[0]) if len(reached) else math.nan


def _final(run: Run) -> dict:
    last = run.epochs.iloc[-1]
    iterations = run.epochs["iterations"].sum()
    return {
        "train_accuracy": float(last["train_accuracy"]),
        "train_accuracy_weighted": float(last["train_accuracy_weighted"]),
        "train_loss": float(last["train_loss"]),
        "train_loss_weighted": float(last["train_loss_weighted"]),
        "test_accuracy": float(last["test_accuracy"]),
        "test_loss": float(last["test_loss"]),
        "best_test_accuracy": float(run.epochs["test_accuracy"].max()),
        "train_seconds": float(last["train_seconds"]),
        "epochs": len(run.epochs),
        "is_share": float(run.epochs["is_iterations"].sum() / iterations) if iterations else 0.0,
    }


def confidence_interval(differences: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of paired differences (nan with fewer than two)."""
    n = len(differences)
    if n < 2:
        return math.nan, math.nan
    mean = sum(differences) / n
    sd = pd.Series(differences).std()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@dataclass
class Facts:
    """Numbers the conclusions are drawn from, and the conclusions as (rule, values) pairs."""

    numbers: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    conclusions: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)


def compare_runs(is_runs: list[Run], uniform_runs: list[Run]) -> Facts:
    """Experiments 1-3: the equal-time comparison, paired by seed."""
    facts = Facts()
    if not is_runs:
        facts.missing.append(IMPORTANCE)
    if not uniform_runs:
        facts.missing.append(UNIFORM)
    rows = [{"method": run.method, "seed": run.seed, "status": run.status, **_final(run)} for run in is_runs + uniform_runs]
    table = pd.DataFrame(rows)
    facts.tables["per_seed"] = table
    if facts.missing:
        return facts
    diverged = [run for run in is_runs + uniform_runs if run.diverged]
    if diverged:
        # Rule: a diverged run has no final accuracy worth comparing; that it diverged is the result.
        facts.numbers["diverged"] = [(run.method, run.seed, run.status) for run in diverged]
        facts.conclusions["diverged"] = ("runs_diverged", {})
        return facts
    uniform_by_seed = {run.seed: run for run in uniform_runs}
    pairs = [(run, uniform_by_seed[run.seed]) for run in is_runs if run.seed in uniform_by_seed]
    if not pairs:
        facts.missing.append("paired seeds")
        return facts
    differences, loss_differences, tta_rows = [], [], []
    for importance_run, uniform_run in pairs:
        importance_final, uniform_final = _final(importance_run), _final(uniform_run)
        target = uniform_final["test_accuracy"]
        tta_rows.append(
            {
                "seed": importance_run.seed,
                "target": target,
                IMPORTANCE: time_to_accuracy(importance_run.epochs, target),
                UNIFORM: time_to_accuracy(uniform_run.epochs, target),
            }
        )
        differences.append(importance_final["test_accuracy"] - target)
        loss_differences.append(importance_final["test_loss"] - uniform_final["test_loss"])
    facts.tables["time_to_accuracy"] = pd.DataFrame(tta_rows)
    means = table.groupby("method").mean(numeric_only=True)
    spreads = table.groupby("method").std(numeric_only=True)
    facts.tables["mean"], facts.tables["spread"] = means, spreads
    low, high = confidence_interval(differences)
    difference = sum(differences) / len(differences)
    facts.numbers.update(
        seeds=len(pairs),
        accuracy_difference=difference,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        loss_difference=sum(loss_differences) / len(loss_differences),
        is_share=float(means.loc[IMPORTANCE, "is_share"]),
        is_test_accuracy=float(means.loc[IMPORTANCE, "test_accuracy"]),
        uniform_test_accuracy=float(means.loc[UNIFORM, "test_accuracy"]),
    )
    uniform_epochs = pd.concat([run.epochs["train_seconds"].diff() for run in uniform_runs])
    epoch_seconds = float(uniform_epochs.median()) if uniform_epochs.notna().any() else math.nan
    tta = facts.tables["time_to_accuracy"]
    facts.numbers.update(
        epoch_seconds=epoch_seconds,
        time_to_accuracy_is=float(tta[IMPORTANCE].mean()),
        time_to_accuracy_uniform=float(tta[UNIFORM].mean()),
    )
    # Rule: regime. IS that never switched on compares two uniform runs: their gap is the noise level,
    # and no claim about IS against uniform can be drawn.
    share = facts.numbers["is_share"]
    if share == 0:
        gap = 100 * sum(abs(d) for d in differences) / len(differences)
        if len(uniform_runs) >= MIN_SEEDS:  # the spread between seeds is the noise level
            spread = 100 * float(pd.Series([_final(run)["test_accuracy"] for run in uniform_runs]).std())
            facts.conclusions["regime"] = ("regime_off", {"gap": gap, "spread": spread})
        else:
            facts.conclusions["regime"] = ("regime_off_one_seed", {"gap": gap})
        return facts
    facts.conclusions["regime"] = ("regime_partial" if share < 0.5 else "regime_on", {})
    # Rule: a direction (higher, sooner, fitted worse) needs at least MIN_SEEDS paired seeds.
    if len(pairs) < MIN_SEEDS:
        facts.conclusions["accuracy"] = ("one_seed", {})
        return facts
    if low > 0:
        rule = "accuracy_is_better"
    elif high < 0:
        rule = "accuracy_is_worse"
    else:
        rule = "accuracy_within_noise"
    facts.conclusions["accuracy"] = (rule, {})
    # Rule: train metrics are compared with the sampling bias undone (weighted by 1 / (B q_i)); the
    # plain accuracy on hard-example batches looks like a collapse when nothing collapsed.
    is_mean, uniform_mean = means.loc[IMPORTANCE], means.loc[UNIFORM]
    weighted_lower = is_mean["train_accuracy_weighted"] < uniform_mean["train_accuracy_weighted"]
    weighted_loss_higher = is_mean["train_loss_weighted"] > uniform_mean["train_loss_weighted"]
    plain_lower = is_mean["train_accuracy"] < uniform_mean["train_accuracy"]
    if weighted_lower and weighted_loss_higher:
        facts.conclusions["train_metrics"] = ("train_fit_worse", {})
    elif plain_lower:
        facts.conclusions["train_metrics"] = ("train_accuracy_misleading", {})
    else:
        facts.conclusions["train_metrics"] = ("train_fit_not_worse", {})
    # Rule: time to reach the uniform run's final test accuracy; a gap under one epoch is no gap,
    # since accuracy is only measured at epoch ends.
    if tta[IMPORTANCE].isna().any():
        facts.conclusions["time_to_accuracy"] = ("tta_never", {"never": int(tta[IMPORTANCE].isna().sum())})
    else:
        gap = facts.numbers["time_to_accuracy_is"] - facts.numbers["time_to_accuracy_uniform"]
        if not abs(gap) >= epoch_seconds:
            facts.conclusions["time_to_accuracy"] = ("tta_same", {})
        else:
            facts.conclusions["time_to_accuracy"] = ("tta_faster" if gap < 0 else "tta_slower", {})
    return facts


def lr_activation(is_runs: list[Run]) -> Facts:
    """Experiments 3-5: when IS switched on and off, and its share before and after each lr change."""
    facts = Facts()
    if not is_runs:
        facts.missing.append(IMPORTANCE)
        return facts
    rows, sharp = [], False
    for run in is_runs:
        epochs = run.epochs
        active = epochs[epochs["is_iterations"] > 0]
        first_on = float(active["train_seconds"].iloc[0]) if len(active) else math.nan
        switched_off = epochs[(epochs["is_iterations"] == 0) & (epochs["is_iterations"].shift(1) > 0)]
        segment = (epochs["lr"] != epochs["lr"].shift(1)).cumsum()
        segments = epochs.groupby(segment).agg(
            lr=("lr", "first"),
            start=("train_seconds", "first"),
            is_iterations=("is_iterations", "sum"),
            iterations=("iterations", "sum"),
        )
        segments["is_share"] = segments["is_iterations"] / segments["iterations"]
        for (_, before), (_, after) in zip(segments.iloc[:-1].iterrows(), segments.iloc[1:].iterrows()):
            larger = max(before["is_share"], after["is_share"])
            changed = larger >= MIN_SHARE and abs(after["is_share"] - before["is_share"]) > SHARP_CHANGE * larger
            sharp |= changed
            rows.append(
                {
                    "seed": run.seed,
                    "lr_before": before["lr"],
                    "lr_after": after["lr"],
                    "at_seconds": after["start"],
                    "is_share_before": before["is_share"],
                    "is_share_after": after["is_share"],
                    "sharp_change": changed,
                }
            )
        facts.numbers.setdefault("first_on_seconds", []).append(first_on)
        facts.numbers.setdefault("switched_off_seconds", []).append(switched_off["train_seconds"].tolist())
    facts.tables["milestones"] = pd.DataFrame(rows)
    if not rows:
        facts.conclusions["lr"] = ("lr_constant", {})
    else:
        facts.conclusions["lr"] = ("lr_affects_is" if sharp else "lr_no_effect", {})
    never = all(math.isnan(t) for t in facts.numbers["first_on_seconds"])
    facts.conclusions["activation"] = ("never_on" if never else "switched_on", {})
    return facts


def timing_facts(timing: dict[str, pd.DataFrame] | None) -> Facts:
    """Experiments 6-8: phase breakdown, a / p, presample-time fit, cost model against measurement."""
    facts = Facts()
    if timing is None:
        facts.missing.append("timing")
        return facts
    per_ratio = timing["per_ratio"]
    fit = dict(zip(timing["fit"]["metric"], timing["fit"]["value"]))
    importance = per_ratio[per_ratio["run"] == IMPORTANCE]
    facts.tables["per_ratio"] = per_ratio
    facts.numbers.update(fit)
    ratios = importance["presample"].nunique()
    facts.numbers["ratios"] = ratios
    r2 = fit.get("presample_r2", math.nan)
    intercept = fit.get("presample_intercept_seconds", math.nan)
    largest = (fit.get("presample_slope_seconds_per_p", math.nan) * importance["presample"].max()) + intercept
    # Rule: a line through presample times needs MIN_RATIOS ratios; with fewer there is no fit to judge.
    if ratios < MIN_RATIOS:
        rule = "fit_one_ratio"
    elif not r2 >= LINEAR_R2:
        rule = "presample_not_linear"
    elif abs(intercept) <= PROPORTIONAL_INTERCEPT * abs(largest):
        rule = "presample_proportional"
    else:
        rule = "presample_linear_offset"
    facts.conclusions["fit"] = (rule, {"p": ", ".join(f"{p:g}" for p in sorted(importance["presample"].unique()))})
    worst = float(importance["non_model_share"].max())
    facts.numbers["non_model_share_worst"] = worst
    facts.conclusions["non_model"] = ("non_model_negligible" if worst <= NON_MODEL_NEGLIGIBLE else "non_model_large", {})
    correlation = fit.get("presample_train_step_correlation", math.nan)
    if math.isnan(correlation):  # fewer than three iterations per ratio, or no spread in them
        facts.conclusions["correlation"] = ("passes_no_correlation", {})
    else:
        facts.conclusions["correlation"] = (
            "passes_correlated" if correlation >= STRONG_CORRELATION else "passes_not_correlated", {}
        )
    error = float(importance["prediction_error"].abs().max())
    facts.numbers["prediction_error_worst"] = error
    measured = importance["prediction_error_measured"] if "prediction_error_measured" in importance else None
    if measured is None or measured.isna().all():  # a record from before the measured model
        facts.conclusions["prediction"] = ("cost_model_accurate" if error <= PREDICTION_TOLERANCE else "cost_model_off", {})
    else:
        # Rule: which cost model predicts every measured ratio within PREDICTION_TOLERANCE.
        measured_error = float(measured.abs().max())
        facts.numbers["prediction_error_measured_worst"] = measured_error
        rule = {(True, True): "both_models_fit", (False, True): "measured_model_fits",
                (True, False): "notebook_model_fits", (False, False): "neither_model_fits"}[
            (error <= PREDICTION_TOLERANCE, measured_error <= PREDICTION_TOLERANCE)]  # fmt: skip
        facts.conclusions["prediction"] = (rule, {"measured_error": measured_error})
    return facts
