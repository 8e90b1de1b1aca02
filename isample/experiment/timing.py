"""Where an IS iteration spends its time (notebook experiments 6-8), and the cost model against it.

`measure` times real sampler iterations per presample ratio with IS forced on, uniform SGD for
reference, and any other selection method of the family as it runs; `summarize` derives t, T, k,
a and the cost model's predictions per ratio from medians; `fit` does the across-ratio checks:
presample time against p, and how the presample forward and the training step move together.
"""

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from isample import costmodel
from isample.experiment.config import Params
from isample.experiment.data import PreparedData
from isample.experiment.runs import run_spec
from isample.experiment.setup import build_setup
from isample.methods.catalog import CATALOG, UniformOptions, UpperBoundOptions
from isample.names import IMPORTANCE, MODEL_PHASES, PHASES, UNIFORM  # the `run` column holds the method
from isample.report.records import presample_seconds, train_step_seconds
from isample.sampling import NonFiniteScores
from isample.trainer import Iteration, Trainer

IMPORTANCE_OFF = "upper_bound_is_off"  # upper_bound while IS is off: its bookkeeping beside uniform's


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Configuration:
    """One measured configuration: a method with its options (upper_bound: IS forced on at one ratio)."""

    run: str  # the selection method's name
    options: Any
    label: str = ""  # the `run` column, when it is not the method's name

    @property
    def name(self) -> str:
        return self.label or self.run

    @property
    def presample(self) -> float:
        return float(self.options.presample) if self.name == IMPORTANCE else math.nan

    @property
    def forward_chunk(self) -> int:
        return int(self.options.forward_chunk) if self.run == IMPORTANCE else 0


def configurations(
    importance: UpperBoundOptions,
    presamples: Sequence[float],
    forward_chunks: Sequence[int],
    uniform: UniformOptions | None = None,
    others: dict[str, Any] | None = None,
) -> list[Configuration]:
    """uniform (the reference), upper_bound with IS on at every ratio and chunk size, upper_bound with IS
    off (a threshold it never reaches: what it pays beside uniform while off), then the others, each as
    it runs after any priming (Selective-Backprop's first pass trains every example unscored)."""
    if any(not p >= 1 for p in presamples):
        raise ValueError(f"presample ratios must be >= 1, got {list(presamples)}")
    # Batch-mode scoring forwards chunks of b, whatever the chunk setting: one configuration per ratio.
    chunks = forward_chunks if importance.score_mode == "eval" else [importance.forward_chunk]
    forced = [
        dataclasses.replace(importance, presample=float(p), forward_chunk=chunk, always_importance=True)
        for p in presamples
        for chunk in chunks
    ]
    switched_off = dataclasses.replace(importance, tau_threshold=math.inf, always_importance=False)
    return [  # IS off right after uniform: the pair to compare, measured back to back
        Configuration(UNIFORM, uniform or UniformOptions()),
        Configuration(IMPORTANCE, switched_off, label=IMPORTANCE_OFF),
        *[Configuration(IMPORTANCE, options) for options in forced],
        *[Configuration(name, steady(options)) for name, options in (others or {}).items()],
    ]


def steady(options: Any) -> Any:
    """A method's options as it runs after its priming pass, if it has one."""
    return dataclasses.replace(options, prime_passes=0) if hasattr(options, "prime_passes") else options


def _timed_step(sampler: Trainer, device: torch.device) -> tuple[Iteration, float]:
    _synchronize(device)
    started = time.perf_counter()
    it = sampler.step()
    _synchronize(device)
    return it, time.perf_counter() - started


def _row(configuration: Configuration, index: int, it: Iteration, total: float, resets: int) -> dict:
    model_seconds = sum(it.phases[p] for p in MODEL_PHASES)
    return {
        "run": configuration.name,
        "presample": configuration.presample,
        "forward_chunk": configuration.forward_chunk,
        "iteration": index,
        "total_seconds": total,
        **{f"time_{name}": it.phases[name] for name in PHASES},
        "model_seconds": model_seconds,
        "non_model_seconds": total - model_seconds,
        "non_model_share": (total - model_seconds) / total,
        "diverged_resets": resets,
    }


