"""upper_bound's switching rule: whether an iteration importance-samples, speed-up > tau_th = 1 + a.

Kept apart from the sampler (`isample.methods.upper_bound`: the presample's scoring forward, the draw of
b and its weights) because it changes for other reasons: how tau is estimated, how the presample's cost
a is measured or priced, and the rule that sets one against the other.

The speed-up is the draw's predicted one (`isample.methods.speedup`), of the scores tau is taken of; tau,
the notebook's quantity, is recorded beside it; a fixed tau_th keeps the 2018 code's rule, tau > tau_th.
tau is a moving average of sqrt(n sum g_i^2): over the presample's scores with IS on; with IS off, by
default (`tau_source: training`) over the training forward's scores, free, as the 2018 code does; or
(`scoring`) over one chunk of the batch just trained, scored as a presample is (score_mode), every
TAU_EVERY iterations. With BatchNorm the two could part (batch against running statistics); measured,
they agree within 0.02 (docs/switching-rule.md). The training forward's tau is recorded whichever decides.
tau_th = 1 + a (`auto`), a being the measured presample time over the training-step time, or, under a
priced clock (`isample.pricing`), the presample's price over the training step's; while IS is
off, a measured comes from probes (one chunk's scoring forward, timed), so pricing draws nothing and the
stream and augmentation stay the uniform run's.
`presample: auto` chooses p while training, up to `presample_max` (`isample.methods.presample_ratio`):
the ratio of the largest predicted speed-up s(p) / (1 + a(p)), IS off when that is not above 1.
"""

import math
import statistics
from collections import deque

import torch

from isample import costmodel
from isample.methods.base import Selection, SelectionMethod, moving_average
from isample.methods.catalog import UpperBoundOptions
from isample.methods.presample_ratio import RatioChoice
from isample.methods.speedup import SpeedupEstimate
from isample.names import TRAIN_STEP_PHASES
from isample.sampling import variance_reduction
from isample.step import StepResult

PROBE_EVERY = 50  # iterations between probes of the presample's cost while IS is off (tau_source: training)
TAU_EVERY = 16  # iterations between scoring-mode samples of tau while IS is off (tau_source: scoring), each
# also a probe: one chunk's forward every 16 iterations, x1.010 a uniform iteration on resnet8 (mean)
PROBES = 5  # probes the estimate is the median of

# A presample's cost, as the notebook counts it: the forward of B and the bound, and loading B from disk.
PRESAMPLE_PHASES = ("presample_forward", "scoring", "data_loading")


