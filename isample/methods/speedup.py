"""The speed-up upper_bound's draw is predicted to bring, from one presample's scores: the rule's input.

An iteration of importance sampling estimates the mean gradient in two stages: a uniform presample of
B = p b examples, then b of them drawn in proportion to q_i = (1 - eps) s_i / sum(s) + eps / B (`draw`,
with or without replacement) and weighted so that the estimate stays unbiased. Against a uniform batch of b
examples drawn without replacement (random reshuffling's), its variance (the trace of the covariance) is

    Var(IS) / Var(uniform) = r = b / B + b E[Var(draw | presample)] / m2,       m2 = E ||g_i||^2,

the first term the presample's, the second the draw's. Two assumptions make r computable from the scores
alone (docs/how-it-works.md): the scores are in proportion to the per-example gradient norms, s_i = c ||g_i||
(the upper bound's premise), and the mean gradient is small beside them, so that different examples'
gradients are uncorrelated (the cross terms g_i . g_j, i != j, average to 0). Then, with the sums over the
presample:

- with replacement (b independent draws, weights 1 / (B q_i)): r = (b - 1) / B + sum(s^2 / q) / (B sum(s^2));
  flat scores give 1 + (b - 1) / B, about 1 + 1 / p: the repeats;
- without replacement (inclusion probabilities pi_i = min(1, c q_i), sum b, weights b / (B pi_i)):
  r = b sum(s^2 / pi) / (B sum(s^2)), exact for any fixed-size design with those pi, since the joint
  inclusion probabilities multiply only the cross terms; flat scores give 1, and those taken for sure
  (pi_i = 1) add no variance of the draw.

Without smoothing and caps, q = pi / b = s / sum(s) and r = 1 / tau^2 without replacement: the 2018 tau is
this ratio's inverse square root, and 1 / tau^2 + (b - 1) / B with replacement.

The predicted speed-up is r^(-1/2), the 2018 paper's tau where the draw is exact (SPEEDUP_EXPONENT):
a step whose estimate varies r times as much moves as far as 1 / sqrt(r) of a uniform step at the same
learning rate's noise level. 1 / r would hold where progress is bound by the variance alone (a batch b / r
as good as b); docs/break-even.md's calibration figure sets both against the measured gains.
"""

import math

import torch

from isample.methods.base import moving_average
from isample.sampling import inclusion_probabilities, smoothed_distribution

SPEEDUP_EXPONENT = 0.5  # speed-up = r ** -SPEEDUP_EXPONENT


def draw_moments(
    scores: torch.Tensor, b: int, draw: str, smoothing: float = 0.0, presample_size: int | None = None
) -> torch.Tensor:
    """[V, m2] of one presample with these scores (a tensor on their device, read by nobody here): V the
    draw's variance given the presample, m2 = mean(s^2), both in squared score units. r is their ratio's
    function (`variance_ratio_of`) taken over the means of many presamples, not the mean of each one's r:
    with a heavy tail a presample's own ratio is biased (+8% at p = 2, tests/methods/test_speedup.py).
    With `presample_size` larger than the scores (b scores of the training forward standing for a
    presample of B), they are repeated up to it."""
    scores = scores.detach().double()
    size = presample_size or scores.numel()
    if size > scores.numel():
        scores = scores.repeat(-(-size // scores.numel()))[:size]
    if not 1 <= b <= size:
        raise ValueError(f"b must be in 1 ... {size} (the presample's size), got {b}")
    squares = scores * scores
    # Every score 0 carries no information: the draw is the flat one (as importance_draw makes it).
    squares = torch.where(squares.sum() > 0, squares, torch.ones_like(squares))
    q = smoothed_distribution(scores, smoothing)
    if draw == "with_replacement":
        variance = ((squares / q).sum() - squares.sum()) / (b * size * size)
    elif draw == "without_replacement":
        pi = inclusion_probabilities(q, b)
        variance = ((1 - pi) / pi * squares).sum() / (size * size)
    else:
        raise ValueError(f"draw = {draw!r}: must be with_replacement or without_replacement")
    return torch.stack([variance, squares.mean()])


def variance_ratio_of(moments: torch.Tensor | list[float], b: int, presample_size: int) -> torch.Tensor | float:
    """r = b / B + b V / m2 from [V, m2] (one presample's, or a mean over many)."""
    return b / presample_size + b * moments[0] / moments[1]


def variance_ratio(
    scores: torch.Tensor, b: int, draw: str, smoothing: float = 0.0, presample_size: int | None = None
) -> torch.Tensor:
    """r of one presample with these scores (`draw_moments`)."""
    size = presample_size or scores.numel()
    return variance_ratio_of(draw_moments(scores, b, draw, smoothing, size), b, size)


def predicted_speedup(ratio: torch.Tensor | float) -> torch.Tensor | float:
    """The speed-up of a draw whose estimate varies `ratio` times a uniform batch's: ratio ** -1/2."""
    return ratio**-SPEEDUP_EXPONENT


def speedup_of(moments: list[float], b: int, presample_size: int) -> float:
    """The speed-up that moments [V, m2] (numbers: averages of many presamples') predict at B = presample_size,
    in float64 on the host."""
    return predicted_speedup(variance_ratio_of(moments, b, presample_size))


class SpeedupEstimate:
    """The moving averages of [V, m2] of one run's presamples (`draw_moments`), at one presample size, and
    the speed-up they predict: what upper_bound's rule sets against 1 + a."""

    def __init__(self, b: int, size: int, draw: str, smoothing: float, momentum: float):
        self.b, self.size, self.draw, self.smoothing, self.momentum = b, size, draw, smoothing, momentum
        self.moments: list[float] | None = None

    def moments_of(self, scores: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """[V, m2] of scores standing for a presample of `size` (default: the estimate's, repeated up to it
        when fewer)."""
        return draw_moments(scores, self.b, self.draw, self.smoothing, size or max(self.size, len(scores)))

    def add(self, variance: float, m2: float) -> None:
        """One presample's moments (nan: none this iteration)."""
        if math.isfinite(variance) and math.isfinite(m2):
            previous = self.moments or (None, None)
            self.moments = [moving_average(old, new, self.momentum) for old, new in zip(previous, (variance, m2))]

    def speedup(self) -> float:
        """nan until a presample's moments are known."""
        return math.nan if self.moments is None else speedup_of(self.moments, self.b, self.size)
