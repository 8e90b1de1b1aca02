"""The training step, written once for every selection method: weighted loss, backward, optimizer step."""

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from isample.phases import PhaseTimer
from isample.pricing import Work
from isample.scores import per_example_loss


@dataclass
class StepResult:
    """What the training forward computed, detached; selection methods read it for free."""

    logits: torch.Tensor
    losses: torch.Tensor  # per-example cross-entropy, float32
    weighted_loss: torch.Tensor  # mean(w * loss): unbiased for the uniform loss when w are importance weights
    plain_loss: torch.Tensor  # mean(loss) over the trained examples, as the notebook logged it
    correct: torch.Tensor  # number of trained examples classified correctly
    accuracy_weighted: torch.Tensor  # sum(w * correct) / sum(w): accuracy with the sampling bias undone


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype` on `device`; with dtype None, a context that changes nothing."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


@contextmanager
def running_statistics_frozen(model: torch.nn.Module):
    """BatchNorm layers in train mode still normalise with their batch's statistics, but update no
    running mean, variance or batch count (train mode without tracking)."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    for module in norms:
        module.track_running_stats = False
    try:
        yield
    finally:
        for module, track in zip(norms, tracking):
            module.track_running_stats = track


class TrainStep:
    """Trains on b examples with per-example loss weights (None: all 1), timing each phase and counting
    its work (`isample.pricing`) in `work`."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        timer: PhaseTimer,
        autocast_dtype: torch.dtype | None = None,
        work: Work | None = None,
    ):
        self.model = model
        self.work = work if work is not None else Work()
        self.optimizer = optimizer
        self.timer = timer
        self.device = next(model.parameters()).device
        self.autocast_dtype = autocast_dtype

    def __call__(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> StepResult:
        timer = self.timer
        with timer.phase("train_forward"):
            with autocast(self.device, self.autocast_dtype):
                logits = self.model(x)
            losses = per_example_loss(logits, y)
            if weights is not None:
                weights = weights.to(self.device, non_blocking=True)
            loss = losses.mean() if weights is None else (losses * weights).mean()
        with timer.phase("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with timer.phase("optimizer_step"):
            self.optimizer.step()
        self.work.train_step(len(y))
        logits = logits.detach()
        hits = logits.argmax(dim=1) == y
        if weights is None:
            accuracy_weighted = hits.float().mean()
        else:
            accuracy_weighted = (weights * hits).sum() / weights.sum()
        return StepResult(logits, losses.detach(), loss.detach(), losses.detach().mean(), hits.sum(), accuracy_weighted)
