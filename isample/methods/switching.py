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

import torch

from isample import costmodel
from isample.device_reads import LaggedReads
from isample.methods.base import Selection, moving_average
from isample.methods.catalog import UpperBoundOptions
from isample.methods.presample_cost import PRESAMPLE_PHASES, PresampleCost  # noqa: F401 (re-exported)
from isample.methods.presample_ratio import RatioChoice
from isample.methods.speedup import SpeedupEstimate
from isample.sampling import raise_for_faults, score_faults, tau_squared
from isample.step import StepResult

PROBE_EVERY = 50  # iterations between probes of the presample's cost while IS is off (tau_source: training)
TAU_EVERY = 16  # iterations between scoring-mode samples of tau while IS is off (tau_source: scoring), each
# also a probe: one chunk's forward every 16 iterations, x1.010 a uniform iteration on resnet8 (mean)


class SwitchingRule(PresampleCost):
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
        self.fixed_threshold = None if options.tau_threshold == "auto" else float(options.tau_threshold)
        self.iterations = 0
        # The speed-up's moments, at p = 2 with `auto`
        size = round((self.choice.smallest if self.choice else options.presample) * b)
        self.estimate = SpeedupEstimate(b, size, options.draw, options.smoothing, options.tau_momentum)
        # This iteration's values on the device (tau, the moments [V, m2], ...), read `lag` iterations on on CUDA
        self.reads = LaggedReads(context.timer.read_lag)
        self._presample_values: dict = {}  # an importance-sampled iteration's, from `select`
        self._faults: list[torch.Tensor] = []  # checks of this iteration's scores, read with its values
        self._read_by_score, self._read_values, self._read_ratio = False, {}, math.nan  # of the iteration last read
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

    def _due_for_sample(self, iteration: int) -> bool:
        """While IS is off: after the second iteration (the first one pays one-off costs), then every
        TAU_EVERY iterations (a scoring-mode tau, and a probe while pricing) or, with the training
        forward's tau, every PROBE_EVERY iterations while pricing."""
        every = TAU_EVERY if self.options.tau_source == "scoring" else PROBE_EVERY
        if self.options.tau_source == "training" and not self._pricing():
            return False
        return iteration == 1 or (iteration > 1 and iteration % every == 0)

    def _sample_trained_examples(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
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
        if self._pricing():
            self._queue_probe(start, chunk, len(inputs))
        with timer.phase("scoring"):  # each example once
            self._check(scores[: len(inputs)])
            return tau_squared(scores[: len(inputs)]), self.estimate.moments_of(scores[: len(inputs)])

    # -- the threshold ----------------------------------------------------------------------------

    def _choose_ratio(self) -> tuple[float, float]:
        """`auto`: train at the ratio of the largest predicted speed-up; its tau_th = 1 + a at that ratio.
        The presample's measured seconds are kept for the current B, so they follow it."""
        ratio, _ = self.choice.choose(self.estimate.speedup(), self._a_of)
        a = self._a_of(ratio)
        self._rescale_presample(round(ratio * self.context.batch_size))
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

    def _check(self, scores: torch.Tensor) -> None:
        """NaN, infinite or negative scores (a diverged model's) raise: at once, or, where reads lag (CUDA),
        when this iteration's values are read."""
        faults = score_faults(scores)
        if self.reads.lag:
            self._faults.append(faults)
        else:
            raise_for_faults(*faults.tolist(), scores.numel())

    @staticmethod
    def _ratio_values(speedups: dict) -> dict:
        """`auto`: each candidate ratio's speed-up as a value to read (`_ratio_speedups` reads them back)."""
        return {f"speedup_at_{ratio:g}": speedup for ratio, speedup in speedups.items()}

    def _ratio_speedups(self, values: dict[str, float]) -> dict[float, float]:
        named = {ratio: f"speedup_at_{ratio:g}" for ratio in self.choice.ratios}
        return {ratio: values[name] for ratio, name in named.items() if name in values}

    def observe(self, selection: Selection, result: StepResult) -> None:
        timer = self.context.timer
        # Counted first: a diverged model raises below, and a caller that resets it (the timing stage)
        # must not find this iteration due for a sample again and again.
        iteration, self.iterations = self.iterations, self.iterations + 1
        with timer.phase("scoring"):  # the training forward's tau costs nothing
            training_scores = self.score_function(result.logits, selection.targets)
            self._check(training_scores)
            values = {"tau_training_squared": tau_squared(training_scores)}
            values |= dict.fromkeys(("tau_step_squared", "variance", "m2"), math.nan)
        if selection.by_score:
            values |= self._presample_values
        elif self.options.tau_source == "training":
            with timer.phase("scoring"):
                moments = self.estimate.moments_of(training_scores)
            values |= {"tau_step_squared": values["tau_training_squared"], "variance": moments[0], "m2": moments[1]}
            if self._due_for_sample(iteration):  # a probe
                self._sample_trained_examples(selection.inputs, selection.targets)
        elif self._due_for_sample(iteration):
            squared, moments = self._sample_trained_examples(selection.inputs, selection.targets)
            values |= {"tau_step_squared": squared, "variance": moments[0], "m2": moments[1]}
        if self._faults:
            values["nonfinite"], values["negative"] = torch.stack(self._faults).sum(0)
            self._faults.clear()
        ratio_used = self._ratio_used if self.choice and selection.by_score else math.nan
        self.reads.put((iteration, selection.by_score, ratio_used), values)
        self._add_probes()
        known = self._known_times(iteration, selection.by_score)
        with timer.phase("threshold_update"):
            self._update(self.reads.take(), known)

    def _update(self, read: tuple | None, known: tuple | None) -> None:
        """tau, the moments and the times from the iteration read now (this one, off CUDA) and the times
        known now, then the threshold. Under DDP every rank takes the mean over ranks of tau and the times,
        so all hold the same tau and tau_th and decide together; in one process these are its own values."""
        (iteration, by_score, ratio_used), values = read or ((None, False, math.nan), {})
        if values.get("nonfinite") or values.get("negative"):
            late = f" (read {self.reads.lag} iterations after iteration {iteration})"
            raise_for_faults(values.get("nonfinite", 0), values.get("negative", 0), None, late)
        ratio_speedups = self._ratio_speedups(values) if self.choice and by_score else {}
        times = known[2:] if known else (0.0,) * 4
        # tau's square root on the host, correctly rounded (`isample.sampling.tau_squared`)
        taus = [math.sqrt(values.get(name, math.nan)) for name in ("tau_step_squared", "tau_training_squared")]
        measured = [*taus, values.get("variance", math.nan), values.get("m2", math.nan)]
        tau_step, tau_training, variance, m2, presample, forward, backward, step, *ratio_values = (
            self.context.group.mean([*measured, *times, *ratio_speedups.values()])
        )
        if known and known[0] > 0:  # the first iteration pays one-off costs: not a time
            self._update_time_estimates(known[1], presample, forward, backward, step)
        if read is not None:
            if self.choice and by_score:
                self.choice.observe(dict(zip(ratio_speedups, ratio_values, strict=True)))
            elif self.choice:
                self.choice.off()
            momentum = self.options.tau_momentum
            self.tau_training = moving_average(self.tau_training if iteration else None, tau_training, momentum)
            if math.isfinite(tau_step):
                self.tau = moving_average(self.tau if self.tau_samples else None, tau_step, momentum)
                self.tau_samples += 1
            elif not self.tau_samples:  # until its first sample, the only tau measured yet
                self.tau = self.tau_training
            self.estimate.add(variance, m2)
            self._read_by_score, self._read_values, self._read_ratio = by_score, values, ratio_used
        self.tau_threshold, self.a = self._threshold()

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
        used = self._read_ratio if self._read_by_score else math.nan
        shares = {f"presample_share_{ratio:g}": float(used == ratio) for ratio in self.choice.ratios}
        return {"presample_ratio": used, **(shares if self._read_by_score else dict.fromkeys(shares, math.nan))}

    def state_dict(self) -> dict:
        return {
            "tau": self.tau,
            "tau_training": self.tau_training,
            "tau_threshold": self.tau_threshold,
            "a": self.a,
            "iterations": self.iterations,
            "tau_samples": self.tau_samples,
            **super().state_dict(),
            "moments": self.estimate.moments,
            **({"presample_size": self.presample_size, "choice": self.choice.state_dict()} if self.choice else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tau, self.tau_threshold, self.a = state["tau"], state["tau_threshold"], state["a"]
        self.tau_training = state.get("tau_training", self.tau)  # absent from checkpoints before it existed
        self.iterations = state["iterations"]
        self.tau_samples = state.get("tau_samples", self.iterations)
        super().load_state_dict(state)
        self.estimate.moments = state.get("moments")
        if self.choice:
            self.presample_size = state["presample_size"]
            self.choice.load_state_dict(state["choice"])
