"""Uniform SGD and upper-bound importance sampling over in-memory tensors.

Each `step()` is one iteration of the notebook's breakdown: decide, draw, presample forward and
score (IS only), train on b examples with the weighted loss, update tau and the threshold.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from isample import costmodel
from isample.sampling import importance_draw, variance_reduction
from isample.scores import SCORE_FUNCTIONS, per_example_loss
from isample.timing import PhaseTimer


@dataclass
class Iteration:
    """What one sampler step did. Tensors are detached and stay on the model's device."""

    indices: torch.Tensor  # data-set indices of the b trained examples (CPU)
    weights: torch.Tensor  # their importance weights (CPU; all 1 for a uniform draw)
    used_importance: bool
    tau: float  # smoothed variance-reduction estimate after this step
    tau_threshold: float  # threshold after this step (nan for the uniform sampler)
    a: float  # current estimate of presample time / training-step time (nan if unknown)
    loss: torch.Tensor  # mean(w * loss): unbiased estimate of the uniform training loss
    plain_loss: torch.Tensor  # mean(loss) over the trained examples, as the notebook logged it
    correct: torch.Tensor  # number of trained examples classified correctly
    phases: dict[str, float] | None  # seconds per phase, None when timing is off


def _ema(previous: float | None, value: float, momentum: float) -> float:
    return value if previous is None else momentum * previous + (1 - momentum) * value


