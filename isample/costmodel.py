"""The lab notebook's cost model of one importance-sampling iteration.

Forward time per example t, backward T = k t, presample ratio p = B / b, and
a = (B's forward time) / (b's forward + backward time) = p / (1 + k).
"""


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def default_tau_threshold(B: int, b: int) -> float:
    """The 2018 reference code's fixed threshold (B + 3b) / (3b), which assumes k = 2."""
    _positive("b", b)
    return (B + 3 * b) / (3 * b)


def tau_threshold(a: float) -> float:
    """IS pays off when tau > 1 + a: the variance reduction must beat the presample's cost."""
    if a < 0:
        raise ValueError(f"a must be >= 0, got {a}")
    return 1.0 + a


def k_from_ratio(p: float, a: float) -> float:
    """k = T / t from the presample ratio and the measured a: k = p / a - 1."""
    _positive("a", a)
    return p / a - 1.0


def ratio_from_k(p: float, k: float) -> float:
    """a = p / (1 + k)."""
    _positive("1 + k", 1 + k)
    return p / (1.0 + k)


def iteration_time(p: float, k: float, b: int, t: float) -> float:
    """Model time of one IS iteration, non-model time ignored: (p + 1 + k) b t."""
    return (p + 1.0 + k) * b * t


def speedup_vs_full_batch(p: float, k: float) -> float:
    """u = [B t + b (t + T)] / [B (t + T)] = (p + k + 1) / (p (1 + k))."""
    _positive("p", p)
    _positive("1 + k", 1 + k)
    return (p + k + 1.0) / (p * (1.0 + k))
