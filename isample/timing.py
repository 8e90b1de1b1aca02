"""Per-phase wall-clock timing of a sampler iteration, following the notebook's breakdown."""

import time

import torch

# The notebook's breakdown of one iteration, in order.
PHASES = (
    "decision",  # importance-sample or not: tau against tau_th
    "draw_presample",  # uniform draw of B examples (indexing, transfer, augmentation)
    "presample_forward",  # forward of B without gradients, chunk by chunk
    "scoring",  # per-example gradient-norm bound (or loss) from the logits
    "draw_batch",  # importance weights and the draw of b (or the uniform draw of b)
    "train_forward",  # forward of the b trained examples with gradients
    "backward",
    "optimizer_step",
    "threshold_update",  # tau, a and tau_th
    "callback",
)
MODEL_PHASES = ("presample_forward", "train_forward", "backward", "optimizer_step")
TRAIN_STEP_PHASES = ("train_forward", "backward", "optimizer_step")


class _NoPhase:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_PHASE = _NoPhase()


class _Phase:
    __slots__ = ("_timer", "_name", "_start")

    def __init__(self, timer: "PhaseTimer", name: str):
        self._timer = timer
        self._name = name

    def __enter__(self):
        if self._timer.synchronize:
            torch.cuda.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self._timer.synchronize:
            # CUDA kernels run asynchronously: without this the time lands in a later phase.
            torch.cuda.synchronize()
        self._timer.seconds[self._name] += time.perf_counter() - self._start
        return False


class PhaseTimer:
    """Accumulates seconds per phase; when disabled, `phase()` returns a shared no-op."""

    def __init__(self, enabled: bool = True, device: torch.device | str | None = None):
        self.enabled = enabled
        self.synchronize = enabled and torch.device(device or "cpu").type == "cuda"
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._phases = {name: _Phase(self, name) for name in PHASES}

    def phase(self, name: str):
        return self._phases[name] if self.enabled else _NO_PHASE

    def reset(self) -> None:
        for name in self.seconds:
            self.seconds[name] = 0.0

    def snapshot(self) -> dict[str, float] | None:
        return dict(self.seconds) if self.enabled else None
