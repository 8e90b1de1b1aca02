"""Drawing a batch in proportion to importance scores, and the variance-reduction estimate."""

import math

import torch


class NonFiniteScores(ValueError):
    """Scores with NaN or infinite values: the model they come from has diverged."""


def _check_scores(scores: torch.Tensor) -> None:
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(f"scores must be a non-empty 1-D tensor, got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        bad = (~torch.isfinite(scores)).sum().item()
        raise NonFiniteScores(f"scores must be finite: {bad} of {scores.numel()} are NaN or infinite")
    if (scores < 0).any():
        bad = (scores < 0).sum().item()
        raise ValueError(f"scores must be non-negative: {bad} of {scores.numel()} are negative")


def importance_draw(
    scores: torch.Tensor, b: int, generator: torch.Generator | None = None, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw b positions into `scores` with replacement, with probability q_i, and their weights.

    q_i = (1 - eps) g_i + eps / B with g_i = s_i / sum(s), B = len(scores) and eps = smoothing;
    weights w_i = 1 / (B q_i), so that mean(w * f[positions]) is an unbiased estimate of mean(f)
    for any per-example f, and every weight is at most 1 / eps. eps = 0 is the 2018 draw exactly.
    All-zero scores carry no information: the draw is then uniform with weights 1.
    """
    if b < 1:
        raise ValueError(f"batch size b must be >= 1, got {b}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    scores = scores.detach().float().cpu()
    _check_scores(scores)
    n = scores.numel()
    total = scores.sum()
    if total <= 0:
        positions = torch.randint(n, (b,), generator=generator)
        return positions, torch.ones(b)
    probabilities = scores / total
    if smoothing:
        probabilities = (1 - smoothing) * probabilities + smoothing / n
    positions = torch.multinomial(probabilities, b, replacement=True, generator=generator)
    weights = 1.0 / (n * probabilities[positions])
    return positions, weights


def variance_reduction(scores: torch.Tensor) -> float:
    """tau = sqrt(n * sum g_i^2) over normalised scores g: 1 for equal scores, sqrt(n) for one.

    The further the scores are from uniform, the more sampling by them can reduce the variance
    of the gradient estimate, so IS is worth its presample cost only when tau is large enough.
    """
    scores = scores.detach().float()
    _check_scores(scores)
    total = scores.sum()
    if total <= 0:
        return 1.0
    g = scores / total
    return math.sqrt(scores.numel() * float((g * g).sum()))
