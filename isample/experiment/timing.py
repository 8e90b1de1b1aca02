"""Where an IS iteration spends its time (notebook experiments 6-8): `measure` times real sampler
iterations per presample ratio with IS forced on, uniform SGD for reference, and any other selection
method of the family as it runs, the configurations taking turns. What the measurements say (t, T,
k, a, the cost models) is `isample.experiment.timing_summary`.
"""

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from isample.experiment.config import Params
from isample.experiment.data import PreparedData
from isample.experiment.runs import run_spec
from isample.experiment.setup import build_setup
from isample.methods.catalog import CATALOG, UniformOptions, UpperBoundOptions
from isample.names import IMPORTANCE, MODEL_PHASES, PHASES, UNIFORM  # the `run` column holds the method
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
