"""Where an IS iteration spends its time (notebook experiments 6-8), and the cost model against it.

`measure` times real sampler iterations per presample ratio with IS forced on, uniform SGD for
reference, and any other selection method of the family as it runs; `summarize` derives t, T, k, a and the cost model's predictions per ratio from
medians; `fit` does the across-ratio checks: presample time against p, and how the presample
forward and the training step move together.
"""

import copy
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from isample import costmodel
from isample.sampler import ImportanceSampler, Sampler, UniformSampler
from isample.sampling import NonFiniteScores
from isample.report.records import presample_seconds, train_step_seconds
from isample.timing import MODEL_PHASES, PHASES

UNIFORM = "uniform"  # the `run` column holds the selection method's name
IMPORTANCE = "upper_bound"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model: torch.nn.Module,
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    presamples: Sequence[float],
    *,
    forward_chunks: Sequence[int] = (0,),
    warmup: int = 3,
    iterations: int = 10,
    progress: bool = True,
    importance_options: dict | None = None,
    methods: dict | None = None,
    **sampler_options,
) -> pd.DataFrame:
    """One row per measured iteration: its wall time and the seconds of every phase.

    methods: other selection methods to time, name -> Options (their `run` is their name).

    Cost needs no finite model: when the scores of a diverging model (say at lr 1000) stop being
    finite, the model and optimizer go back to their initial state, the iteration is measured
    again, and the row's `diverged_resets` counts how often that happened in its configuration.
    """
    if any(not p >= 1 for p in presamples):
        raise ValueError(f"presample ratios must be >= 1, got {list(presamples)}")
    configurations = [(UNIFORM, math.nan, 0)] + [
        (IMPORTANCE, float(p), chunk) for p in presamples for chunk in forward_chunks
    ] + [(name, math.nan, 0) for name in (methods or {})]
    device = next(model.parameters()).device
    initial_weights = copy.deepcopy(model.state_dict())
    rows = []
    bar = tqdm(total=len(configurations) * (warmup + iterations), desc="timing", disable=not progress)
    for run, presample, chunk in configurations:
        optimizer = make_optimizer(model)
        resets = 0
        if run == UNIFORM:
            sampler = UniformSampler(model, optimizer, inputs, targets, batch_size, **sampler_options)
        elif run != IMPORTANCE:
            common = {key: value for key, value in sampler_options.items() if key != "score"}  # score: the two above
            sampler = Sampler(run, model, optimizer, inputs, targets, batch_size, options=methods[run], **common)
        else:
            sampler = ImportanceSampler(
                model, optimizer, inputs, targets, batch_size,
                presample=presample, forward_chunk=chunk, always_importance=True,
                **(importance_options or {}), **sampler_options,
            )  # fmt: skip
        bar.set_postfix(run=run, p=presample, chunk=chunk)
        index = 0
        while index < warmup + iterations:
            _synchronize(device)
            started = time.perf_counter()
            try:
                it = sampler.step()
            except NonFiniteScores:
                resets += 1
                if resets > 10 * (warmup + iterations):
                    raise
                model.load_state_dict(initial_weights)
                optimizer.state.clear()
                continue
            _synchronize(device)
            total = time.perf_counter() - started
            index += 1
            bar.update()
            if index <= warmup:
                continue
            model_seconds = sum(it.phases[p] for p in MODEL_PHASES)
            rows.append(
                {
                    "run": run,
                    "presample": presample,
                    "forward_chunk": chunk,
                    "iteration": index - warmup,
                    "total_seconds": total,
                    **{f"time_{name}": it.phases[name] for name in PHASES},
                    "model_seconds": model_seconds,
                    "non_model_seconds": total - model_seconds,
                    "non_model_share": (total - model_seconds) / total,
                    "diverged_resets": resets,
                }
            )
    bar.close()
    return pd.DataFrame(rows)


def _iqr(series: pd.Series) -> float:
    return float(series.quantile(0.75) - series.quantile(0.25))


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
        k = big_t / t
        train_step = train_step_seconds(group).median()
        measured = group["total_seconds"].median()
        row = {
            "run": run,
            "presample": presample,
            "forward_chunk": chunk,
            "iterations": len(group),
            "measured_seconds": measured,
            "measured_seconds_iqr": _iqr(group["total_seconds"]),
            "train_step_seconds": train_step,
            "t": t,
            "T": big_t,
            "k": k,
            "non_model_share": group["non_model_share"].median(),
            "non_model_share_iqr": _iqr(group["non_model_share"]),
            "non_model_share_max": group["non_model_share"].max(),
            "diverged_resets": int(group["diverged_resets"].max()) if "diverged_resets" in group else 0,
            **{f"time_{name}": group[f"time_{name}"].median() for name in PHASES},
        }
        if run == IMPORTANCE:
            presample_time = presample_seconds(group).median()
            a = presample_time / train_step
            predicted = costmodel.iteration_time(presample, k, batch_size, t)
            row.update(
                presample_seconds=presample_time,
                a=a,
                a_per_p=a / presample,
                a_predicted=costmodel.ratio_from_k(presample, k),
                predicted_seconds=predicted,
                prediction_error=predicted / measured - 1,
                speedup_u=costmodel.speedup_vs_full_batch(presample, k),
                tau_th=costmodel.tau_threshold(a),
            )
        else:
            # Any other method: its whole cost over the training step's, selection and bookkeeping alike.
            predicted = (1 + k) * batch_size * t  # uniform SGD: b (t + T)
            row.update(a=(measured - train_step) / train_step, predicted_seconds=predicted,
                       prediction_error=predicted / measured - 1)  # fmt: skip
        if run == IMPORTANCE:
            examples = round(presample * batch_size)
            row.update(t_p=group["time_presample_forward"].median() / examples,
                       t_s=group["time_scoring"].median() / examples)  # fmt: skip
        row["non_model_seconds"] = group["non_model_seconds"].median() if "non_model_seconds" in group else math.nan
        rows.append(row)
    return _predict_from_measured_rates(pd.DataFrame(rows), batch_size)


def _predict_from_measured_rates(per_ratio: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """The measured cost model's prediction of every configuration from rates pooled over all of them:
    t_p and t_s (medians over the IS configurations), and t, T, the optimizer step and the non-model
    time of the uniform iteration. Each ratio is thus predicted, not read back from its own times."""
    uniform = per_ratio[per_ratio["run"] == UNIFORM]
    importance = per_ratio["run"] == IMPORTANCE
    if uniform.empty:
        return per_ratio
    base = uniform.iloc[0]
    t_p = float(per_ratio.loc[importance, "t_p"].median()) if importance.any() else 0.0
    t_s = float(per_ratio.loc[importance, "t_s"].median()) if importance.any() else 0.0
    p = per_ratio["presample"].where(importance, 0.0)
    per_ratio["predicted_seconds_measured"] = [
        costmodel.measured_iteration_time(ratio, batch_size, t_p, t_s, base["t"], base["T"],
                                          base["time_optimizer_step"], base["non_model_seconds"])
        for ratio in p
    ]  # fmt: skip
    per_ratio["prediction_error_measured"] = per_ratio["predicted_seconds_measured"] / per_ratio["measured_seconds"] - 1
    per_ratio.loc[importance, "a_measured_model"] = [
        costmodel.measured_ratio(ratio, t_p, t_s, base["t"], base["T"]) for ratio in p[importance]
    ]
    return per_ratio


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
        if "prediction_error_measured" in importance else math.nan,
    }
    return pd.DataFrame({"metric": list(values), "value": list(values.values())})
