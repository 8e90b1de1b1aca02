"""One loop for every selection method: the method selects, the training step trains, the method observes.

`Sampler` runs any method of `isample.methods.METHODS`; `UniformSampler` and `ImportanceSampler`
are the library's entry points for the two original ones, with their historical arguments.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from isample.distributed import Group, current_group
from isample.methods import Context, Examples, SelectionMethod, UniformOptions, UpperBoundOptions, method_class
from isample.step import TrainStep
from isample.timing import PhaseTimer


@dataclass
class Iteration:
    """What one sampler step did. Tensors are detached and stay on the model's device."""

    indices: torch.Tensor  # data-set indices of the b trained examples (CPU)
    weights: torch.Tensor  # their loss weights (CPU; all 1 for a uniform draw)
    used_importance: bool
    tau: float  # smoothed variance-reduction estimate after this step
    tau_threshold: float  # threshold after this step (nan for methods without one)
    a: float  # current estimate of the method's cost over the training step's (nan if unknown)
    loss: torch.Tensor  # mean(w * loss): unbiased estimate of the uniform training loss
    plain_loss: torch.Tensor  # mean(loss) over the trained examples, as the notebook logged it
    correct: torch.Tensor  # number of trained examples classified correctly
    accuracy_weighted: torch.Tensor  # sum(w * correct) / sum(w) over the trained examples
    phases: dict[str, float] | None  # seconds per phase, None when timing is off


class Sampler:
    """Trains `model` with the examples a selection method chooses, one iteration per `step()`.

    method: a name of `isample.methods.METHODS` or a SelectionMethod subclass; options: its
    Options (defaults when None). transform: a batch transform applied to drawn examples.
    Under DDP, `model` is the DistributedDataParallel wrapper (the training step goes through it,
    the method's own forwards through the module inside, so they need no collective), batch_size
    is this rank's share of the global batch, `generator` this rank's own and `shared_generator`
    one seeded alike on every rank; `group` defaults to torch.distributed's, when initialised.
    """

    def __init__(
        self,
        method: str | type[SelectionMethod],
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        options: Any = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        timing: bool = True,
        autocast_dtype: torch.dtype | None = None,
        callback: Callable[[Iteration], None] | None = None,
        group: Group | None = None,
        shared_generator: torch.Generator | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > len(inputs):
            raise ValueError(f"batch_size {batch_size} is larger than the data set ({len(inputs)})")
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        device = next(model.parameters()).device
        self.timer = PhaseTimer(timing, device)
        self.examples = Examples(inputs, targets, device, transform, generator)
        method_type = method_class(method) if isinstance(method, str) else method
        inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
        self.context = Context(inner, self.examples, batch_size, self.timer, autocast_dtype,
                               group=group or current_group(), shared_generator=shared_generator or generator)
        self.method = method_type(self.context, options)
        self.train_step = TrainStep(model, optimizer, self.timer, autocast_dtype)
        self.batch_size = batch_size
        self.callback = callback

    def start_epoch(self) -> int:
        """Tell the method an epoch starts; returns the iterations in it (see SelectionMethod.start_epoch)."""
        return self.method.start_epoch()

    def step(self) -> Iteration:
        timer = self.timer
        timer.reset()
        selection = self.method.select()
        result = self.train_step(selection.inputs, selection.targets, selection.weights)
        self.method.observe(selection, result)
        method = self.method
        weights = selection.weights if selection.weights is not None else torch.ones(len(selection.indices))
        iteration = Iteration(
            indices=selection.indices,
            weights=weights,
            used_importance=selection.used_importance,
            tau=method.tau,
            tau_threshold=method.tau_threshold,
            a=method.a,
            loss=result.loss,
            plain_loss=result.plain_loss,
            correct=result.correct,
            accuracy_weighted=result.accuracy_weighted,
            phases=None,
        )
        if self.callback is not None:
            with timer.phase("callback"):
                self.callback(iteration)
        iteration.phases = timer.snapshot()
        return iteration

    def __iter__(self):
        while True:
            yield self.step()

    # The method's running estimates, readable (and settable, for experiments) on the sampler.
    @property
    def tau(self) -> float:
        return self.method.tau

    @tau.setter
    def tau(self, value: float) -> None:
        self.method.tau = value

    @property
    def tau_threshold(self) -> float:
        return self.method.tau_threshold

    @property
    def a(self) -> float:
        return self.method.a

    @property
    def generator(self) -> torch.Generator:
        return self.examples.generator

    def state_dict(self) -> dict:
        state = {"method": self.method.state_dict(), "generator": self.generator.get_state()}
        if self.context.shared_generator is not self.generator:
            state["shared_generator"] = self.context.shared_generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"])
        if "shared_generator" in state:
            self.context.shared_generator.set_state(state["shared_generator"])


class UniformSampler(Sampler):
    """Plain SGD on b examples drawn uniformly; tau is still tracked from the batch's scores."""

    def __init__(self, model, optimizer, inputs, targets, batch_size, *, score="gnorm", tau_momentum=0.9, **common):
        options = UniformOptions(score=score, tau_momentum=tau_momentum)
        super().__init__("uniform", model, optimizer, inputs, targets, batch_size, options=options, **common)


class ImportanceSampler(Sampler):
    """Upper-bound importance sampling with the online threshold tau_th = 1 + a.

    presample: p = B / b (>= 1). tau_threshold: "auto" or a fixed number. score_mode: "eval"
    (running statistics, the 2018 code) or "batch" (BatchNorm uses the statistics of each b-sized
    presample chunk, as in training, and no buffer changes). smoothing: eps in [0, 1), weights
    <= 1 / eps. The defaults (eval, 0.1) are those benchmarks/switch_on.py chose (README). forward_chunk: examples per presample forward in eval mode (0 = all B at once).
    always_importance skips the decision (for timing IS iterations). With timing off, "auto"
    cannot measure a and keeps the 2018 default (B + 3b) / (3b).
    """

    def __init__(
        self, model, optimizer, inputs, targets, batch_size, *, presample=3.0, tau_threshold="auto",
        score="gnorm", score_mode="eval", smoothing=0.1, forward_chunk=0, tau_momentum=0.9,
        presample_bf16=False, always_importance=False, **common,
    ):  # fmt: skip
        options = UpperBoundOptions(
            presample=presample, tau_threshold=tau_threshold, score=score, score_mode=score_mode,
            smoothing=smoothing, forward_chunk=forward_chunk, tau_momentum=tau_momentum,
            presample_bf16=presample_bf16, always_importance=always_importance,
        )  # fmt: skip
        super().__init__("upper_bound", model, optimizer, inputs, targets, batch_size, options=options, **common)

    @property
    def k(self) -> float:
        return self.method.k
