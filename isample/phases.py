"""Per-phase wall-clock timing of a sampler iteration, following the notebook's breakdown."""

import time

import torch

from isample.names import MODEL_PHASES, PHASES, TRAIN_STEP_PHASES  # noqa: F401 (re-exported)


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
        timer = self._timer
        if timer.synchronize:
            torch.cuda.synchronize()
        self._start = time.perf_counter()
        if timer.active:  # a phase inside another: the outer one's clock stops meanwhile
            outer = timer.active[-1]
            timer.seconds[outer._name] += self._start - outer._start
        timer.active.append(self)
        return self

    def __exit__(self, *exc):
        timer = self._timer
        if timer.synchronize:
            # CUDA kernels run asynchronously: without this the time lands in a later phase.
            torch.cuda.synchronize()
        now = time.perf_counter()
        timer.seconds[self._name] += now - self._start
        timer.active.pop()
        if timer.active:
            timer.active[-1]._start = now
        return False


class PhaseTimer:
    """Accumulates seconds per phase; when disabled, `phase()` returns a shared no-op. Phases are
    exclusive: time spent in a phase entered inside another (loading examples while drawing them)
    counts for the inner one only, so the phases of an iteration add up to its time."""

    def __init__(self, enabled: bool = True, device: torch.device | str | None = None):
        self.enabled = enabled
        self.synchronize = enabled and torch.device(device or "cpu").type == "cuda"
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.active: list[_Phase] = []  # the phases entered and not yet left, innermost last
        self._phases = {name: _Phase(self, name) for name in PHASES}

    def phase(self, name: str):
        return self._phases[name] if self.enabled else _NO_PHASE

    def reset(self) -> None:
        for name in self.seconds:
            self.seconds[name] = 0.0

    def snapshot(self) -> dict[str, float] | None:
        return dict(self.seconds) if self.enabled else None
