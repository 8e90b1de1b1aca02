"""The timing stage's measurements turned into the notebook's quantities (experiments 6-8): per
configuration, from medians over its iterations, t, T, k, a and both cost models' predictions
(`summarize`), and across ratios, presample time against p and how the presample forward and the
training step move together (`fit`)."""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from isample import costmodel
from isample.names import IMPORTANCE, PHASES, UNIFORM
from isample.report.records import presample_seconds, train_step_seconds


def median_interval(values: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of `values` (order statistics: the binomial(n, 1/2)
    quantiles), at `level`; with too few values for it, their range."""
    from scipy.stats import binom

    ordered, n = np.sort(np.asarray(values, dtype=float)), len(values)
    below = int(binom.ppf((1 - level) / 2, n, 0.5))  # the interval is [x_(below), x_(n - below + 1)], 1-based
    if below < 1:
        return float(ordered[0]), float(ordered[-1])
    return float(ordered[below - 1]), float(ordered[n - below])


def _iqr(series: pd.Series) -> float:
    return float(series.quantile(0.75) - series.quantile(0.25))


def _cost(run: str, presample: float, group: pd.DataFrame, batch_size: int, t: float, k: float) -> dict:
    """a and the notebook model's prediction: upper_bound's from its presample, any other method's
    from its whole iteration (selection and bookkeeping alike) over the training step."""
    train_step, measured = train_step_seconds(group).median(), group["total_seconds"].median()
    if run != IMPORTANCE:
        predicted = (1 + k) * batch_size * t  # uniform SGD: b (t + T)
        return {
            "a": (measured - train_step) / train_step,
            "predicted_seconds": predicted,
            "prediction_error": predicted / measured - 1,
        }
    presample_time = presample_seconds(group).median()
    a = presample_time / train_step
    predicted = costmodel.iteration_time(presample, k, batch_size, t)
    examples = round(presample * batch_size)
    return {
        "presample_seconds": presample_time,
        "a": a,
        "a_per_p": a / presample,
        "a_predicted": costmodel.ratio_from_k(presample, k),
        "predicted_seconds": predicted,
        "prediction_error": predicted / measured - 1,
        "speedup_u": costmodel.speedup_vs_full_batch(presample, k),
        "tau_th": costmodel.tau_threshold(a),
        "t_p": group["time_presample_forward"].median() / examples,
        "t_s": group["time_scoring"].median() / examples,
        "t_l": group["time_data_loading"].median() / examples,  # loading one example (0 in memory)
    }


def summarize(iterations: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """Per configuration, from medians over iterations: t, T, k, a and the cost model's predictions.

    t and T are the training step's own forward and backward times per example (k = T / t); a is
    the measured presample time over the training-step time; the predictions use p, k, b and t.
    """
    rows = []
    groups = iterations.groupby(["run", "presample", "forward_chunk"], sort=False, dropna=False)
    for (run, presample, chunk), group in groups:
        t = group["time_train_forward"].median() / batch_size
        big_t = group["time_backward"].median() / batch_size
        rows.append(
            {
                "run": run,
                "presample": presample,
                "forward_chunk": chunk,
                "iterations": len(group),
                "measured_seconds": group["total_seconds"].median(),
                "measured_seconds_iqr": _iqr(group["total_seconds"]),
                **dict(zip(("measured_seconds_low", "measured_seconds_high"), median_interval(group["total_seconds"]))),
                "train_step_seconds": train_step_seconds(group).median(),
                "t": t,
                "T": big_t,
                "k": big_t / t,
                "non_model_share": group["non_model_share"].median(),
                "non_model_share_iqr": _iqr(group["non_model_share"]),
                "non_model_share_max": group["non_model_share"].max(),
                "diverged_resets": int(group["diverged_resets"].max()) if "diverged_resets" in group else 0,
                **{f"time_{name}": group[f"time_{name}"].median() for name in PHASES},
                **_cost(run, presample, group, batch_size, t, big_t / t),
                "non_model_seconds": group["non_model_seconds"].median() if "non_model_seconds" in group else math.nan,
            }
        )
    return _predict_from_measured_rates(pd.DataFrame(rows), batch_size)


def _predict_from_measured_rates(per_ratio: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """The measured cost model's prediction of every configuration from rates pooled over all of them:
    t_p, t_s and t_l (presample forward, bound and loading per example: medians over the IS
    configurations), and t, T, the optimizer step and the non-model time of the uniform iteration. Each
    ratio is thus predicted, not read back from its own times."""
    uniform = per_ratio[per_ratio["run"] == UNIFORM]
    importance = per_ratio["run"] == IMPORTANCE
    if uniform.empty:
        return per_ratio
    base = uniform.iloc[0]
    t_p = float(per_ratio.loc[importance, "t_p"].median()) if importance.any() else 0.0
    t_s = float(per_ratio.loc[importance, "t_s"].median()) if importance.any() else 0.0
    t_l = float(per_ratio.loc[importance, "t_l"].median()) if importance.any() else 0.0
    p = per_ratio["presample"].where(importance, 0.0)
    per_ratio["predicted_seconds_measured"] = [
        costmodel.measured_iteration_time(
            ratio,
            batch_size,
            t_p,
            t_s,
            base["t"],
            base["T"],
            base["time_optimizer_step"],
            base["non_model_seconds"],
            t_l,
        )
        for ratio in p
    ]
    per_ratio["prediction_error_measured"] = per_ratio["predicted_seconds_measured"] / per_ratio["measured_seconds"] - 1
    per_ratio.loc[importance, "a_measured_model"] = [
        costmodel.measured_ratio(ratio, t_p, t_s, base["t"], base["T"], t_l) for ratio in p[importance]
    ]
    return per_ratio


def machine_prices(per_ratio: pd.DataFrame, batch_size: int) -> dict[str, float]:
    """This machine's prices for the priced clock (params.yaml's train.prices, `isample.pricing.Prices`), so
    that a priced second is about a second here: the training forward and backward per example (t and T),
    the rest of a uniform iteration (its median time less b (t + T)), and per example scored the median
    over the ratios of IS's extra time per presampled example, (time at p - uniform's) / (p b)."""
    uniform = per_ratio[per_ratio["run"] == UNIFORM].iloc[0]
    importance = per_ratio[per_ratio["run"] == IMPORTANCE]
    extra = (importance["measured_seconds"] - uniform["measured_seconds"]) / (importance["presample"] * batch_size)
    return {
        "forward": float(uniform["t"]),
        "backward": float(uniform["T"]),
        "iteration": float(uniform["measured_seconds"] - batch_size * (uniform["t"] + uniform["T"])),
        "score": float(extra.median()) if len(extra) else math.nan,
    }


def least_squares(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """slope, intercept and R^2 of the line y = slope * x + intercept."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1 - (residual**2).sum() / total if total > 0 else 1.0
    return float(slope), float(intercept), float(r2)


