"""One iteration for every selection method: the method selects, the training step trains, the method observes.

`Trainer` runs any method of `isample.methods.METHODS`; `UniformSampler` and `ImportanceSampler`
are the library's entry points for the two original ones, with their historical names and arguments.
(`Trainer` was called `Sampler`, in `isample.sampler`; both old names still work, with a warning.)
"""

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from isample.distributed import Group
from isample.methods import method_class
from isample.methods.base import RunsMethod, SelectionMethod, build_context
from isample.methods.catalog import UniformOptions, UpperBoundOptions
from isample.names import IMPORTANCE, UNIFORM
from isample.phases import PhaseTimer
from isample.pricing import Prices, Work
from isample.step import TrainStep


@dataclass
class Iteration:
    """What one sampler step did. Tensors are detached and stay on the model's device."""

    indices: torch.Tensor  # data-set indices of the b trained examples (CPU)
    weights: torch.Tensor  # their loss weights (CPU; all 1 for a uniform draw)
    by_score: bool  # the method chose these examples using scores (not a uniform draw)
    metrics: dict[str, float]  # the method's own numbers after this step (SelectionMethod.metrics)
    weighted_loss: torch.Tensor  # mean(w * loss): unbiased estimate of the uniform training loss
    plain_loss: torch.Tensor  # mean(loss) over the trained examples, as the notebook logged it
    correct: torch.Tensor  # number of trained examples classified correctly
    accuracy_weighted: torch.Tensor  # sum(w * correct) / sum(w) over the trained examples
    # Seconds per phase, None when timing is off; on CUDA without exact timing, those of the iteration
    # `PhaseTimer.lag` steps back (zeros before it), so that no step waits for the device.
    phases: dict[str, float] | None
    # What it did (`isample.pricing`): examples through forwards and backwards, scored, iterations.
    work: Work | None = None

    @property
    def loss(self) -> torch.Tensor:
        """Deprecated name of `weighted_loss` (the records' train_loss is `plain_loss`)."""
        warnings.warn("Iteration.loss is now Iteration.weighted_loss", DeprecationWarning, stacklevel=2)
        return self.weighted_loss

    # ImportanceSampler's historical fields, read from the method's metrics (nan where it has none).
    @property
    def used_importance(self) -> bool:
        return self.by_score

    @property
    def tau(self) -> float:
        return self.metrics.get("tau", math.nan)

    @property
    def tau_threshold(self) -> float:
        return self.metrics.get("tau_threshold", math.nan)

    @property
    def speedup(self) -> float:
        """The draw's predicted speed-up, which the rule sets against tau_th = 1 + a."""
        return self.metrics.get("speedup", math.nan)

    @property
    def a(self) -> float:
        return self.metrics.get("a", math.nan)