class UniformSampler:
    """Plain SGD on b examples drawn uniformly; tau is still tracked from the batch's scores."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        score: str = "gnorm",
        tau_momentum: float = 0.9,
        generator: torch.Generator | None = None,
        timing: bool = True,
        autocast_dtype: torch.dtype | None = None,
        callback: Callable[[Iteration], None] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        if batch_size > len(inputs):
            raise ValueError(f"batch_size {batch_size} is larger than the data set ({len(inputs)})")
        if score not in SCORE_FUNCTIONS:
            raise ValueError(f"unknown score {score!r}; known: {', '.join(SCORE_FUNCTIONS)}")
        if not 0 <= tau_momentum < 1:
            raise ValueError(f"tau_momentum must be in [0, 1), got {tau_momentum}")
        self.model = model
        self.optimizer = optimizer
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.transform = transform
        self.score_function = SCORE_FUNCTIONS[score]
        self.tau_momentum = tau_momentum
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        self.generator = generator
        self.device = next(model.parameters()).device
        self.timer = PhaseTimer(timing, self.device)
        self.autocast_dtype = autocast_dtype
        self.callback = callback
        self.tau = 0.0  # EMA starting at 0, as in the 2018 reference code
        self.iterations = 0
        # Smoothed phase times (seconds) behind the a and k estimates.
        self._time_ema: dict[str, float | None] = {"presample": None, "forward": None, "backward": None, "step": None}

    # -- pieces shared by both samplers -------------------------------------------------------

    def _draw_uniform(self, count: int) -> torch.Tensor:
        return torch.randperm(len(self.inputs), generator=self.generator)[:count]

    def _batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data_indices = indices.to(self.inputs.device)
        x = self.inputs[data_indices].to(self.device, non_blocking=True)
        y = self.targets[data_indices].to(self.device, non_blocking=True)
        if self.transform is not None:
            x = self.transform(x)
        return x, y

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=self.autocast_dtype is not None
        )

    def _train(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None):
        timer = self.timer
        with timer.phase("train_forward"):
            with self._autocast():
                logits = self.model(x)
            losses = per_example_loss(logits, y)
            loss = losses.mean() if weights is None else (losses * weights).mean()
        with timer.phase("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with timer.phase("optimizer_step"):
            self.optimizer.step()
        logits = logits.detach()
        correct = (logits.argmax(dim=1) == y).sum()
        return logits, loss.detach(), losses.detach().mean(), correct

    def _update_time_estimates(self, presample_seconds: float | None) -> None:
        phases = self.timer.seconds
        m = self.tau_momentum
        if presample_seconds is not None:
            self._time_ema["presample"] = _ema(self._time_ema["presample"], presample_seconds, m)
        self._time_ema["forward"] = _ema(self._time_ema["forward"], phases["train_forward"], m)
        self._time_ema["backward"] = _ema(self._time_ema["backward"], phases["backward"], m)
        self._time_ema["step"] = _ema(self._time_ema["step"], phases["optimizer_step"], m)

    @property
    def k(self) -> float:
        """Measured T / t from the training step's own forward and backward times."""
        forward, backward = self._time_ema["forward"], self._time_ema["backward"]
        if not forward or backward is None:
            return float("nan")
        return backward / forward

    def _updated_threshold(self) -> tuple[float, float]:
        """(tau_th, a) after this step; the uniform sampler has no threshold."""
        return float("nan"), float("nan")

    def _finish(self, indices, weights, used_importance, tau_step, train_out, presample_seconds) -> Iteration:
        logits, loss, plain_loss, correct = train_out
        timer = self.timer
        with timer.phase("threshold_update"):
            if timer.enabled:
                self._update_time_estimates(presample_seconds)
            self.tau = self.tau_momentum * self.tau + (1 - self.tau_momentum) * tau_step
            tau_threshold, a = self._updated_threshold()
        self.iterations += 1
        iteration = Iteration(
            indices=indices,
            weights=weights,
            used_importance=used_importance,
            tau=self.tau,
            tau_threshold=tau_threshold,
            a=a,
            loss=loss,
            plain_loss=plain_loss,
            correct=correct,
            phases=None,
        )
        if self.callback is not None:
            with timer.phase("callback"):
                self.callback(iteration)
        iteration.phases = timer.snapshot()
        return iteration

    def state_dict(self) -> dict:
        return {
            "tau": self.tau,
            "iterations": self.iterations,
            "time_ema": dict(self._time_ema),
            "generator": self.generator.get_state(),
            "tau_threshold": getattr(self, "tau_threshold", None),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tau = state["tau"]
        self.iterations = state["iterations"]
        self._time_ema = dict(state["time_ema"])
        self.generator.set_state(state["generator"])
        if state.get("tau_threshold") is not None:
            self.tau_threshold = state["tau_threshold"]

    # -- the iteration --------------------------------------------------------------------------

    def _uniform_iteration(self):
        """Draw b examples uniformly and train on them; tau_step from the training logits."""
        timer = self.timer
        with timer.phase("draw_batch"):
            indices = self._draw_uniform(self.batch_size)
            x, y = self._batch(indices)
        train_out = self._train(x, y, None)
        with timer.phase("scoring"):
            tau_step = variance_reduction(self.score_function(train_out[0], y))
        return indices, torch.ones(self.batch_size), tau_step, train_out

    def step(self) -> Iteration:
        self.timer.reset()
        indices, weights, tau_step, train_out = self._uniform_iteration()
        return self._finish(indices, weights, False, tau_step, train_out, None)

    def __iter__(self):
        while True:
            yield self.step()


class ImportanceSampler(UniformSampler):
    """Upper-bound importance sampling with the online threshold tau_th = 1 + a.

    presample: p = B / b (>= 1). tau_threshold: "auto" or a fixed number. forward_chunk: examples
    per presample forward (0 = all B at once). always_importance skips the decision (for timing
    IS iterations). With timing off, "auto" cannot measure a and keeps
    the 2018 default (B + 3b) / (3b).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        presample: float = 3.0,
        tau_threshold: float | str = "auto",
        forward_chunk: int = 0,
        always_importance: bool = False,
        **kwargs,
    ):
        super().__init__(model, optimizer, inputs, targets, batch_size, **kwargs)
        if not presample >= 1:
            raise ValueError(f"presample ratio p must be >= 1, got {presample}")
        if tau_threshold != "auto" and not (isinstance(tau_threshold, (int, float)) and tau_threshold >= 0):
            raise ValueError(f"tau_threshold must be 'auto' or a number >= 0, got {tau_threshold!r}")
        if forward_chunk < 0:
            raise ValueError(f"forward_chunk must be >= 0 (0 = all B at once), got {forward_chunk}")
        self.presample = presample
        self.presample_size = round(presample * batch_size)
        if self.presample_size > len(inputs):
            raise ValueError(
                f"presample size B = p * b = {self.presample_size} is larger than the data set ({len(inputs)})"
            )
        self.fixed_threshold = None if tau_threshold == "auto" else float(tau_threshold)
        self.forward_chunk = forward_chunk or self.presample_size
        self.always_importance = always_importance
        self.tau_threshold, _ = self._threshold()

    @property
    def a(self) -> float:
        """Measured presample time / training-step time; before a presample, p / (1 + k)."""
        ema = self._time_ema
        if ema["forward"] is None:
            return float("nan")
        train_step = ema["forward"] + ema["backward"] + ema["step"]
        if ema["presample"] is not None and train_step > 0:
            return ema["presample"] / train_step
        k = self.k
        return costmodel.ratio_from_k(self.presample, k) if k == k else float("nan")

    def _threshold(self) -> tuple[float, float]:
        a = self.a
        if self.fixed_threshold is not None:
            return self.fixed_threshold, a
        if a != a:  # nothing measured yet
            return costmodel.default_tau_threshold(self.presample_size, self.batch_size), a
        return costmodel.tau_threshold(a), a

    def _updated_threshold(self) -> tuple[float, float]:
        self.tau_threshold, a = self._threshold()
        return self.tau_threshold, a

    def _presample_scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        timer = self.timer
        was_training = self.model.training
        self.model.eval()  # BatchNorm uses running statistics and is left unchanged
        scores = []
        try:
            with torch.inference_mode():
                for start in range(0, len(x), self.forward_chunk):
                    with timer.phase("presample_forward"):
                        with self._autocast():
                            logits = self.model(x[start : start + self.forward_chunk])
                    with timer.phase("scoring"):
                        scores.append(self.score_function(logits, y[start : start + self.forward_chunk]))
        finally:
            self.model.train(was_training)
        with timer.phase("scoring"):
            return torch.cat(scores)

    def step(self) -> Iteration:
        timer = self.timer
        timer.reset()
        with timer.phase("decision"):
            use_importance = self.always_importance or self.tau > self.tau_threshold
        if not use_importance:
            indices, weights, tau_step, train_out = self._uniform_iteration()
            presample_seconds = None
        else:
            with timer.phase("draw_presample"):
                presample_indices = self._draw_uniform(self.presample_size)
                x_all, y_all = self._batch(presample_indices)
            scores = self._presample_scores(x_all, y_all)
            with timer.phase("draw_batch"):
                positions, weights = importance_draw(scores, self.batch_size, self.generator)
                indices = presample_indices[positions]
                device_positions = positions.to(self.device)
                x, y = x_all[device_positions], y_all[device_positions]
                device_weights = weights.to(self.device, non_blocking=True)
            with timer.phase("scoring"):
                tau_step = variance_reduction(scores)
            # The presample's cost, as the notebook counts it: forward of B plus the bound.
            presample_seconds = timer.seconds["presample_forward"] + timer.seconds["scoring"]
            train_out = self._train(x, y, device_weights)
        return self._finish(indices, weights, use_importance, tau_step, train_out, presample_seconds)