def fit(iterations: pd.DataFrame, per_ratio: pd.DataFrame) -> pd.DataFrame:
    """Across ratios: presample time against p (exp. 8), presample forward against training step
    per iteration (exp. 7), and the non-model share (exp. 6 and 7)."""
    importance = per_ratio[per_ratio["run"] == IMPORTANCE]
    # One chunk size per ratio for the line: the first configured one.
    line = importance[importance["forward_chunk"] == importance["forward_chunk"].iloc[0]]
    slope, intercept, r2 = least_squares(line["presample"], line["presample_seconds"])
    # Within each ratio, so that p itself does not drive the correlation (exp. 7: shared load).
    correlations = []
    for _, group in iterations[iterations["run"] == IMPORTANCE].groupby(["presample", "forward_chunk"]):
        presample, train_step = presample_seconds(group), train_step_seconds(group)
        if len(group) > 2 and presample.std() > 0 and train_step.std() > 0:
            correlations.append(float(np.corrcoef(presample, train_step)[0, 1]))
    correlation = float(np.median(correlations)) if correlations else math.nan
    values = {
        "presample_slope_seconds_per_p": slope,
        "presample_intercept_seconds": intercept,
        "presample_r2": r2,
        "train_step_seconds_median": float(line["train_step_seconds"].median()),
        "slope_over_train_step": slope / float(line["train_step_seconds"].median()),
        "a_per_p_mean": float(importance["a_per_p"].mean()),
        "presample_train_step_correlation": correlation,  # median over ratios
        "non_model_share_median": float(per_ratio["non_model_share"].median()),
        "non_model_share_worst_ratio": float(importance["non_model_share"].max()),
        "prediction_error_worst": float(importance["prediction_error"].abs().max()),
        "prediction_error_measured_worst": float(importance["prediction_error_measured"].abs().max())
        if "prediction_error_measured" in importance
        else math.nan,
    }
    return pd.DataFrame({"metric": list(values), "value": list(values.values())})
