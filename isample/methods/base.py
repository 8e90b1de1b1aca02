"""What every selection method shares: the examples it draws from, what it returns, its interface.

A selection method only decides which b examples to train on and with which loss weights. It may
run forward passes of its own (timed as its own phases); the training step, written once in
`isample.step`, then trains on its selection, and `observe` hands the method what that training
forward computed (per-example losses and logits of the trained examples) at no extra cost.
"""

import dataclasses
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from isample.distributed import SINGLE, Group
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult, running_statistics_frozen
from isample.timing import PhaseTimer


class Examples:
    """The training set held in memory: uniform draws, and batches gathered for the model."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        device: torch.device,
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        generator: torch.Generator,
    ):
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        self.inputs = inputs
        self.targets = targets
        self.device = device
        self.transform = transform
        self.generator = generator

    def __len__(self) -> int:
        return len(self.inputs)

    def draw_uniform(self, count: int) -> torch.Tensor:
        """count distinct data-set indices, uniformly (CPU)."""
        return torch.randperm(len(self.inputs), generator=self.generator)[:count]

    def gather(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples at `indices`, transformed (augmentation, normalisation), on the model's device."""
        data_indices = indices.to(self.inputs.device)
        x = self.inputs[data_indices].to(self.device, non_blocking=True)
        y = self.targets[data_indices].to(self.device, non_blocking=True)
        if self.transform is not None:
            x = self.transform(x)
        return x, y


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
    # Draws that must be the same on every rank (InfoBatch's pruning); the generator in one process.
    shared_generator: torch.Generator | None = None

    @property
    def device(self) -> torch.device:
        return self.examples.device

    @property
    def generator(self) -> torch.Generator:
        return self.examples.generator



@dataclass
class Selection:
    """The b examples to train on and their loss weights."""

    indices: torch.Tensor  # data-set indices (CPU)
    weights: torch.Tensor | None  # per-example loss weights (CPU); None means all 1
    inputs: torch.Tensor  # the examples, gathered and transformed, on the model's device
    targets: torch.Tensor
    used_importance: bool = False  # drawn in proportion to scores (the records' IS share)


@dataclass(frozen=True)
class NoOptions:
    """A method without parameters of its own."""


class SelectionMethod:
    """The interface of the family; see `isample.methods.METHODS` for the name table.

    A subclass sets `name`, its `Options` (a frozen dataclass whose __post_init__ rejects bad
    values with ValueError) and implements `select`. `params_keys` are the params.yaml keys it
    reads (by default its own section `methods.<name>`), `record_tag` the tag in its record file
    names (by default its name).
    """

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    record_tag: ClassVar[str | None] = None
    params_keys: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, context: Context, options: Any = None):
        self.context = context
        self.options = self.Options() if options is None else options
        self.tau = 0.0  # variance-reduction estimate, when the method tracks one
        self.tau_threshold = math.nan
        self.a = math.nan  # its selection cost over the training step's, when it measures one

    @classmethod
    def tag(cls) -> str:
        return cls.record_tag or cls.name

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return cls.params_keys or (f"methods.{cls.name}",)

    @classmethod
    def options_from_params(cls, params: dict) -> Any:
        """Its Options from the whole params.yaml as a plain dict (by default `methods.<name>`)."""
        return cls.Options(**(params.get("methods") or {}).get(cls.name, {}))

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

    def state_dict(self) -> dict:
        return {"tau": self.tau, "tau_threshold": self.tau_threshold, "a": self.a}

    def load_state_dict(self, state: dict) -> None:
        self.tau, self.tau_threshold, self.a = state["tau"], state["tau_threshold"], state["a"]


def check_options(options: Any, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """ValueError naming the first field whose value breaks its rule (used by Options.__post_init__)."""
    for field in dataclasses.fields(options):
        if field.name in rules:
            test, allowed = rules[field.name]
            value = getattr(options, field.name)
            if not test(value):
                raise ValueError(f"{field.name} = {value!r}: {allowed}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def moving_average(previous: float | None, value: float, momentum: float) -> float:
    """momentum * previous + (1 - momentum) * value; the value itself when there is no previous one."""
    return value if previous is None else momentum * previous + (1 - momentum) * value


def check_score(score: str) -> bool:
    return score in SCORE_FUNCTIONS


SCORE_RULE = (check_score, f"must be one of {', '.join(SCORE_FUNCTIONS)} (unknown score)")
MOMENTUM_RULE = (lambda m: is_number(m) and 0 <= m < 1, "must be in [0, 1)")

SCORE_MODES = ("eval", "batch")


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
