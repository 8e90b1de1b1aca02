"""`presample: auto`: upper_bound's presample ratio p chosen while training (the notebook's adjustable p).

The predicted speed-up s(p) can grow with the presample (a larger B holds more of the scores' tail) and so
does its price, 1 + a(p) with a(p) in proportion to p, so the best p moves as training goes on. Each
importance-sampled iteration estimates s(p') for every candidate ratio p' whose presample fits in the one
it scored: p' b of its scores drawn uniformly without replacement are the scores of a uniform presample of
p' b, at no extra forward. Every PROBE_EVERY importance-sampled iterations the presample is taken at the
bound instead, so that the larger ratios are estimated too; that iteration trains on its draw like any
other (the estimator is unbiased at every B). IS trains at the ratio of the largest s(p') / (1 + a(p'))
and is off when even that is not above 1. The method's speed-up is the one a fixed p = 2 run keeps; the
larger ratios add their gain over it while IS is on. While IS is off only that one is known, the same for
every ratio, so the best is the smallest and the rule is the fixed rule at p = 2: the limit case. (The
names say tau where the 2018 rule, a fixed tau_th, sets tau(p') in the speed-up's place.)
"""

import math

import torch

from isample.methods.base import moving_average
from isample.sampling import tau_squared

PROBE_EVERY = 50  # importance-sampled iterations from one presample at the bound to the next
SMALLEST = 2.0  # the smallest candidate ratio


def candidate_ratios(presample_max: float) -> tuple[float, ...]:
    """2, 3, ... up to the bound, and the bound itself."""
    if presample_max < SMALLEST:
        raise ValueError(f"presample_max = {presample_max!r}: must be >= {SMALLEST:g} with presample: auto")
    ratios = [float(p) for p in range(int(SMALLEST), math.floor(presample_max) + 1)]
    return tuple(ratios if presample_max in ratios else [*ratios, float(presample_max)])


def subsample_tau_squares(
    scores: torch.Tensor, b: int, ratios: tuple[float, ...], generator: torch.Generator | None = None, moments=None
) -> dict[float, torch.Tensor] | tuple[dict[float, torch.Tensor], dict[float, torch.Tensor]]:
    """tau^2 (`isample.sampling.tau_squared`, a tensor on the scores' device) of a uniform presample of p' b
    for every ratio p' whose presample the scores hold: the first p' b of one random order of them (each a
    uniform draw without replacement; all of them at their own size). With `moments` (scores, size -> a
    tensor: `isample.methods.speedup.SpeedupEstimate.moments_of`), also those of each subsample."""
    order = torch.randperm(len(scores), generator=generator).to(scores.device)
    held = [ratio for ratio in ratios if round(ratio * b) <= len(scores)]
    squares = {ratio: tau_squared(scores[order[: round(ratio * b)]]) for ratio in held}
    if moments is None:
        return squares
    return squares, {ratio: moments(scores[order[: round(ratio * b)]], round(ratio * b)) for ratio in held}


def best_ratio(taus: dict[float, float], a_of) -> tuple[float, float]:
    """The ratio of the largest predicted speed-up tau(p') / (1 + a(p')), and that speed-up (ties: the
    smallest ratio, the cheapest)."""
    speedups = {ratio: tau / (1.0 + a_of(ratio)) for ratio, tau in sorted(taus.items())}
    ratio = max(speedups, key=speedups.get)
    return ratio, speedups[ratio]


class RatioChoice:
    """While IS is on, each larger ratio's gain over the smallest, tau(p') / tau(2), a moving average of what
    each presample held (the gains come from one presample at a time, so a ratio measured only at the probes
    is never set against a fresher tau); tau(p') is estimated as tau(2) x its gain, tau(2) being the method's
    own tau (`UpperBound.tau`, which auto feeds with the presample's tau at the smallest ratio). Also the
    chosen ratio and when to probe the bound."""

    def __init__(self, presample_max: float, momentum: float):
        self.ratios = candidate_ratios(presample_max)
        self.momentum = momentum
        self.gains: dict[float, float] = {}  # per ratio above the smallest; empty while IS is off
        self.ratio = self.ratios[0]
        self.since_probe = 0  # importance-sampled iterations since the last presample at the bound

    @property
    def smallest(self) -> float:
        return self.ratios[0]

    @property
    def bound(self) -> float:
        return self.ratios[-1]

    def presample_ratio(self) -> float:
        """The ratio to presample at in an importance-sampled iteration: the bound when it is due for a
        probe (never measured since IS went on, or PROBE_EVERY iterations after the last probe), else the
        chosen one."""
        due = self.bound not in self.gains or self.since_probe >= PROBE_EVERY - 1
        return self.bound if due and self.ratio < self.bound else self.ratio

    def observe(self, speedups: dict[float, float]) -> None:
        """One importance-sampled iteration's speed-ups at the ratios its presample held (from the moments of
        `subsample_tau_squares`)."""
        smallest = speedups[self.smallest]
        for ratio, speedup in speedups.items():
            if ratio != self.smallest:
                self.gains[ratio] = moving_average(self.gains.get(ratio), speedup / smallest, self.momentum)
        self.since_probe = 0 if self.bound in speedups else self.since_probe + 1

    def off(self) -> None:
        """IS went off: the gains are forgotten, the one tau decides (as at p = 2) until it is on again."""
        self.gains.clear()

    def estimate(self, ratio: float, tau: float) -> float:
        """tau at `ratio` from tau(2) = `tau`: times its gain while IS is on (1 until one is measured)."""
        return tau * self.gains.get(ratio, 1.0)

    def choose(self, tau: float, a_of) -> tuple[float, float]:
        """Choose the ratio (`best_ratio`) from the estimates (`estimate`); returns it and its speed-up."""
        self.ratio, speedup = best_ratio({ratio: self.estimate(ratio, tau) for ratio in self.ratios}, a_of)
        return self.ratio, speedup

    def state_dict(self) -> dict:
        return {"gains": dict(self.gains), "ratio": self.ratio, "since_probe": self.since_probe}

    def load_state_dict(self, state: dict) -> None:
        self.gains = {float(ratio): gain for ratio, gain in state["gains"].items()}
        self.ratio, self.since_probe = float(state["ratio"]), state["since_probe"]
