"""Per-phase timing of a sampler iteration, following the notebook's breakdown.

Phases are exclusive: time spent in a phase entered inside another (loading examples while drawing
them) counts for the inner one only, so the phases of an iteration add up to its time. Three clocks:

- the wall clock, on the CPU: a phase's seconds are known as it ends;
- `synchronize` on CUDA (the timing stage): the device is synchronised at every phase edge, so the
  wall clock is exact there, at the price of draining the queue of kernels several times an iteration;
- CUDA events (training on CUDA): one event recorded at every edge, read `EVENT_LAG` iterations later,
  when the device has long passed them, so the CPU keeps queueing work ahead as a plain loop does.
  An edge's event completes when the device reaches it, so the time between two edges is the device's
  time on the work queued in between, or the CPU's, when the device waited for it.

What a method measures inside an iteration (IS's presample, for its online a) is a `Reading`
between two `mark()`s, whose `value()` is known at once on the wall clock and `lag` iterations later
on events.
"""

import time
from collections import deque

import torch

from isample.names import MODEL_PHASES, PHASES, TRAIN_STEP_PHASES  # noqa: F401 (re-exported)

EVENT_LAG = 2  # iterations between an iteration's end and the reading of its events


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
        timer._edge(self._name)
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
        timer._edge(timer.active[-1]._name if timer.active else None)
        return False


class _Timeline:
    """One iteration's edges on CUDA: (event, the phase that runs from it to the next edge, None for none)."""

    __slots__ = ("edges",)

    def __init__(self):
        self.edges: list[tuple[torch.cuda.Event, str | None]] = []

    def record(self, phase: str | None) -> int:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self.edges.append((event, phase))
        return len(self.edges) - 1

    def seconds(self, start: int = 0, end: int | None = None, phases=None) -> dict[str, float]:
        """Seconds per phase between edges `start` and `end` (the last when None), of `phases` (all when None)."""
        end = len(self.edges) - 1 if end is None else end
        self.edges[end][0].synchronize()  # long reached when read `lag` iterations on
        seconds: dict[str, float] = {}
        for (event, phase), (following, _) in zip(self.edges[start:end], self.edges[start + 1 : end + 1]):
            if phase is not None and (phases is None or phase in phases):
                seconds[phase] = seconds.get(phase, 0.0) + event.elapsed_time(following) / 1000
        return seconds


class Reading:
    """Seconds measured between a mark and a later point of an iteration (`PhaseTimer.since`)."""

    __slots__ = ("_value",)

    def __init__(self, value: float):
        self._value = value

    def value(self) -> float:
        return self._value


class _EventReading(Reading):
    """A reading on CUDA events: its value is read from them when asked (after `lag` iterations)."""

    __slots__ = ("_timeline", "_span", "_phases")

    def __init__(self, timeline: _Timeline, start: int, end: int, phases: tuple[str, ...] | None):
        super().__init__(None)
        self._timeline, self._span, self._phases = timeline, (start, end), phases

    def value(self) -> float:
        if self._value is None:
            start, end = self._span
            if self._phases is None:  # all the time between the two edges
                first, last = self._timeline.edges[start][0], self._timeline.edges[end][0]
                last.synchronize()
                self._value = first.elapsed_time(last) / 1000
            else:
                self._value = sum(self._timeline.seconds(start, end, self._phases).values())
            self._timeline = None  # its events can go
        return self._value


class PhaseTimer:
    """Accumulates seconds per phase; when disabled, `phase()` returns a shared no-op.

    On CUDA, `synchronize=True` syncs the device at every phase edge (exact wall-clock seconds, as the
    timing stage needs); otherwise events time the phases without blocking (see the module), and
    `snapshot()` gives the seconds of the iteration `lag` iterations back."""

    def __init__(self, enabled: bool = True, device: torch.device | str | None = None, synchronize: bool = False):
        on_cuda = enabled and torch.device(device or "cpu").type == "cuda"
        self.enabled = enabled
        self.synchronize = on_cuda and synchronize
        self.events = on_cuda and not synchronize
        self.lag = EVENT_LAG if self.events else 0  # iterations before a reading's value is known
        # and before values computed on the device are read (`isample.device_reads`), timed or not
        self.read_lag = EVENT_LAG if torch.device(device or "cpu").type == "cuda" and not synchronize else 0
        self.seconds = dict.fromkeys(PHASES, 0.0)  # this iteration's, on the wall clock
        self.active: list[_Phase] = []  # the phases entered and not yet left, innermost last
        self._phases = {name: _Phase(self, name) for name in PHASES}
        self._timeline = _Timeline() if self.events else None
        self._ended: deque[_Timeline] = deque()  # iterations ended, their events not read yet
        self._started = time.perf_counter()  # this iteration's start, on the wall clock
        if self.events:
            self._timeline.record(None)

    def phase(self, name: str):
        return self._phases[name] if self.enabled else _NO_PHASE

    def _edge(self, phase: str | None) -> None:
        if self.events:
            self._timeline.record(phase)

    def _running(self) -> str | None:
        return self.active[-1]._name if self.active else None

    def reset(self) -> None:
        """An iteration starts: on events, the last one's timeline waits to be read (`snapshot`)."""
        for name in self.seconds:
            self.seconds[name] = 0.0
        self._started = time.perf_counter()
        if self.events and len(self._timeline.edges) > 1:
            self._ended.append(self._timeline)
            self._timeline = _Timeline()
            self._timeline.record(None)

    def snapshot(self) -> dict[str, float] | None:
        """This iteration's seconds per phase; on events, those of the iteration `lag` back (zeros until
        there is one), so that reading them never waits for the device."""
        if not self.enabled:
            return None
        if not self.events:
            return dict(self.seconds)
        if len(self._ended) < self.lag:  # the iteration `lag` back is still to come
            return dict.fromkeys(PHASES, 0.0)
        return dict.fromkeys(PHASES, 0.0) | self._ended.popleft().seconds()

    def drain(self) -> dict[str, float]:
        """The seconds per phase of every iteration not read yet, summed (waits for the device; at an
        epoch's end). Nothing on the wall clock, where `snapshot` gave every iteration already."""
        total = dict.fromkeys(PHASES, 0.0)
        if self.events:
            if len(self._timeline.edges) > 1:
                self.reset()
            while self._ended:
                for phase, seconds in self._ended.popleft().seconds().items():
                    total[phase] += seconds
        return total

    def mark(self):
        """A point of this iteration, for `since` (taken between phases: the wall clock credits a running
        phase only when it ends)."""
        if self.events:
            return self._timeline, self._timeline.record(self._running())
        return dict(self.seconds), time.perf_counter()

    def since(self, mark=None, phases: tuple[str, ...] | None = None) -> Reading:
        """The seconds in `phases` between `mark` (the iteration's start when None) and now; with phases
        None, all the time between them, inside a phase or not. Taken between phases."""
        if self.events:
            timeline, start = mark if mark is not None else (self._timeline, 0)
            return _EventReading(timeline, start, timeline.record(self._running()), phases)
        before, started = mark if mark is not None else (dict.fromkeys(PHASES, 0.0), self._started)
        if phases is None:
            return Reading(time.perf_counter() - started)
        return Reading(sum(self.seconds[name] - before[name] for name in phases))
