"""What every selection method shares: its context (the examples it draws from, `isample.examples`), what
it returns, its interface.

A selection method only decides which b examples to train on and with which loss weights. It may
run forward passes of its own (timed as its own phases); the training step, written once in
`isample.step`, then trains on its selection, and `observe` hands the method what that training
forward computed (per-example losses and logits of the trained examples) at no extra cost.
"""

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from isample.distributed import SINGLE, Group, current_group
from isample.examples import Closing, Examples, IndicesOnly, LoadedExamples, Reshuffling
from isample.methods.catalog import NoOptions
from isample.names import SCORE_MODES
from isample.phases import PhaseTimer
from isample.pricing import Prices, Work
from isample.sampling import NonFiniteScores
from isample.scores import candidate_loss
from isample.seeds import derive_seed
from isample.step import StepResult, autocast, running_statistics_frozen


@dataclass
class Context:
    """What a method may use: the model (for forwards of its own), the examples, the clock."""

    model: torch.nn.Module
    examples: Examples
    batch_size: int
    timer: PhaseTimer
    autocast_dtype: torch.dtype | None = None
    # Share of the training budget already spent, in [0, 1]; the training loop sets it (methods that
    # change behaviour late in training, such as InfoBatch's annealing, read it). 0 when unknown.
    progress: Callable[[], float] = lambda: 0.0
    # The processes training the model together (DDP); each selects its own b examples. Methods
    # whose state must agree across ranks reduce or gather through it (a no-op in one process).
    group: Group = SINGLE
    # Draws that must be the same on every rank (InfoBatch's pruning); the generator when not given.
    shared_generator: torch.Generator | None = None
    # Per-example values by data-set index that a method reads (RHO-LOSS's "irreducible_loss"), on the CPU.
    tables: dict[str, torch.Tensor] = field(default_factory=dict)
    # The work of the current iteration (`isample.pricing`): the training step and every scoring forward count.
    work: Work = field(default_factory=Work)
    # A priced clock's prices, when the run is budgeted by them: a method that weighs its own cost (IS's
    # tau_th = 1 + a) then takes that cost from them, not from measured times.
    prices: Prices | None = None

    @property
    def device(self) -> torch.device:
        return self.examples.device

    @property
    def generator(self) -> torch.Generator:
        return self.examples.generator


def build_context(
    model: torch.nn.Module | None,
    batch_size: int,
    seed: int,
    *,
    inputs=None,
    targets: torch.Tensor | None = None,
    size: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    workers: int = 0,
    timer: PhaseTimer | None = None,
    group: Group | None = None,
    generator: torch.Generator | None = None,
    shared_generator: torch.Generator | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: Callable[[], float] | None = None,
    tables: dict[str, torch.Tensor] | None = None,
    prices: Prices | None = None,
) -> Context:
    """A method's context, built one way for `Trainer` and `BatchSelector`.

    The examples: `inputs` and `targets` tensors in memory; `inputs` a dataset and `targets` None,
    read from disk by `workers` DataLoader workers; or only `size`, indices for a user's own
    DataLoader. Every stream comes from `seed` (`isample.seeds`): the epoch order, alike on every
    rank of `group`; this rank's draws and the draws every rank makes alike, unless given as
    `generator` and `shared_generator`. `tables`: per-example values by data-set index a method reads
    (each of length N). `prices`: a priced clock's, which methods weigh their own cost by. A DDP wrapper
    is unwrapped: a method's own forwards need no collective.
    """
    group = group or current_group()
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    timer = timer or PhaseTimer(False)
    generator = generator or torch.Generator().manual_seed(derive_seed(seed, "draws", rank=group.rank))
    shared_generator = shared_generator or torch.Generator().manual_seed(derive_seed(seed, "shared_draws"))
    count = size if inputs is None else len(inputs)
    tables = {name: torch.as_tensor(values).detach().cpu() for name, values in (tables or {}).items()}
    for name, values in tables.items():
        if values.shape != (count,):
            raise ValueError(
                f"table {name!r} has shape {tuple(values.shape)}: one value per example ({count}) expected"
            )
    stream = Reshuffling(count, seed, group.rank, group.world_size)
    if inputs is None:
        examples = IndicesOnly(count, stream, generator)
    elif targets is None:
        examples = LoadedExamples(inputs, device, transform, generator, stream, timer, workers)
    else:
        examples = Examples(inputs, targets, device, transform, generator, stream)
    progress = progress or (lambda: 0.0)
    return Context(
        model, examples, batch_size, timer, autocast_dtype, progress, group, shared_generator, tables, prices=prices
    )


