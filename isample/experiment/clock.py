"""The budget clock: training seconds against a budget, paused while evaluating, so runs of different
methods with the same budget get the same training time. Two clocks run side by side: the wall clock,
and the priced clock (`isample.pricing`), which adds the price of each iteration's work and is the same
on any machine; the budget counts one of them (`priced`). Under DDP every rank reads rank 0's clock."""

import math
import time
from collections.abc import Callable

from isample.distributed import SINGLE, Group
from isample.pricing import Prices, Work


class BudgetClock:
    def __init__(
        self,
        budget_seconds: float,
        clock: Callable[[], float] = time.perf_counter,
        group: Group = SINGLE,
        stop_requested: Callable[[], bool] = lambda: False,
        prices: Prices | None = None,
        priced: bool = False,
    ):
        if priced and prices is None:
            raise ValueError("a priced budget needs prices")
        self.budget = budget_seconds
        self._clock = clock
        self._wall = 0.0
        self._priced = 0.0
        self._started: float | None = None
        self.group = group
        self.prices, self.priced = prices, priced
        self.last_shared = 0.0  # rank 0's budget seconds at the last `shared()`
        self._stop_requested = stop_requested
        self.stopping = False  # whether any rank had been asked to stop at the last `shared()`

    def resume(self, wall: float, priced: float) -> None:
        """Continue from a resumed run's seconds on both clocks; alike on every rank."""
        self._wall, self._priced = wall, priced
        self.last_shared = self.elapsed

    def start(self) -> None:
        self._started = self._clock()

    def pause(self) -> None:
        if self._started is not None:
            self._wall += self._clock() - self._started
            self._started = None

    def charge(self, work: Work) -> None:
        """An iteration's work, at the prices (a few multiplications: no clock is read)."""
        if self.prices is not None:
            self._priced += self.prices.seconds(work)

    @property
    def wall(self) -> float:
        """This rank's own wall-clock training seconds so far."""
        running = self._clock() - self._started if self._started is not None else 0.0
        return self._wall + running

    @property
    def priced_seconds(self) -> float:
        """The price of this rank's work so far (nan without prices)."""
        return self._priced if self.prices is not None else math.nan

    @property
    def elapsed(self) -> float:
        """This rank's seconds on the clock the budget counts."""
        return self._priced if self.priced else self.wall

    def readings(self, current: bool = False) -> tuple[float, float]:
        """(wall, priced) seconds: now (`current`), or with the budget's clock at its last `shared()`, where
        a stop request was seen (alike on every rank)."""
        if current:
            return self.wall, self.priced_seconds
        return (self.wall, self.last_shared) if self.priced else (self.last_shared, self.priced_seconds)

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
