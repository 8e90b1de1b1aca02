"""Drawing a batch in proportion to importance scores, the variance-reduction estimate, and trees of
partial sums (or maxima) over N values, so that selection over a whole data set costs the same at any N.

In a tree, each level holds the sums of groups of `FANOUT` entries of the level below, up to one root. Changing b
values changes b ancestors per level, and a draw in proportion to the values walks down one path, so
both cost O(b log N) whatever N is (a sum tree, as prioritized experience replay uses; a wide fan-out
keeps the levels few: 5 at N = 10 M). A sum tree adds each change's difference to the ancestors,
a handful of tensor operations per level, in float64; so that rounding cannot pile up, it recomputes
every level from the leaves after as many leaf changes as it has leaves (O(1) per change, amortised).
A max tree recomputes the changed ancestors from their children instead (a maximum has no difference).
"""

import math

import torch


class NonFiniteScores(ValueError):
    """Scores with NaN or infinite values: the model they come from has diverged."""


def score_faults(scores: torch.Tensor) -> torch.Tensor:
    """[how many scores are NaN or infinite, how many are negative], on the scores' device (no host read)."""
    finite = torch.isfinite(scores)
    return torch.stack([(~finite).sum(), (finite & (scores < 0)).sum()])


def raise_for_faults(nonfinite: float, negative: float, size: int | None, late: str = "") -> None:
    """The error for scores with these `score_faults`, of `size` scores (None: not known), `late`: when
    they are read after the fact."""
    of = f" of {size}" if size is not None else ""
    if nonfinite:
        raise NonFiniteScores(f"scores must be finite: {nonfinite:.0f}{of} are NaN or infinite{late}")
    if negative:
        raise ValueError(f"scores must be non-negative: {negative:.0f}{of} are negative{late}")


def _check_scores(scores: torch.Tensor) -> None:
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(f"scores must be a non-empty 1-D tensor, got shape {tuple(scores.shape)}")
    raise_for_faults(*score_faults(scores).tolist(), scores.numel())