TURN = 5  # iterations a configuration runs in its turn before the next one's


class _Timed:
    """One configuration's sampler under measurement: its rows, and its model's initial weights to go
    back to when the model diverges (cost needs no finite model)."""

    def __init__(self, configuration: "Configuration", sampler: Trainer):
        self.configuration, self.sampler = configuration, sampler
        self.model, self.optimizer = sampler.train_step.model, sampler.train_step.optimizer
        self.initial = copy.deepcopy(self.model.state_dict())
        self.done = self.resets = 0
        self.rows: list[dict] = []

    def run(self, count: int, warmup: int, limit: int, bar) -> None:
        """`count` more iterations, a row for each past the warm-up."""
        for _ in range(count):
            while True:
                try:
                    it, total = _timed_step(self.sampler, self.sampler.context.device)
                    break
                except NonFiniteScores:
                    self.resets += 1
                    if self.resets > limit:
                        raise
                    self.model.load_state_dict(self.initial)
                    self.optimizer.state.clear()
            self.done += 1
            bar.update()
            if self.done > warmup:
                self.rows.append(_row(self.configuration, self.done - warmup, it, total, self.resets))


def measure(
    make_sampler: Callable[[Configuration], Trainer],
    measured: Sequence[Configuration],
    *,
    warmup: int = 3,
    iterations: int = 10,
    progress: bool = True,
    turn: int = TURN,
) -> pd.DataFrame:
    """One row per measured iteration of every configuration: its wall time and the seconds of every
    phase. `make_sampler` builds the sampler a configuration trains with (the timing stage: the
    training set-up itself), with timing on.

    The configurations take turns (round-robin, `turn` iterations each, after `warmup` each), so that
    drift and other load on the machine spread over all of them instead of landing on a few.

    Cost needs no finite model: when the scores of a diverging model (say at lr 1000) stop being
    finite, the model and optimizer go back to their initial state, the iteration is measured
    again, and the row's `diverged_resets` counts how often that happened in its configuration.
    """
    bar = tqdm(total=len(measured) * (warmup + iterations), desc="timing", disable=not progress)
    limit = 10 * (warmup + iterations)
    with contextlib.ExitStack() as stack:  # every sampler's loading thread and workers stop at the end
        timed = [_Timed(configuration, stack.enter_context(make_sampler(configuration))) for configuration in measured]
        for one in timed:
            one.run(warmup, warmup, limit, bar)
        while any(one.done < warmup + iterations for one in timed):
            for one in timed:
                one.run(min(turn, warmup + iterations - one.done), warmup, limit, bar)
    bar.close()
    return pd.DataFrame([row for one in timed for row in one.rows])  # in the configurations' order


def measure_params(params: Params, data: PreparedData, peer: str | None = None, progress: bool = True) -> pd.DataFrame:
    """`measure` as params.yaml specifies it: uniform and upper_bound at every ratio of timing.presamples
    (the timing stage), or uniform beside `peer`; every sampler built by the training set-up itself,
    so what is timed is what trains."""
    budget = params.train.budget_list[0]  # the budget does not change what an iteration costs
    specs = {name: run_spec(params, name, budget, seed=0) for name in (UNIFORM, peer or IMPORTANCE)}
    timing = params.timing
    if peer is None:
        measured = configurations(
            specs[IMPORTANCE].options, timing.presamples, timing.forward_chunks, specs[UNIFORM].options
        )
    else:
        measured = [Configuration(UNIFORM, specs[UNIFORM].options), Configuration(peer, steady(specs[peer].options))]

    def make_sampler(configuration: Configuration) -> Trainer:
        spec = dataclasses.replace(specs[configuration.run], options=configuration.options)
        # A method's tables change what it selects, not what an iteration costs (rho_loss: a top-b of
        # candidates either way): zeros, so timing needs no tables@ stage.
        tables = {name: torch.zeros(data.train_size) for name in CATALOG[spec.method].tables}
        # Exact: the device synchronised at every phase edge (training times phases with events instead).
        return build_setup(spec, data, tables=tables, exact_timing=True).sampler

    return measure(make_sampler, measured, warmup=timing.warmup, iterations=timing.iterations, progress=progress)


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