class Trainer(RunsMethod):
    """Trains `model` with the examples a selection method chooses, one iteration per `step()`.

    method: a name of `isample.methods.METHODS` or a SelectionMethod subclass; options: its
    Options (defaults when None). inputs, targets: the training set in memory (tensors); or inputs a
    dataset, `dataset[i]` = (input tensor, target), and targets None: read from disk on request by
    `workers` DataLoader workers (`isample.examples.LoadedExamples`). transform: a batch
    transform applied to drawn examples.
    Under DDP, `model` is the DistributedDataParallel wrapper (the training step goes through it,
    the method's own forwards through the module inside, so they need no collective), batch_size
    is this rank's share of the global batch, `generator` this rank's own and `shared_generator`
    one seeded alike on every rank; `group` defaults to torch.distributed's, when initialised.
    `progress` tells the share of the training budget spent, in [0, 1] (methods that change late in
    training, such as InfoBatch's annealing, read it; 0 when not given). `tables`: per-example
    values by data-set index a method reads, such as rho_loss's {"irreducible_loss": ...}.
    timing: time every phase (`isample.phases`); on CUDA without `exact_timing`, with events read a
    few iterations later (no synchronisation: `Iteration.phases` is then an earlier iteration's), with
    it by synchronising the device at every phase edge (what the timing stage measures).
    prices: a priced clock's (`isample.pricing`): a method that weighs its own cost (IS's tau_th = 1 + a)
    takes it from them instead of measured times. Every iteration counts its work (`Iteration.work`).
    Read from disk, it holds a loading thread and `workers` processes: `close()` (or `with Trainer(...)
    as trainer:`) stops them.
    """

    def __init__(
        self,
        method: str | type[SelectionMethod],
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs,
        targets: torch.Tensor | None,
        batch_size: int,
        *,
        options: Any = None,
        workers: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        shared_generator: torch.Generator | None = None,
        timing: bool = True,
        exact_timing: bool = False,
        autocast_dtype: torch.dtype | None = None,
        group: Group | None = None,
        progress: Callable[[], float] | None = None,
        tables: dict[str, torch.Tensor] | None = None,
        prices: Prices | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > len(inputs):
            raise ValueError(f"batch_size {batch_size} is larger than the data set ({len(inputs)})")
        if seed is None:
            seed = generator.initial_seed() if generator is not None else int(torch.randint(2**62, ()).item())
        self.timer = PhaseTimer(timing, next(model.parameters()).device, synchronize=exact_timing)
        self.context = build_context(
            model,
            batch_size,
            seed,
            inputs=inputs,
            targets=targets,
            transform=transform,
            workers=workers,
            timer=self.timer,
            group=group,
            generator=generator,
            shared_generator=shared_generator,
            autocast_dtype=autocast_dtype,
            progress=progress,
            tables=tables,
            prices=prices,
        )
        self.examples = self.context.examples
        method_type = method_class(method) if isinstance(method, str) else method
        self.method = method_type(self.context, options)
        self.train_step = TrainStep(model, optimizer, self.timer, autocast_dtype, self.context.work)
        self.batch_size = batch_size

    def start_epoch(self) -> int:
        """Tell the method an epoch starts; returns the iterations in it (see SelectionMethod.start_epoch)."""
        return self.method.start_epoch()

    def step(self) -> Iteration:
        timer = self.timer
        timer.reset()
        self.context.work.reset()
        selection = self.method.select()
        result = self.train_step(selection.inputs, selection.targets, selection.weights)
        self.method.observe(selection, result)
        weights = selection.weights if selection.weights is not None else torch.ones(len(selection.indices))
        iteration = Iteration(
            indices=selection.indices,
            weights=weights,
            by_score=selection.by_score,
            metrics=self.method.metrics(),
            weighted_loss=result.weighted_loss,
            plain_loss=result.plain_loss,
            correct=result.correct,
            accuracy_weighted=result.accuracy_weighted,
            phases=timer.snapshot(),
            work=self.context.work.copy(),
        )
        return iteration

    @property
    def generator(self) -> torch.Generator:
        return self.examples.generator


class _TracksTau:
    """tau, tau_threshold and a of the method, readable on the sampler (tau settable, for experiments)."""

    method: SelectionMethod

    @property
    def tau(self) -> float:
        return self.method.tau

    @tau.setter
    def tau(self, value: float) -> None:
        self.method.tau = value

    @property
    def tau_threshold(self) -> float:
        return self.method.metrics().get("tau_threshold", math.nan)

    @property
    def a(self) -> float:
        return self.method.metrics().get("a", math.nan)


class UniformSampler(_TracksTau, Trainer):
    """Plain SGD on b examples drawn uniformly; tau is still tracked from the batch's scores.
    Keyword options: the fields of `UniformOptions` (score, tau_momentum), defaults there."""

    def __init__(self, model, optimizer, inputs, targets, batch_size, **keywords):
        options, common = _split(UniformOptions, keywords)
        super().__init__(UNIFORM, model, optimizer, inputs, targets, batch_size, options=options, **common)


class ImportanceSampler(_TracksTau, Trainer):
    """Upper-bound importance sampling with the online threshold tau_th = 1 + a.

    Keyword options: the fields of `UpperBoundOptions`, with their defaults there (the pipeline's
    params.yaml holds the same values): presample p = B / b (>= 1); tau_threshold "auto" or a fixed
    number; score_mode "eval" (running statistics, the 2018 code) or "batch" (BatchNorm uses the
    statistics of each b-sized presample chunk, as in training, and no buffer changes); smoothing
    eps in [0, 1), weights <= 1 / eps; forward_chunk, examples per presample forward in eval mode
    (0 = all B at once); always_importance skips the decision (IS forced on: timing, the forced arm). With
    timing off, "auto" cannot measure a and keeps the 2018 default (B + 3b) / (3b). Every other
    keyword goes to `Trainer`.
    """

    def __init__(self, model, optimizer, inputs, targets, batch_size, **keywords):
        options, common = _split(UpperBoundOptions, keywords)
        super().__init__(IMPORTANCE, model, optimizer, inputs, targets, batch_size, options=options, **common)

    @property
    def k(self) -> float:
        return self.method.k


def _split(options_type: type, keywords: dict) -> tuple[Any, dict]:
    """The keywords that are fields of `options_type` as one Options, and the rest."""
    fields = {field.name for field in dataclasses.fields(options_type)}
    for key in {"presample", "presample_max"} & set(keywords) - fields:
        raise ValueError(
            f"{key} = {keywords[key]!r}: {options_type.__name__} does not presample (only upper_bound does)"
        )
    options = options_type(**{key: value for key, value in keywords.items() if key in fields})
    return options, {key: value for key, value in keywords.items() if key not in fields}