def importance_draw(
    scores: torch.Tensor,
    b: int,
    generator: torch.Generator | None = None,
    smoothing: float = 0.0,
    host_reads: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw b positions into `scores` with replacement, with probability q_i, and their weights.

    q_i = (1 - eps) g_i + eps / B with g_i = s_i / sum(s), B = len(scores) and eps = smoothing;
    weights w_i = 1 / (B q_i), so that mean(w * f[positions]) is an unbiased estimate of mean(f)
    for any per-example f, and every weight is at most 1 / eps. eps = 0 is the 2018 draw exactly.
    All-zero scores carry no information: the draw is then uniform with weights 1. With `host_reads` the
    scores are checked (`NonFiniteScores`) and drawn by torch.multinomial, the 2018 code's draw; without
    (on CUDA, where both would wait for the device) they are drawn where they are, unchecked (the caller
    checks `score_faults` later), NaN and negative scores taken as 0, by inverting q's cumulative sums.
    """
    if b < 1:
        raise ValueError(f"batch size b must be >= 1, got {b}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    scores = scores.detach().float()
    if not host_reads:
        n = scores.numel()
        usable = torch.where(torch.isfinite(scores) & (scores > 0), scores, 0.0)
        probabilities = smoothed_distribution(usable, smoothing)
        ends = probabilities.double().cumsum(0)
        positions = _positions_under(ends, _uniforms(b, generator, scores.device) * ends[-1])
        return positions, 1.0 / (n * probabilities[positions])
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


def smoothed_distribution(scores: torch.Tensor, smoothing: float) -> torch.Tensor:
    """q = (1 - eps) s / sum(s) + eps / B in the scores' dtype and on their device, without a host read;
    flat when every score is 0."""
    n, total = scores.numel(), scores.sum()
    flat = torch.full_like(scores, 1.0 / n)
    probabilities = torch.where(total > 0, scores / total.clamp_min(torch.finfo(scores.dtype).tiny), flat)
    return (1 - smoothing) * probabilities + smoothing / n


def inclusion_probabilities(probabilities: torch.Tensor, b: int) -> torch.Tensor:
    """pi_i = min(1, c q_i) with c such that sum(pi) = b, for a draw of b distinct positions in proportion
    to q (`probabilities`, summing to 1, at least b of them positive): those that c q_i would put above 1
    are taken for sure. On the tensor's device, without a host read: with q sorted in decreasing order,
    capping the k largest gives c_k = (b - k) / (sum of the others), and the k that holds is the
    smallest whose (k+1)-th largest stays under 1 (0 <= k < b)."""
    n = probabilities.numel()
    if not 1 <= b <= n:
        raise ValueError(f"b must be in 1 ... {n} (the presample's size), got {b}")
    ordered, order = torch.sort(probabilities.double(), descending=True)
    rest = ordered.flip(0).cumsum(0).flip(0)[:b]  # sum of q over positions k ... n - 1
    k = torch.arange(b, device=probabilities.device, dtype=torch.float64)
    scale = (b - k) / rest.clamp_min(torch.finfo(torch.float64).tiny)
    fits = scale * ordered[:b] < 1  # capping the k largest leaves the (k+1)-th below 1
    capped = torch.where(fits.any(), fits.int().argmax(), torch.tensor(b, device=fits.device))
    c = scale.gather(0, capped.clamp_max(b - 1).view(1))
    pi_sorted = torch.where(torch.arange(n, device=ordered.device) < capped, 1.0, (c * ordered).clamp_max(1.0))
    return torch.empty_like(pi_sorted).scatter_(0, order, pi_sorted).to(probabilities.dtype)


def systematic_draw(pi: torch.Tensor, b: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """b distinct positions, position i with probability pi_i exactly (sum(pi) = b, every pi_i <= 1):
    randomised systematic sampling (Madow 1949; Hartley & Rao 1962). In a random order the pi_i lie
    end to end on [0, b); the draw takes the positions under u, u + 1, ..., u + b - 1 for one uniform u.
    O(B), on the device of pi and without a host read: a permutation, a cumulative sum, a search."""
    n, device = pi.numel(), pi.device
    order = torch.randperm(n, generator=generator, device=_drawing_device(generator, device)).to(device)
    ends = pi.double()[order].cumsum(0)
    ends = ends * (b / ends[-1])  # exactly b at the end, so that rounding can never repeat the last position
    points = _uniforms(1, generator, device) + torch.arange(b, device=device, dtype=torch.float64)
    return order[_positions_under(ends, points)]


def _drawing_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where random numbers are drawn: the generator's device (the CPU's, for a run's streams), else `device`."""
    return generator.device if generator is not None else device


def _uniforms(count: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """`count` float64 uniforms on [0, 1) from `generator`, moved to `device`."""
    drawing = _drawing_device(generator, device)
    return torch.rand(count, generator=generator, device=drawing, dtype=torch.float64).to(device)


def _positions_under(ends: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """For points on [0, ends[-1]), the position of the span [ends[i - 1], ends[i]) each lies in (a point
    that rounding puts at the very end stays in the last span)."""
    return torch.searchsorted(ends, points, right=True).clamp_max(len(ends) - 1)


def importance_draw_without_replacement(
    scores: torch.Tensor,
    b: int,
    generator: torch.Generator | None = None,
    smoothing: float = 0.0,
    host_reads: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw b distinct positions into `scores` in proportion to q (importance_draw's smoothed
    distribution), with Horvitz-Thompson weights w_i = b / (B pi_i): mean(w * f[positions]) is an
    unbiased estimate of mean(f) over the B scores, and where no pi_i is capped at 1, w_i = 1 / (B q_i),
    importance_draw's weights. Flat scores give b distinct positions drawn uniformly, weights 1. It never
    reads the scores on the host, whatever `host_reads` allows; nor does it check them (`score_faults`)."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    scores = scores.detach().float()
    n = scores.numel()
    pi = inclusion_probabilities(smoothed_distribution(scores, smoothing), b)
    positions = systematic_draw(pi, b, generator)
    return positions, b / (n * pi[positions])


def tau_squared(scores: torch.Tensor) -> torch.Tensor:
    """tau^2 = n sum g_i^2 over normalised scores g, in float64 on the scores' device, unchecked and without a
    host read (all-zero scores: 1). Its square root is taken on the host (`variance_reduction`), where
    it is correctly rounded: the same tau on every device."""
    scores = scores.detach().float()
    total = scores.sum()
    g = scores / total.clamp_min(torch.finfo(scores.dtype).tiny)
    return torch.where(total > 0, scores.numel() * (g * g).sum().double(), 1.0)


def variance_reduction(scores: torch.Tensor) -> float:
    """tau = sqrt(n sum g_i^2) over normalised scores g: 1 for equal scores, sqrt(n) for one.

    The further the scores are from uniform, the more sampling by them can reduce the variance
    of the gradient estimate, so IS is worth its presample cost only when tau is large enough.
    """
    _check_scores(scores)
    return math.sqrt(float(tau_squared(scores)))


# -- trees over the whole data set ---------------------------------------------------------------------

FANOUT = 64


def _padded(level: torch.Tensor) -> torch.Tensor:
    """A level (channels x entries) padded with zeros to a whole number of groups."""
    return torch.cat([level, level.new_zeros(len(level), -level.shape[1] % FANOUT)], 1)


class SumTree:
    """`size` leaves of `channels` non-negative values each, all starting at `initial`; every channel
    is summed on its own. Stored channel by channel, so a group's children are adjacent in memory."""

    reduction = "sum"

    def __init__(self, size: int, channels: int = 1, initial: float = 0.0):
        if size < 1:
            raise ValueError(f"a tree needs at least one leaf, got {size}")
        self.size, self.channels = size, channels
        leaves = _padded(torch.full((channels, size), float(initial), dtype=torch.float64))
        self.levels = [leaves]  # leaves first, the root's level (one entry) last
        self.rebuild()

    def _reduce(self, groups: torch.Tensor) -> torch.Tensor:
        """channels x groups x fanout -> channels x groups."""
        return groups.sum(2)

    def rebuild(self) -> None:
        """Every level above the leaves, recomputed from them (O(N))."""
        del self.levels[1:]
        while self.levels[-1].shape[1] > 1:
            above = self._reduce(self.levels[-1].view(self.channels, -1, FANOUT))
            self.levels.append(_padded(above) if above.shape[1] > 1 else above)
        self._changes = 0

    def total(self) -> torch.Tensor:
        """The sum (a max tree: the maximum) of every leaf, per channel."""
        return self.levels[-1][:, 0]

    def values(self, positions: torch.Tensor) -> torch.Tensor:
        """The leaves at `positions`, one row (of `channels` values) each."""
        return self.levels[0][:, positions].T

    def set(self, positions: torch.Tensor, values: torch.Tensor) -> None:
        """Leaves at `positions`, which must be distinct, become `values` (one row each, or one number
        each in a tree of one channel)."""
        if len(positions) == 0:
            return
        new = values.to(torch.float64).reshape(len(positions), self.channels).T
        difference = new - self.levels[0][:, positions]
        self.levels[0][:, positions] = new
        for above in self.levels[1:]:
            positions = positions // FANOUT
            above.index_add_(1, positions, difference)
        self._changes += len(positions)
        if self._changes >= self.size:
            self.rebuild()

    def find(self, targets: torch.Tensor, channel: int = 0) -> torch.Tensor:
        """For each target t in [0, total), the leaf i whose span [prefix(i), prefix(i) + value(i)) holds
        it, in `channel`: a draw in proportion to the values when t is uniform. A leaf of value 0 is
        never returned: a target pushed past either end of a group by rounding is kept inside it."""
        remaining = targets.to(torch.float64).unsqueeze(1)
        node = torch.zeros(len(targets), dtype=torch.int64)
        for level in reversed(self.levels[:-1]):
            children = level[channel].view(-1, FANOUT).index_select(0, node)  # b x fanout
            bounds = children.cumsum(1)
            # Inside [0, the group's total): right-searching then skips children of value 0.
            remaining = torch.minimum(remaining.clamp(min=0), bounds[:, -1:] * (1 - 2**-40))
            choice = torch.searchsorted(bounds, remaining, right=True)
            remaining = remaining - (bounds.gather(1, choice) - children.gather(1, choice))
            node = torch.add(choice.squeeze(1), node, alpha=FANOUT)
        return node

    def sample(self, count: int, generator: torch.Generator | None = None, channel: int = 0) -> torch.Tensor:
        """`count` leaves drawn with replacement in proportion to their values in `channel` (total > 0)."""
        total = float(self.total()[channel])
        if not total > 0:
            raise ValueError("cannot draw from a tree whose values are all 0")
        return self.find(torch.rand(count, generator=generator, dtype=torch.float64) * total, channel)


class MaxTree(SumTree):
    """The same tree of maxima: `total()` is the largest leaf. No draws."""

    reduction = "max"

    def _reduce(self, groups: torch.Tensor) -> torch.Tensor:
        return groups.amax(2)

    def set(self, positions: torch.Tensor, values: torch.Tensor) -> None:
        if len(positions) == 0:
            return
        self.levels[0][:, positions] = values.to(torch.float64).reshape(len(positions), self.channels).T
        changed = torch.sort(positions).values
        for below, above in zip(self.levels, self.levels[1:]):
            changed = torch.unique_consecutive(changed // FANOUT)  # sorted: each parent once
            above[:, changed] = self._reduce(below.view(self.channels, -1, FANOUT)[:, changed])

    def find(self, targets: torch.Tensor, channel: int = 0) -> torch.Tensor:
        raise ValueError("a max tree holds no prefix sums to draw from")
