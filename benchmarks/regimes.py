"""The studies' regimes, defined once, and one training run of a point: params.yaml with the regime's
overrides, the data subset it names (loaded once per process), the clock its budget counts.

Clocks: `priced` (train.clock priced: the same iterations on any machine, so several can share one),
`wall` (training wall-clock seconds) and `cpu` (CPU seconds of this process, so that other load on the
machine shifts no run against another; still measured time). Only priced points share a machine.
"""

import dataclasses
import functools
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from isample.experiment.config import validate
from isample.experiment.data import PreparedData, load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run

# The per-epoch curves of the priced studies use smaller evaluation subsets than params.yaml's, to save
# time; the final accuracy of every run is on the whole test set.
EVALUATED = {"test_subset": 1000, "train_eval_subset": 2000}

# name -> params.yaml overrides.
REGIMES = {
    # The priced studies' (break_even, break_even_causes, presample_auto).
    "default": {"data": EVALUATED},  # 10,000 images with augmentation: still learning
    "memorise": {"data": {"train_subset": 4000, "augment": False, **EVALUATED}},  # fits its data
    # Chosen where tau stays high: 1,000 images without augmentation, memorised within 60 priced seconds
    # (72 epochs), so that most examples are fitted and a few are not.
    "memorised_1k": {"data": {"train_subset": 1000, "augment": False, **EVALUATED}},
    # The CPU-second studies' (switching_rule, tau_estimates): the training set evaluated as params.yaml says.
    "default_cpu": {"data": {"test_subset": 1000}},
    "memorise_cpu": {"data": {"train_subset": 4000, "test_subset": 1000, "augment": False}},
    # The 2018 paper's network with the 2018 code's LayerNorm, short: 2,000 images, no augmentation.
    "wrn_cpu": {
        "data": {"train_subset": 2000, "test_subset": 500, "augment": False},
        "model": {"name": "wrn28_2", "norm": "layer"},
    },
    # params.yaml as it is (switch_on, reuse_choices), and default_regime's candidates beside it.
    "params": {},
    **{
        name: {"data": {"train_subset": size, "augment": augment}}
        for name, size, augment in [
            ("4k", 4000, False),
            ("4k-aug", 4000, True),
            ("10k", 10000, False),
            ("10k-aug", 10000, True),
            ("20k-aug", 20000, True),
            ("50k-aug", 0, True),
        ]
    },
}
CLOCKS = ("priced", "wall", "cpu")


def synthetic_cifar(n=4000, seed=0) -> PreparedData:
    """Random CIFAR-shaped images, for the speed benchmarks where no archive is present."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    return PreparedData(x, y, x[:10], y[:10], [str(i) for i in range(10)], "synthetic")


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` laid over it, nested dicts key by key."""
    out = {**base}
    for key, value in overrides.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


@functools.cache
def _base() -> dict:
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].pop("budgets", None)
    return raw


def params_of(regime: str, changes: dict | None = None) -> dict:
    """params.yaml (as raw values) with the regime's overrides, then `changes`."""
    return merged(merged(_base(), REGIMES[regime]), changes or {})


@functools.cache
def _full_data():
    data = _base()["data"]
    return load_dataset(data["name"], data["root"], data["download"])


@functools.cache
def data_of(regime: str):
    """The regime's training and test subsets, loaded once per process."""
    data = params_of(regime)["data"]
    return subset(_full_data(), data["train_subset"], data["test_subset"])


def point_spec(raw: dict, method: str, seed: int, *, clock: str, budget: float, options: dict | None = None):
    """The run of `method` under `clock` for `budget` seconds, from params `raw`; `options` replace the
    method's (e.g. always_importance)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r}: expected one of {', '.join(CLOCKS)}")
    train = {"clock": "priced" if clock == "priced" else "wall", "budget": f"{budget:g}s"}
    spec = run_spec(validate(merged(raw, {"train": train})), method, f"{budget:g}s", seed)
    if options:
        spec = dataclasses.replace(spec, options=dataclasses.replace(spec.options, **options))
    return spec


def train_point(spec, data, clock: str, **keywords):
    """Train `spec` on `data`, its budget counted by `clock` (CPU seconds for `cpu`)."""
    measure = time.process_time if clock == "cpu" else time.perf_counter
    return train_run(spec, data, progress=False, clock=measure, **keywords)


def train_timed(raw: dict, method: str, seed: int, data, *, clock: str, budget: float, options=None, **keywords):
    """point_spec then train_point; the run, its spec and the seconds the run took (evaluations included)."""
    spec = point_spec(raw, method, seed, clock=clock, budget=budget, options=options)
    started = time.perf_counter()
    run = train_point(spec, data, clock, **keywords)
    return run, spec, time.perf_counter() - started


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


WEIGHTS = ("weight_max", "effective_share", "distinct_share")


def run_facts(run) -> dict:
    """What every study keeps of a run: its accuracy and length, IS's share, tau, the rule's inputs and the
    weights' spread, per-iteration means over the run, and its clocks."""
    epochs = run.epochs
    last = epochs.iloc[-1]
    facts = {
        "run_status": run.status,
        "final_accuracy": run.final_accuracy,
        "epochs": len(epochs),
        "iterations": int(epochs["iterations"].sum()),
        "is_share": weighted_mean(epochs, "scored_share"),
        "tau": weighted_mean(epochs, "tau"),
        "tau_training": weighted_mean(epochs, "tau_training"),
        "tau_th": weighted_mean(epochs, "tau_threshold"),
        "a": weighted_mean(epochs, "a"),
        "predicted_speedup": weighted_mean(epochs, "predicted_speedup"),
        "speedup": weighted_mean(epochs, "speedup"),
        "variance_ratio": weighted_mean(epochs, "variance_ratio"),
        "tau_peak": float(epochs["tau"].max()),
        **{name: weighted_mean(epochs, name) for name in WEIGHTS},
        **{name: float(last[name]) for name in ("train_set_loss", "train_set_accuracy") if name in epochs},
        **{name: float(last[name]) for name in ("priced_seconds", "wall_seconds") if name in epochs},
    }
    if "tau_threshold" in epochs:
        on = epochs["scored_share"] > 0
        facts["first_on_s"] = float(epochs.loc[on, "train_seconds"].iloc[0]) if on.any() else math.nan
        facts["tau_training_peak"] = float(epochs["tau_training"].max())
        facts["training_tau_above_th_s"] = first_above(epochs, "tau_training", epochs["tau_threshold"])
    return facts


def curves(run, columns: tuple[str, ...]) -> str:
    """Some of a run's per-epoch columns, as JSON in one fact, for a summary that sets two runs' epochs
    side by side (a study's point trains one run)."""
    epochs = run.epochs
    return json.dumps({name: epochs[name].tolist() for name in columns if name in epochs})


def read_curves(text: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads(text))
