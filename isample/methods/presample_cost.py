"""upper_bound's presample cost a: its seconds over a training step's, measured while training, or its
price under a priced clock (`isample.pricing`): the price side of the switching rule
(`isample.methods.switching`, the side that sets it against the draw's speed-up).

Measured, a is a moving average of the presample's seconds (its forward of B, scoring, and loading B from
disk) over the training step's (forward, backward, optimizer step). The times are read when the timer can
tell: at once on the wall clock, `lag` iterations on on CUDA events. While IS is off nothing is
presampled, so a comes from probes: one chunk's scoring forward, timed and scaled to B; the estimate is
the median of the last PROBES probes, so that one probe hit by other load cannot price IS out for good.
"""

import math
import statistics
from collections import deque

from isample.methods.base import SelectionMethod, moving_average
from isample.names import TRAIN_STEP_PHASES

PROBES = 5  # probes the estimate is the median of

# A presample's cost, as the notebook counts it: the forward of B and the bound, and loading B from disk.
PRESAMPLE_PHASES = ("presample_forward", "scoring", "data_loading")


class PresampleCost(SelectionMethod):
    """a and k = T / t of upper_bound. The subclass sets `presample_size`, `choice` (`presample: auto`'s or
    None), `fixed_threshold`, `iterations` and `_ratio_used` (the ratio an iteration presampled at), and hands
    over each presample's reading (`_presample_reading`) and, while IS is off, probes (`_queue_probe`)."""

    def __init__(self, context, options=None):
        super().__init__(context, options)
        # Smoothed phase times (seconds) behind a; "presample" is the forward of B plus scoring.
        self.time_ema: dict[str, float | None] = {"presample": None, "forward": None, "backward": None, "step": None}
        self._presample_reading = None  # this iteration's presample cost (`PhaseTimer.since`)
        # Times read `lag` iterations after they were taken (on CUDA events; at once on the wall clock).
        self._pending_times: deque[tuple] = deque()
        self._pending_probes: deque[tuple] = deque()
        self._probes: deque[float] = deque(maxlen=PROBES)
        self._presamples_timed = False

    def _pricing(self) -> bool:
        """`auto` prices IS from probes until a real presample has been timed (never under a priced clock)."""
        timed = self.context.timer.enabled and self.context.prices is None
        return timed and self.fixed_threshold is None and not self._presamples_timed

    def _queue_probe(self, start, chunk: int, trained: int) -> None:
        """A probe: one chunk's scoring since `start`, of `trained` examples repeated up to `chunk`, read when
        the timer can tell (on CUDA events, `lag` iterations on)."""
        timer = self.context.timer
        per_chunk, total = timer.since(start, PRESAMPLE_PHASES[:2]), timer.since(start)
        loading = timer.since(None, ("data_loading",))
        self._pending_probes.append((self.iterations, per_chunk, total, loading, chunk, trained))

    def _add_probes(self) -> None:
        """The probes whose times are known by now, while IS is still priced by probes."""
        pending, lag = self._pending_probes, self.context.timer.lag
        while pending and self.iterations - pending[0][0] >= lag:
            _, per_chunk, total, loading, chunk, trained = pending.popleft()
            per_chunk, total, loading = per_chunk.value(), total.value(), loading.value()
            if not self._pricing():  # a real presample was timed meanwhile
                continue
            # Each chunk's forward and bound are paid B / chunk times, the call's own overhead once.
            probe = per_chunk * self.presample_size / chunk + max(total - per_chunk, 0.0)
            # From disk, B examples must be loaded too: at this iteration's rate for its b (0 in memory).
            probe += loading * self.presample_size / trained
            self._probes.append(self.context.group.mean([probe])[0])  # alike on every rank
            self.time_ema["presample"] = statistics.median(self._probes)

    @property
    def k(self) -> float:
        """Measured T / t from the training step's own forward and backward times."""
        forward, backward = self.time_ema["forward"], self.time_ema["backward"]
        return backward / forward if forward and backward is not None else math.nan

    def _measured_a(self) -> float:
        ema = self.time_ema
        if ema["presample"] is None or ema["forward"] is None:
            return math.nan
        train_step = ema["forward"] + ema["backward"] + ema["step"]
        return ema["presample"] / train_step if train_step > 0 else math.nan

    def _a(self) -> float:
        """a: a priced clock's price of the presample over a training step's, when the run is priced (the
        same at every iteration and on every machine), else the measured one."""
        prices = self.context.prices
        if prices is not None:
            return prices.presample_share(self.presample_size, self.context.batch_size)
        return self._measured_a()

    def _a_of(self, ratio: float) -> float:
        """`auto`: a at presample ratio `ratio`, priced, or the measured a of the current B in proportion to
        the presample's size (B / 3b, the 2018 default's, while nothing is measured)."""
        b = self.context.batch_size
        size = round(ratio * b)
        if self.context.prices is not None:
            return self.context.prices.presample_share(size, b)
        a = self._measured_a()
        return size / (3 * b) if math.isnan(a) else a * size / self.presample_size

    def _known_times(self, iteration: int, by_score: bool) -> tuple | None:
        """This iteration's times are taken; those of the one `lag` back (this one, on the wall clock) are
        read: (its index, whether it presampled, presample, forward, backward and step seconds)."""
        timer = self.context.timer
        if not timer.enabled:
            return None
        presample = self._presample_reading if by_score else None
        size = round(self._ratio_used * self.context.batch_size) if self.choice and by_score else self.presample_size
        self._pending_times.append(
            (iteration, by_score, size, presample, *(timer.since(None, (phase,)) for phase in TRAIN_STEP_PHASES))
        )
        if len(self._pending_times) <= timer.lag:
            return None
        iteration, by_score, size, *readings = self._pending_times.popleft()
        presample, *train_step = (reading.value() if reading else 0.0 for reading in readings)
        # A presample's seconds for the current B (`auto` may have taken it at another; 1 at a fixed p).
        return (iteration, by_score, presample * (self.presample_size / size), *train_step)

    def _update_time_estimates(
        self, used_importance: bool, presample: float, forward: float, backward: float, step: float
    ) -> None:
        ema, m = self.time_ema, self.options.tau_momentum
        if used_importance:
            ema["presample"] = moving_average(ema["presample"], presample, m)
            self._presamples_timed = True
        ema["forward"] = moving_average(ema["forward"], forward, m)
        ema["backward"] = moving_average(ema["backward"], backward, m)
        ema["step"] = moving_average(ema["step"], step, m)

    def _rescale_presample(self, size: int) -> None:
        """`auto` changed B: the presample's measured seconds are kept for the current B, so they follow it."""
        scale = size / self.presample_size
        if self.time_ema["presample"] is not None:
            self.time_ema["presample"] *= scale
        self._probes = deque((probe * scale for probe in self._probes), maxlen=PROBES)
        self.presample_size = size

    def state_dict(self) -> dict:
        return {
            "time_ema": dict(self.time_ema),
            "probes": list(self._probes),
            "presamples_timed": self._presamples_timed,
        }

    def load_state_dict(self, state: dict) -> None:
        self.time_ema = dict(state["time_ema"])
        self._probes = deque(state["probes"], maxlen=PROBES)
        self._presamples_timed = state["presamples_timed"]
