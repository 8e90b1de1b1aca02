"""upper_bound: importance sampling by the gradient-norm upper bound (Katharopoulos & Fleuret, ICML 2018).

Each iteration decides whether to importance-sample (tau > tau_th). If so it takes the next B = p b
examples of the random-reshuffling stream, scores each by ||softmax(z) - onehot(y)||_2 in a forward
without gradients, draws b of them with probability q_i = (1 - eps) g_i + eps / B (g_i = s_i / sum(s))
and weights each by 1 / (B q_i); otherwise it trains the next b examples of the same stream, so while
IS is off the run is the uniform run itself. tau is a moving average of sqrt(n sum g_i^2): over the
presample's scores with IS on, over the training forward's (free) with IS off, as the 2018 code does.
tau_th = 1 + a (`auto`), a being the measured presample time over the training-step time; while IS is
off, a comes from a probe (one chunk's scoring forward every PROBE_EVERY iterations, on the batch just
trained, so it draws nothing and the stream and augmentation stay the uniform run's).
"""

import math
import statistics
import time
from collections import deque

import torch

from isample import costmodel
from isample.methods.base import Selection, SelectionMethod, moving_average, scoring_mode
from isample.methods.catalog import UpperBoundOptions
from isample.sampling import importance_draw, variance_reduction
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult, autocast

PROBE_EVERY = 50  # iterations between probes of the presample's cost while IS is off
PROBES = 5  # probes the estimate is the median of


