"""Records as the pipeline writes them, for the report's tests: plausible epochs, runs and timing tables."""

from pathlib import Path

import numpy as np
import pandas as pd

from isample.report.records import PHASES, Run


def epochs(
    final_accuracy,
    *,
    train_accuracy=0.9,
    weighted_accuracy=None,
    weighted_loss=0.3,
    is_share_by_lr=(0.0, 0.0, 0.0),
    n=12,
):
    """A plausible record: test accuracy climbing to final_accuracy, lr dropping at 50% and 75%."""
    seconds = np.linspace(10, 120, n)
    lr = np.where(seconds < 60, 0.1, np.where(seconds < 90, 0.02, 0.004))
    share = np.select([seconds < 60, seconds < 90], is_share_by_lr[:2], is_share_by_lr[2])
    iterations = np.full(n, 30)
    return pd.DataFrame(
        {
            "epoch": np.arange(1, n + 1),
            "iterations": iterations,
            "total_iterations": iterations.cumsum(),
            "train_seconds": seconds,
            "wall_seconds": seconds,
            "priced_seconds": 0.98 * seconds,
            "lr": lr,
            "train_loss": np.linspace(2, 0.5, n),
            "train_accuracy": np.linspace(0.3, train_accuracy, n),
            "train_loss_weighted": np.linspace(2, weighted_loss, n),
            "train_accuracy_weighted": np.linspace(0.3, weighted_accuracy or train_accuracy, n),
            "test_loss": np.linspace(2, 1, n),
            "test_accuracy": np.linspace(0.2, final_accuracy, n),
            "train_set_loss": np.linspace(2, 0.6, n),
            "train_set_accuracy": np.linspace(0.3, min(1.0, final_accuracy + 0.1), n),
            "scored_share": share,
            "examples_scored": 64 * iterations * share,
            **{f"time_{phase}": 0.01 * iterations for phase in PHASES},
            "eval_seconds": np.full(n, 0.5),
            "train_set_eval_seconds": np.full(n, 0.2),
            "tau": np.linspace(1, 2, n),
            "tau_threshold": np.full(n, 1.7),
        }
    )


def run(method, seed, frame, status="completed", forced=False):
    """forced: IS forced on at every iteration (compare.forced_is), recorded as the pipeline does."""
    params = {"seed": str(seed), "method": method, "status": status, "forced": str(forced)}
    tag = f"{method}-forced" if forced else method
    return Run(method, seed, frame, params, Path(f"results/{method}/cifar10.{tag}.2m.{seed}.xlsx"))


def forced_runs(accuracies, **kwargs):
    """IS forced on: scored at every iteration, one run per seed."""
    kwargs.setdefault("is_share_by_lr", (1.0, 1.0, 1.0))
    return [run("upper_bound", s, epochs(a, **kwargs), forced=True) for s, a in enumerate(accuracies)]


def pairs(is_accuracies, uniform_accuracies, **is_kwargs):
    is_kwargs.setdefault("is_share_by_lr", (0.0, 0.6, 0.6))  # IS switched on at the first lr drop
    is_runs = [run("upper_bound", s, epochs(a, **is_kwargs)) for s, a in enumerate(is_accuracies)]
    uniform_runs = [run("uniform", s, epochs(a)) for s, a in enumerate(uniform_accuracies)]
    return is_runs, uniform_runs


def timing_tables(
    slope=0.03,
    intercept=0.0,
    non_model=0.01,
    noise=0.0,
    error=0.02,
    ratios=(2.0, 3.0, 5.0, 7.0),
    correlation=0.8,
    measured_error=None,
    loading=0.0,
):
    """A timing record as the timing stage writes it; with one ratio the fit is nan, as least_squares gives.
    loading: seconds of data loading per iteration (0: data held in memory)."""
    rng = np.random.default_rng(0)
    ratios = list(ratios)
    presample_seconds = [slope * p + intercept + rng.normal(0, noise) for p in ratios]
    per_ratio = pd.DataFrame(
        {
            "run": ["uniform"] + ["upper_bound"] * len(ratios),
            "presample": [np.nan] + ratios,
            "forward_chunk": 0,
            "measured_seconds": [0.1] + [0.1 + s for s in presample_seconds],
            "presample_seconds": [np.nan] + presample_seconds,
            "train_step_seconds": 0.1,
            "a": [np.nan] + [s / 0.1 for s in presample_seconds],
            "a_per_p": [np.nan] + [s / 0.1 / p for s, p in zip(presample_seconds, ratios, strict=True)],
            "k": 2.0,
            "t": 3e-4,
            "predicted_seconds": 0.1,
            "prediction_error": error,
            "speedup_u": [np.nan] + [0.8] * len(ratios),
            "non_model_share": non_model,
            "non_model_share_iqr": 0.001,
            "tau_th": [np.nan] + [1 + s / 0.1 for s in presample_seconds],
            **{f"time_{p}": 0.01 for p in PHASES},
            "time_data_loading": loading,
        }
    )
    measured_error = error if measured_error is None else measured_error
    per_ratio["prediction_error_measured"] = measured_error
    per_ratio["predicted_seconds_measured"] = per_ratio["measured_seconds"] * (1 + measured_error)
    if len(ratios) > 1:
        slope_fit, intercept_fit = np.polyfit(ratios, presample_seconds, 1)
        residual = np.array(presample_seconds) - (slope_fit * np.array(ratios) + intercept_fit)
        r2 = 1 - (residual**2).sum() / ((np.array(presample_seconds) - np.mean(presample_seconds)) ** 2).sum()
    else:
        slope_fit = intercept_fit = r2 = np.nan
    fit = pd.DataFrame(
        {
            "metric": [
                "presample_slope_seconds_per_p",
                "presample_intercept_seconds",
                "presample_r2",
                "presample_train_step_correlation",
            ],
            "value": [slope_fit, intercept_fit, r2, correlation],
        }
    )
    iterations = pd.DataFrame(
        {
            "run": "upper_bound",
            "presample": np.repeat(ratios, 3),
            "total_seconds": 0.2,
            "time_presample_forward": 0.05,
            "time_train_forward": 0.03,
            "time_backward": 0.06,
            "time_optimizer_step": 0.01,
        }
    )
    return {"iterations": iterations, "per_ratio": per_ratio, "fit": fit}


def report(is_runs, uniform_runs, timing, lang, made, peer_runs=None):
    """render() from the two notebook methods' runs (and any peers'): its markdown and its metrics."""
    from isample.report.render import render

    runs = {"upper_bound": is_runs, "uniform": uniform_runs, **(peer_runs or {})}
    files = [str(r.path) for method_runs in runs.values() for r in method_runs]
    text, metrics, _ = render(runs, timing, lang, made, files)
    return text, metrics
