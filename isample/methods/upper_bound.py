"""upper_bound: importance sampling by the gradient-norm upper bound (Katharopoulos & Fleuret, ICML 2018).

Each iteration decides whether to importance-sample (tau > tau_th). If so it takes the next B = p b
examples of the random-reshuffling stream, scores each by ||softmax(z) - onehot(y)||_2 in a forward
without gradients and draws b of them in proportion to q_i = (1 - eps) g_i + eps / B (g_i = s_i / sum(s)):
`draw: with_replacement`, the 2018 code's, b independent draws weighted 1 / (B q_i) (some repeat);
`without_replacement`, b distinct ones, each with inclusion probability pi_i = min(1, c q_i) (sum b),
weighted b / (B pi_i) (Horvitz-Thompson). Otherwise it trains the next b examples of the same stream, so while
IS is off the run is the uniform run itself. This module is that sampler: the presample's scoring
forward, the draw and its weights. The decision, tau against tau_th = 1 + a and the presample ratio
of `presample: auto`, is its base class's (`isample.methods.switching`).
"""

import math

import torch

from isample.methods.base import Selection, scoring_mode
from isample.methods.catalog import UpperBoundOptions
from isample.methods.presample_ratio import subsample_tau_squares
from isample.methods.speedup import predicted_speedup, variance_ratio_of
from isample.methods.switching import PRESAMPLE_PHASES, SwitchingRule
from isample.names import IMPORTANCE
from isample.sampling import importance_draw, importance_draw_without_replacement, tau_squared
from isample.scores import SCORE_FUNCTIONS
from isample.step import autocast

WEIGHT_METRICS = ("weight_max", "effective_share", "distinct_share")
DRAW_FUNCTIONS = {"with_replacement": importance_draw, "without_replacement": importance_draw_without_replacement}


def weight_spread(positions: torch.Tensor, weights: torch.Tensor, presample_size: int) -> dict[str, torch.Tensor]:
    """An importance-sampled batch's weights: the largest, the effective sample size over b ((sum w)^2 /
    (b sum w^2): 1 for equal weights), and the share of its b draws that are distinct examples (drawn
    with replacement, some repeat even when every score is equal). Tensors on the weights' device (no
    host read: distinct positions are counted by marking them among the presample's)."""
    b = len(weights)
    marked = torch.zeros(presample_size, dtype=torch.float64, device=positions.device).index_fill_(0, positions, 1.0)
    return {
        "weight_max": weights.max(),
        "effective_share": weights.sum() ** 2 / (b * (weights * weights).sum()),
        "distinct_share": marked.sum() / b,
    }


class UpperBound(SwitchingRule):
    name = IMPORTANCE
    runs_own_forwards = True  # the presample's forward
    Options = UpperBoundOptions

    def __init__(self, context, options: UpperBoundOptions | None = None):
        super().__init__(context, options)
        self.score_function = SCORE_FUNCTIONS[self.options.score]
        self.draw = DRAW_FUNCTIONS[self.options.draw]
        # bf16 for the presample alone, or whatever the training step autocasts to.
        self._presample_dtype = torch.bfloat16 if self.options.presample_bf16 else context.autocast_dtype

    def chunks(self, size: int) -> int:
        """Forwards a presample of `size` is scored in: batch statistics must come from batches the size of
        the training batch to match its forward; in eval mode, forward_chunk at a time (0: all at once)."""
        chunk = self.context.batch_size if self.options.score_mode == "batch" else self.options.forward_chunk or size
        return max(1, round(size / chunk))

    # -- scoring ----------------------------------------------------------------------------------

    def presample_scores(self, x: torch.Tensor, y: torch.Tensor, chunks: int | None = None) -> torch.Tensor:
        """Scores of every example in a forward without gradients, chunk by chunk, buffers untouched."""
        context, timer = self.context, self.context.timer
        scores = []
        with scoring_mode(context.model, self.options.score_mode), torch.inference_mode():
            chunks = chunks or self.chunks(len(x))
            for x_chunk, y_chunk in zip(x.tensor_split(chunks), y.tensor_split(chunks), strict=True):
                with timer.phase("presample_forward"):
                    with autocast(context.device, self._presample_dtype):
                        logits = context.model(x_chunk)
                context.work.score(len(x_chunk))
                with timer.phase("scoring"):
                    scores.append(self.score_function(logits, y_chunk))
        with timer.phase("scoring"):
            return torch.cat(scores)

    # -- the iteration ----------------------------------------------------------------------------

    def select(self) -> Selection:
        context, timer, examples = self.context, self.context.timer, self.context.examples
        b = context.batch_size
        with timer.phase("decision"):
            use_importance = self._importance_on()
        if not use_importance:
            with timer.phase("draw_batch"):
                indices = examples.take(b)
                x, y = examples.gather(indices)
            return Selection(indices, None, x, y)
        start = timer.mark()
        ratio = self.choice.presample_ratio() if self.choice else math.nan
        size = round(ratio * b) if self.choice else self.presample_size
        with timer.phase("draw_presample"):
            presample_indices = examples.take(size)
            x_all, y_all = examples.gather(presample_indices)
        scores = self.presample_scores(x_all, y_all)
        with timer.phase("draw_batch"):
            host_reads = not self.reads.lag
            positions, weights = self.draw(scores, b, context.generator, self.options.smoothing, host_reads)
            device_positions = positions.to(context.device)
            x, y = x_all[device_positions], y_all[device_positions]
        with timer.phase("scoring"):
            self._check(scores)
            values = weight_spread(positions, weights, len(scores))
            if self.choice:  # tau and the moments at every ratio this presample holds; the method's at the smallest
                squares, moments = subsample_tau_squares(
                    scores, b, self.choice.ratios, context.generator, self.estimate.moments_of
                )
                speedups = {
                    ratio: predicted_speedup(variance_ratio_of(value, b, round(ratio * b)))
                    for ratio, value in moments.items()
                }
                values |= {"tau_step_squared": squares[self.choice.smallest], **self._ratio_values(speedups)}
                moments_step, self._ratio_used = moments[self.choice.smallest], ratio
            else:
                values["tau_step_squared"], moments_step = tau_squared(scores), self.estimate.moments_of(scores)
            self._presample_values = values | {"variance": moments_step[0], "m2": moments_step[1]}
        self._presample_reading = timer.since(start, PRESAMPLE_PHASES)  # the draw of b loads nothing
        # The data-set indices follow the positions (on the device, on CUDA: no read back).
        return Selection(presample_indices.to(positions.device)[positions], weights, x, y, by_score=True)

    def metrics(self) -> dict[str, float]:
        """The last importance-sampled batch's weights (`weight_spread`; nan while IS is off), then the
        switching rule's numbers (`SwitchingRule.metrics`: tau, tau_th, a, ...)."""
        read = self._read_values if self._read_by_score else {}
        return {**{name: read.get(name, math.nan) for name in WEIGHT_METRICS}, **super().metrics()}