class SwitchingRule(SelectionMethod):
    """tau, a and tau_th of upper_bound, the presample size B they are taken at, and the rule. The
    subclass provides the scores they are taken of: `score_function`, `chunks(size)` and
    `presample_scores(x, y, chunks)`; its `select` hands over each presample's tau (`_tau_step`, and with
    `auto` `_ratio_speedups` and `_ratio_used`) and the reading of its cost (`_presample_reading`)."""

    def __init__(self, context, options: UpperBoundOptions | None = None):
        super().__init__(context, options)
        self.tau = 0.0  # the tau that decides; its first sample sets it (an average from 0 would lag)
        self.tau_training = 0.0  # of the training forward's scores (recorded whatever decides)
        self.tau_samples = 0
        options, b = self.options, context.batch_size
        largest = round(options.largest_presample * b)
        if largest > len(context.examples):
            raise ValueError(
                f"presample size B = p * b = {largest} is larger than the data set ({len(context.examples)})"
            )
        # `auto`: the ratio chosen while training, the smallest until IS is on; else the fixed one.
        self.choice = RatioChoice(options.presample_max, options.tau_momentum) if options.presample == "auto" else None
        self.presample_size = round((self.choice.ratio if self.choice else options.presample) * b)
        self._ratio_used = math.nan  # this iteration's presample ratio
        self._ratio_speedups: dict[float, float] = {}  # and the speed-up each ratio's subsample predicts
        self.fixed_threshold = None if options.tau_threshold == "auto" else float(options.tau_threshold)
        self.iterations = 0
        # Smoothed phase times (seconds) behind a; "presample" is the forward of B plus scoring.
        self.time_ema: dict[str, float | None] = {"presample": None, "forward": None, "backward": None, "step": None}
        self._tau_step = math.nan
        # The speed-up's moments, at p = 2 with `auto`
        size = round((self.choice.smallest if self.choice else options.presample) * b)
        self.estimate = SpeedupEstimate(b, size, options.draw, options.smoothing, options.tau_momentum)
        self._moments_step = None  # this iteration's presample's [V, m2]
        self._presample_reading = None  # this iteration's presample cost (`PhaseTimer.since`)
        # Times read `lag` iterations after they were taken (on CUDA events; at once on the wall clock).
        self._pending_times: deque[tuple] = deque()
        self._pending_probes: deque[tuple] = deque()
        self._probes: deque[float] = deque(maxlen=PROBES)
        self._presamples_timed = False
        self._last_by_score = False
        self.tau_threshold, self.a = self._threshold()

    def _importance_on(self) -> bool:
        """The rule: importance-sample when the predicted speed-up > tau_th = 1 + a (with a fixed tau_th, the
        2018 code's tau > tau_th; or always, if so set), once `importance_from` of the budget is spent."""
        deciding = self._deciding_tau() if self.fixed_threshold is not None else self._deciding_speedup()
        use_importance = self.options.always_importance or deciding > self.tau_threshold
        return use_importance and self.context.progress() >= self.options.importance_from

    def _deciding_speedup(self) -> float:
        """`auto`: the chosen ratio's (p = 2's times its gain), else the one speed-up."""
        speedup = self.estimate.speedup()
        return self.choice.estimate(self.choice.ratio, speedup) if self.choice else speedup

    # -- tau while IS is off, and probes of the presample's cost ------------------------------------

    def _pricing(self) -> bool:
        """`auto` prices IS from probes until a real presample has been timed (never under a priced clock)."""
        timed = self.context.timer.enabled and self.context.prices is None
        return timed and self.fixed_threshold is None and not self._presamples_timed

    def _due_for_sample(self, iteration: int) -> bool:
        """While IS is off: after the second iteration (the first one pays one-off costs), then every
        TAU_EVERY iterations (a scoring-mode tau, and a probe while pricing) or, with the training
        forward's tau, every PROBE_EVERY iterations while pricing."""
        every = TAU_EVERY if self.options.tau_source == "scoring" else PROBE_EVERY
        if self.options.tau_source == "training" and not self._pricing():
            return False
        return iteration == 1 or (iteration > 1 and iteration % every == 0)

    def _sample_trained_examples(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Score one chunk of the examples just trained (repeated up to a chunk) as a presample is:
        their tau, and, while pricing, a probe of the presample's cost (the chunk's time scaled to
        B; the estimate is the median of the last PROBES probes, so one probe hit by other load on
        the machine cannot price IS out for good)."""
        timer = self.context.timer
        chunk = math.ceil(self.presample_size / self.chunks(self.presample_size))
        repeats = math.ceil(chunk / len(inputs))
        x, y = torch.cat([inputs] * repeats)[:chunk], torch.cat([targets] * repeats)[:chunk]
        start = timer.mark()
        scores = self.presample_scores(x, y, chunks=1)
        if self._pricing():  # read when the timer can tell (on CUDA events, `lag` iterations on)
            per_chunk, total = timer.since(start, PRESAMPLE_PHASES[:2]), timer.since(start)
            loading = timer.since(None, ("data_loading",))
            self._pending_probes.append((self.iterations, per_chunk, total, loading, chunk, len(inputs)))
        with timer.phase("scoring"):  # each example once
            return variance_reduction(scores[: len(inputs)]), self.estimate.moments_of(scores[: len(inputs)])

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

    # -- the threshold ----------------------------------------------------------------------------

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

    def _choose_ratio(self) -> tuple[float, float]:
        """`auto`: train at the ratio of the largest predicted speed-up; its tau_th = 1 + a at that ratio.
        The presample's measured seconds are kept for the current B, so they follow it."""
        ratio, _ = self.choice.choose(self.estimate.speedup(), self._a_of)
        a = self._a_of(ratio)
        size = round(ratio * self.context.batch_size)
        scale = size / self.presample_size
        if self.time_ema["presample"] is not None:
            self.time_ema["presample"] *= scale
        self._probes = deque((probe * scale for probe in self._probes), maxlen=PROBES)
        self.presample_size = size
        return costmodel.tau_threshold(a), a

    def _deciding_tau(self) -> float:
        """The tau set against tau_th: `auto`'s estimate at the chosen ratio (its tau, that of p = 2, times the
        ratio's gain), else the one tau."""
        return self.choice.estimate(self.choice.ratio, self.tau) if self.choice else self.tau

    def _threshold(self) -> tuple[float, float]:
        if self.choice is not None:
            return self._choose_ratio()
        a = self._a()
        if self.fixed_threshold is not None:
            return self.fixed_threshold, a
        if math.isnan(a):  # nothing measured yet (or timing off): the 2018 default
            return costmodel.default_tau_threshold(self.presample_size, self.context.batch_size), a
        return costmodel.tau_threshold(a), a

    # -- after each iteration ---------------------------------------------------------------------

    def observe(self, selection: Selection, result: StepResult) -> None:
        timer, options = self.context.timer, self.options
        self._last_by_score = selection.by_score
        # Counted first: a diverged model raises below, and a caller that resets it (the timing stage)
        # must not find this iteration due for a sample again and again.
        iteration, self.iterations = self.iterations, self.iterations + 1
        with timer.phase("scoring"):  # the training forward's tau costs nothing
            training_scores = self.score_function(result.logits, selection.targets)
            tau_training = variance_reduction(training_scores)
        moments_step = None
        if selection.by_score:
            tau_step, moments_step = self._tau_step, self._moments_step
        elif options.tau_source == "training":
            tau_step = tau_training
            with timer.phase("scoring"):
                moments_step = self.estimate.moments_of(training_scores)
            if self._due_for_sample(iteration):  # a probe
                self._sample_trained_examples(selection.inputs, selection.targets)
        elif self._due_for_sample(iteration):
            tau_step, moments_step = self._sample_trained_examples(selection.inputs, selection.targets)
        else:
            tau_step = math.nan  # no sample now
        moments_step = moments_step.tolist() if moments_step is not None else [math.nan, math.nan]
        self._add_probes()
        known = self._known_times(iteration, selection.by_score)
        ratio_speedups = self._ratio_speedups if self.choice and selection.by_score else {}
        with timer.phase("threshold_update"):
            # Under DDP every rank takes the mean over ranks of tau and the times, so all hold the same
            # tau and tau_th and decide together; in one process these are its own values.
            times = known[2:] if known else (0.0,) * 4
            values = [tau_step, tau_training, *moments_step, *times, *ratio_speedups.values()]
            tau_step, tau_training, variance, m2, presample, forward, backward, step, *ratio_values = (
                self.context.group.mean(values)
            )
            if self.choice and selection.by_score:
                self.choice.observe(dict(zip(ratio_speedups, ratio_values, strict=True)))
            elif self.choice:
                self.choice.off()
            if known and known[0] > 0:  # the first iteration pays one-off costs: not a time
                self._update_time_estimates(known[1], presample, forward, backward, step)
            self.tau_training = moving_average(
                self.tau_training if iteration else None, tau_training, options.tau_momentum
            )
            if math.isfinite(tau_step):
                self.tau = moving_average(self.tau if self.tau_samples else None, tau_step, options.tau_momentum)
                self.tau_samples += 1
            elif not self.tau_samples:  # until its first sample, the only tau measured yet
                self.tau = self.tau_training
            self.estimate.add(variance, m2)
            self.tau_threshold, self.a = self._threshold()

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

    def metrics(self) -> dict[str, float]:
        """tau and its threshold tau_th = 1 + a, the training forward's tau, a (presample over training-step
        time), k = T / t, the speed-up the draw is predicted to bring (`isample.methods.speedup`), its
        variance ratio r and its speed-up net of the presample's price, speedup / (1 + a), which the rule
        sets against 1; with `auto`, the ratio it presampled at (`_ratio_metrics`), and tau, tau_th and the
        speed-up are those of the chosen ratio."""
        tau = self._deciding_tau() if self.iterations else math.nan  # nothing measured yet
        speedup = self._deciding_speedup() if self.iterations else math.nan
        ratio = self._ratio_metrics() if self.choice else {}
        return {
            **ratio,
            "tau": tau,
            "tau_threshold": self.tau_threshold,
            "tau_training": self.tau_training if self.iterations else math.nan,
            "a": self.a,
            "k": self.k,
            "variance_ratio": speedup**-2 if speedup > 0 else math.nan,
            "speedup": speedup,
            "predicted_speedup": speedup / (1 + self.a),
        }

    def _ratio_metrics(self) -> dict[str, float]:
        """`auto`: the ratio the last iteration presampled at, and one 0/1 column per candidate (their epoch
        means: the share of the IS iterations at each ratio); nan for an iteration without IS."""
        used = self._ratio_used if self._last_by_score else math.nan
        shares = {f"presample_share_{ratio:g}": float(used == ratio) for ratio in self.choice.ratios}
        return {"presample_ratio": used, **(shares if self._last_by_score else dict.fromkeys(shares, math.nan))}

    def state_dict(self) -> dict:
        return {
            "tau": self.tau,
            "tau_training": self.tau_training,
            "tau_threshold": self.tau_threshold,
            "a": self.a,
            "iterations": self.iterations,
            "tau_samples": self.tau_samples,
            "time_ema": dict(self.time_ema),
            "probes": list(self._probes),
            "presamples_timed": self._presamples_timed,
            "moments": self.estimate.moments,
            **({"presample_size": self.presample_size, "choice": self.choice.state_dict()} if self.choice else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tau, self.tau_threshold, self.a = state["tau"], state["tau_threshold"], state["a"]
        self.tau_training = state.get("tau_training", self.tau)  # absent from checkpoints before it existed
        self.iterations = state["iterations"]
        self.tau_samples = state.get("tau_samples", self.iterations)
        self.time_ema = dict(state["time_ema"])
        self._probes = deque(state["probes"], maxlen=PROBES)
        self._presamples_timed = state["presamples_timed"]
        self.estimate.moments = state.get("moments")
        if self.choice:
            self.presample_size = state["presample_size"]
            self.choice.load_state_dict(state["choice"])