def context_state(context: Context) -> dict:
    """Where the context's streams stand, for a checkpoint: the epoch order and both generators
    (what was loaded ahead is dropped first, so a resumed run loads and draws it alike)."""
    context.examples.settle()
    return {
        "stream": context.examples.stream.state_dict(),
        "generator": context.generator.get_state(),
        "shared_generator": context.shared_generator.get_state(),
    }


def load_context_state(context: Context, state: dict) -> None:
    context.examples.stream.load_state_dict(state["stream"])
    context.generator.set_state(state["generator"])
    context.shared_generator.set_state(state["shared_generator"])


class RunsMethod(Closing):
    """What `Trainer` and `BatchSelector` share: a method over its context, their checkpoint state (the
    streams and the method's own) and `close()`, which stops what loads the examples."""

    context: "Context"
    method: "SelectionMethod"

    def state_dict(self) -> dict:
        return context_state(self.context) | {"method": self.method.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        load_context_state(self.context, state)

    def close(self) -> None:
        """Stop the thread and the DataLoader workers loading its examples, if any (idempotent)."""
        self.context.examples.close()


@dataclass
class Selection:
    """The b examples to train on and their loss weights."""

    indices: torch.Tensor  # data-set indices (CPU)
    weights: torch.Tensor | None  # per-example loss weights (CPU); None means all 1
    inputs: torch.Tensor  # the examples, gathered and transformed, on the model's device
    targets: torch.Tensor
    by_score: bool = False  # chosen using scores (not a uniform draw): the records' "chosen by score" share


class SelectionMethod:
    """The interface of the family; see `isample.methods.METHODS` for the name table.

    A subclass sets `name`, its `Options` (a frozen dataclass of `isample.methods.catalog`) and
    implements `select`; `observe` receives what the training forward computed, and `metrics` says
    what the method itself wants recorded (IS's tau and a, InfoBatch's pruned share, ...).
    """

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    # Whether the method runs forwards of its own over candidate examples: then a user's loop must
    # give BatchSelector the model and the dataset.
    runs_own_forwards: ClassVar[bool] = False

    def __init__(self, context: Context, options: Any = None):
        if options is not None and not isinstance(options, self.Options):
            presample = " (only upper_bound presamples)" if hasattr(options, "presample") else ""
            raise ValueError(f"{self.name} takes {self.Options.__name__}, not {type(options).__name__}{presample}")
        self.context = context
        self.options = self.Options() if options is None else options

    def start_epoch(self) -> int:
        """Called at each epoch start by the training loop: the iterations this epoch has (by
        default one pass's worth of batches of b per rank over all ranks; methods that prune the
        data shorten it). Every rank must return the same number."""
        context = self.context
        return max(1, len(context.examples) // (context.batch_size * context.group.world_size))

    def select(self) -> Selection:
        raise NotImplementedError

    def observe(self, selection: Selection, result: StepResult) -> None:
        """Called after the training step with what its forward computed; the default ignores it."""

    def metrics(self) -> dict[str, float]:
        """The method's own numbers after the last step, by name (the training records average each
        over an epoch, as a column of that name); none by default."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def moving_average(previous: float | None, value: float, momentum: float) -> float:
    """momentum * previous + (1 - momentum) * value; the value itself when there is no previous one."""
    return value if previous is None else momentum * previous + (1 - momentum) * value


def candidate_losses(
    context: Context, inputs: torch.Tensor, targets: torch.Tensor, method: str, chunk: int | None = None
) -> torch.Tensor:
    """The candidates' losses by the model in the mode the caller set (`scoring_mode`), on the CPU, in
    forwards of `chunk` examples (all at once when None); a NaN or infinite one is NonFiniteScores."""
    with context.timer.phase("presample_forward"), autocast(context.device, context.autocast_dtype):
        logits = [context.model(part) for part in inputs.split(chunk or len(inputs))]
    context.work.score(len(inputs))
    with context.timer.phase("scoring"):
        losses = candidate_loss(torch.cat(logits), targets).cpu()
    if not math.isfinite(float(losses.sum())):  # a NaN or infinite loss makes the sum so
        raise NonFiniteScores(f"{method}: candidate losses are NaN or infinite")
    return losses


@contextmanager
def scoring_mode(model: torch.nn.Module, mode: str):
    """The model as a forward without gradients should see it, leaving every buffer as it was.

    eval: everything in eval mode; BatchNorm normalises with its running statistics (the 2018 code).
    batch: BatchNorm normalises with the statistics of the batch it is given, as the training
    forward does, but updates no running mean, variance or batch count; all else in eval mode.
    """
    if mode not in SCORE_MODES:
        raise ValueError(f"score_mode must be one of {', '.join(SCORE_MODES)}, got {mode!r}")
    was_training = model.training
    model.eval()
    if mode == "batch":
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.train()
    try:
        with running_statistics_frozen(model):
            yield
    finally:
        model.train(was_training)
