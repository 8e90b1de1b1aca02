"""The budget clock: training seconds against a budget, paused while evaluating, so runs of different
methods with the same budget get the same training time. Under DDP every rank reads rank 0's clock."""

import time
from collections.abc import Callable

from isample.distributed import SINGLE, Group


class BudgetClock:
    def __init__(
        self,
        budget_seconds: float,
        elapsed: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
        group: Group = SINGLE,
        stop_requested: Callable[[], bool] = lambda: False,
    ):
        self.budget = budget_seconds
        self._clock = clock
        self._elapsed = elapsed
        self._started: float | None = None
        self.group = group
        self.last_shared = elapsed  # rank 0's elapsed seconds at the last `shared()`
        self._stop_requested = stop_requested
        self.stopping = False  # whether any rank had been asked to stop at the last `shared()`

    def resume(self, elapsed: float) -> None:
        """Continue from `elapsed` training seconds (a resumed run's); alike on every rank."""
        self._elapsed = self.last_shared = elapsed

    def start(self) -> None:
        self._started = self._clock()

    def pause(self) -> None:
        if self._started is not None:
            self._elapsed += self._clock() - self._started
            self._started = None

    @property
    def elapsed(self) -> float:
        """This rank's own training seconds so far."""
        running = self._clock() - self._started if self._started is not None else 0.0
        return self._elapsed + running

    def shared(self) -> float:
        """Rank 0's elapsed seconds, on every rank, and whether any rank was asked to stop (`stopping`):
        one collective (a sum: the other ranks add 0 seconds), so all ranks call it at the same points
        and all stop at the same iteration."""
        elapsed = self.elapsed if self.group.is_main else 0.0
        self.last_shared, stops = self.group.total([elapsed, float(self._stop_requested())])
        self.stopping = stops > 0
        return self.last_shared

    def progress(self) -> float:
        """The share of the budget spent at the last `shared()`, alike on every rank (no collective)."""
        return self.last_shared / self.budget
