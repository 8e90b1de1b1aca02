"""Two cost models of one importance-sampling iteration, side by side.

The lab notebook's: forward time per example t, backward T = k t, presample ratio p = B / b,
a = (B's forward time) / (b's forward + backward time) = p / (1 + k), iteration (p + 1 + k) b t.
It prices a presample forward (no autograd, in chunks) at the training forward's t.

The measured one: the presample forward's own per-example time t_p and the bound's per-example
scoring time t_s, so a = p (t_p + t_s) / (t + T) and an iteration takes
p b (t_p + t_s) + b (t + T) + the optimizer step + the non-model time of a training iteration.
The online threshold tau_th = 1 + a uses this a, measured as presample time over training-step time.
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


def measured_ratio(p: float, t_p: float, t_s: float, t: float, big_t: float, t_l: float = 0.0) -> float:
    """a = p (t_p + t_s + t_l) / (t + T): the presample's cost in training steps, from measured rates
    (t_l: loading one example from disk, 0 for data in memory)."""
    _positive("t + T", t + big_t)
    return p * (t_p + t_s + t_l) / (t + big_t)


def measured_iteration_time(
    p: float,
    b: int,
    t_p: float,
    t_s: float,
    t: float,
    big_t: float,
    step: float = 0.0,
    non_model: float = 0.0,
    t_l: float = 0.0,
) -> float:
    """p b (t_p + t_s) + b (t + T) + step + non_model + (p - 1) b t_l: the measured model of one IS
    iteration (p = 0: the uniform one). non_model is the uniform iteration's, which includes loading
    its b examples; an IS iteration loads its B = p b instead (t_l per example, 0 in memory)."""
    return p * b * (t_p + t_s) + b * (t + big_t) + step + non_model + (max(p, 1.0) - 1.0) * b * t_l