class UpperBound(SelectionMethod):
    name = "upper_bound"
    Options = UpperBoundOptions

    def __init__(self, context, options: UpperBoundOptions | None = None):
        super().__init__(context, options)
        self.tau = 0.0
        options, b = self.options, context.batch_size
        self.presample_size = round(options.presample * b)
        if self.presample_size > len(context.examples):
            raise ValueError(
                f"presample size B = p * b = {self.presample_size} is larger than the data set "
                f"({len(context.examples)})"
            )
        # Batch statistics must come from batches the size of the training batch to match its forward.
        chunk = b if options.score_mode == "batch" else options.forward_chunk or self.presample_size
        self.chunks = max(1, round(self.presample_size / chunk))
        self.fixed_threshold = None if options.tau_threshold == "auto" else float(options.tau_threshold)
        self.score_function = SCORE_FUNCTIONS[options.score]
        self.iterations = 0
        # Smoothed phase times (seconds) behind a; "presample" is the forward of B plus scoring.
        self.time_ema: dict[str, float | None] = {"presample": None, "forward": None, "backward": None, "step": None}
        self._tau_step = math.nan
        self._probes: deque[float] = deque(maxlen=PROBES)
        self._presamples_timed = False
        # bf16 for the presample alone, or whatever the training step autocasts to.
        self._presample_dtype = torch.bfloat16 if options.presample_bf16 else context.autocast_dtype
        self.tau_threshold, self.a = self._threshold()

    # -- scoring ----------------------------------------------------------------------------------

    def presample_scores(self, x: torch.Tensor, y: torch.Tensor, chunks: int | None = None) -> torch.Tensor:
        """Scores of every example in a forward without gradients, chunk by chunk, buffers untouched."""
        context, timer = self.context, self.context.timer
        scores = []
        with scoring_mode(context.model, self.options.score_mode), torch.inference_mode():
            for x_chunk, y_chunk in zip(x.tensor_split(chunks or self.chunks), y.tensor_split(chunks or self.chunks)):
                with timer.phase("presample_forward"):
                    with autocast(context.device, self._presample_dtype):
                        logits = context.model(x_chunk)
                with timer.phase("scoring"):
                    scores.append(self.score_function(logits, y_chunk))
        with timer.phase("scoring"):
            return torch.cat(scores)

    def _due_for_probe(self) -> bool:
        """While IS is off, `auto` prices it from probes: after the second iteration (the first one
        pays one-off costs), then every PROBE_EVERY iterations until a real presample has been timed."""
        if not self.context.timer.enabled or self.fixed_threshold is not None or self._presamples_timed:
            return False
        return self.iterations == 1 or (self.iterations > 1 and self.iterations % PROBE_EVERY == 0)

    def _probe_presample_cost(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Time one chunk's scoring forward, on the examples just trained (repeated up to a chunk),
        and scale it to B. The estimate is the median of the last PROBES probes, so one probe hit by
        other load on the machine cannot price IS out for good."""
        chunk = math.ceil(self.presample_size / self.chunks)
        repeats = math.ceil(chunk / len(inputs))
        x, y = torch.cat([inputs] * repeats)[:chunk], torch.cat([targets] * repeats)[:chunk]
        seconds = self.context.timer.seconds
        per_chunk_before = seconds["presample_forward"] + seconds["scoring"]
        started = time.perf_counter()
        self.presample_scores(x, y, chunks=1)
        total = time.perf_counter() - started
        per_chunk = seconds["presample_forward"] + seconds["scoring"] - per_chunk_before  # forward + bound
        # Each chunk's forward and bound are paid B / chunk times, the call's own overhead once.
        probe = per_chunk * self.presample_size / chunk + max(total - per_chunk, 0.0)
        # From disk, B examples must be loaded too: at this iteration's rate for its b (0 in memory).
        probe += seconds["data_loading"] * self.presample_size / len(inputs)
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

    def _threshold(self) -> tuple[float, float]:
        a = self._measured_a()
        if self.fixed_threshold is not None:
            return self.fixed_threshold, a
        if math.isnan(a):  # nothing measured yet (or timing off): the 2018 default
            return costmodel.default_tau_threshold(self.presample_size, self.context.batch_size), a
        return costmodel.tau_threshold(a), a

    # -- the iteration ----------------------------------------------------------------------------

    def select(self) -> Selection:
        context, timer, examples = self.context, self.context.timer, self.context.examples
        b = context.batch_size
        with timer.phase("decision"):
            use_importance = self.options.always_importance or self.tau > self.tau_threshold
        if not use_importance:
            with timer.phase("draw_batch"):
                indices = examples.take(b)
                x, y = examples.gather(indices)
            return Selection(indices, None, x, y)
        loading = timer.seconds["data_loading"]
        with timer.phase("draw_presample"):
            presample_indices = examples.take(self.presample_size)
            x_all, y_all = examples.gather(presample_indices)
        loading = timer.seconds["data_loading"] - loading  # B examples from disk (0 in memory)
        before = timer.seconds["presample_forward"] + timer.seconds["scoring"] - loading
        scores = self.presample_scores(x_all, y_all)
        with timer.phase("draw_batch"):
            positions, weights = importance_draw(scores, b, context.generator, self.options.smoothing)
            device_positions = positions.to(context.device)
            x, y = x_all[device_positions], y_all[device_positions]
        with timer.phase("scoring"):
            self._tau_step = variance_reduction(scores)
        # The presample's cost, as the notebook counts it: forward of B plus the bound, plus loading B
        # when the examples come from disk.
        self._presample_seconds = timer.seconds["presample_forward"] + timer.seconds["scoring"] - before
        return Selection(presample_indices[positions], weights, x, y, by_score=True)

    def observe(self, selection: Selection, result: StepResult) -> None:
        timer, options = self.context.timer, self.options
        if selection.by_score:
            tau_step = self._tau_step
        else:  # IS off: tau from the training forward's scores, which cost nothing
            with timer.phase("scoring"):
                tau_step = variance_reduction(self.score_function(result.logits, selection.targets))
            if self._due_for_probe():
                self._probe_presample_cost(selection.inputs, selection.targets)
        with timer.phase("threshold_update"):
            seconds = timer.seconds
            # Under DDP every rank takes the mean over ranks of tau and the times, so all hold the same
            # tau and tau_th and decide together; in one process these are its own values.
            tau_step, presample, forward, backward, step = self.context.group.mean(
                [
                    tau_step,
                    self._presample_seconds if selection.by_score else 0.0,
                    seconds["train_forward"],
                    seconds["backward"],
                    seconds["optimizer_step"],
                ]
            )
            if timer.enabled and self.iterations > 0:  # the first iteration pays one-off costs: not a time
                self._update_time_estimates(selection.by_score, presample, forward, backward, step)
            self.tau = moving_average(self.tau, tau_step, options.tau_momentum)
            self.tau_threshold, self.a = self._threshold()
        self.iterations += 1

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
        """tau and its threshold, a (presample over training-step time) and k = T / t, as measured so far."""
        return {"tau": self.tau, "tau_threshold": self.tau_threshold, "a": self.a, "k": self.k}

    def state_dict(self) -> dict:
        return {
            "tau": self.tau,
            "tau_threshold": self.tau_threshold,
            "a": self.a,
            "iterations": self.iterations,
            "time_ema": dict(self.time_ema),
            "probes": list(self._probes),
            "presamples_timed": self._presamples_timed,
        }

    def load_state_dict(self, state: dict) -> None:
        self.tau, self.tau_threshold, self.a = state["tau"], state["tau_threshold"], state["a"]
        self.iterations = state["iterations"]
        self.time_ema = dict(state["time_ema"])
        self._probes = deque(state["probes"], maxlen=PROBES)
        self._presamples_timed = state["presamples_timed"]
