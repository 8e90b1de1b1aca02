import math

import pytest
import torch
import torch.nn.functional as F

from isample.sampling import FANOUT, MaxTree, SumTree, importance_draw, variance_reduction
from isample.scores import gnorm_upper_bound


def draw_estimates(scores, f, b, draws, seed=0, weighted=True, smoothing=0.0):
    generator = torch.Generator().manual_seed(seed)
    estimates = torch.empty(draws, dtype=torch.float64)
    for r in range(draws):
        positions, weights = importance_draw(scores, b, generator, smoothing)
        values = f[positions].double()
        estimates[r] = (weights.double() * values).mean() if weighted else values.mean()
    return estimates


def within_monte_carlo_tolerance(estimates, target, sigmas=4.0):
    standard_error = estimates.std().item() / math.sqrt(len(estimates))
    return abs(estimates.mean().item() - target) <= sigmas * standard_error, standard_error


def test_weighted_mean_is_unbiased_for_presample_mean():
    generator = torch.Generator().manual_seed(3)
    scores = torch.rand(100, generator=generator) ** 3 + 0.01  # strongly non-uniform
    f = torch.randn(100, generator=generator) + 5 * scores  # correlated with the scores
    estimates = draw_estimates(scores, f, b=16, draws=20000)
    ok, se = within_monte_carlo_tolerance(estimates, f.double().mean().item())
    assert ok, f"mean {estimates.mean():.4f} vs {f.mean():.4f}, se {se:.4f}"
    # The same check rejects the unweighted (biased) mean: the test can fail.
    biased = draw_estimates(scores, f, b=16, draws=20000, weighted=False)
    assert not within_monte_carlo_tolerance(biased, f.double().mean().item())[0]


@pytest.mark.parametrize("smoothing", [0.1, 0.5])
def test_smoothed_draws_are_unbiased_and_their_weights_bounded(smoothing):
    generator = torch.Generator().manual_seed(3)
    scores = torch.rand(100, generator=generator) ** 6  # some scores near zero: unsmoothed weights explode
    f = torch.randn(100, generator=generator) + 5 * scores
    estimates = draw_estimates(scores, f, b=16, draws=20000, smoothing=smoothing)
    ok, se = within_monte_carlo_tolerance(estimates, f.double().mean().item())
    assert ok, f"mean {estimates.mean():.4f} vs {f.mean():.4f}, se {se:.4f}"
    biased = draw_estimates(scores, f, b=16, draws=20000, weighted=False, smoothing=smoothing)
    assert not within_monte_carlo_tolerance(biased, f.double().mean().item())[0]
    _, weights = importance_draw(scores, 20000, torch.Generator().manual_seed(1), smoothing)
    assert weights.max() <= 1 / smoothing + 1e-5
    _, unsmoothed = importance_draw(scores, 20000, torch.Generator().manual_seed(1))
    assert unsmoothed.max() > 1 / smoothing  # without smoothing the bound does not hold: the test can fail


def test_smoothing_mixes_in_the_uniform_distribution_and_zero_is_the_2018_draw():
    scores = torch.tensor([1.0, 0.0, 3.0, 0.0])
    positions, weights = importance_draw(scores, 200000, torch.Generator().manual_seed(0), smoothing=0.2)
    frequencies = torch.bincount(positions, minlength=4).double() / 200000
    expected = 0.8 * scores.double() / 4 + 0.2 / 4
    assert torch.allclose(frequencies, expected, atol=0.005)
    torch.testing.assert_close(weights, 1 / (4 * expected[positions].float()))
    first = importance_draw(scores, 50, torch.Generator().manual_seed(9))
    same = importance_draw(scores, 50, torch.Generator().manual_seed(9), smoothing=0.0)
    assert torch.equal(first[0], same[0]) and torch.equal(first[1], same[1])
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="smoothing"):
            importance_draw(scores, 4, smoothing=bad)


def test_weighted_gradient_of_linear_model_matches_uniform_gradient():
    torch.manual_seed(4)
    model = torch.nn.Linear(8, 4)
    x, y = torch.randn(64, 8), torch.randint(4, (64,))
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    uniform_gradient = model.weight.grad.clone()
    with torch.no_grad():
        scores = gnorm_upper_bound(model(x), y)
    generator = torch.Generator().manual_seed(5)
    draws = 3000
    gradients = torch.empty(draws, *uniform_gradient.shape, dtype=torch.float64)
    for r in range(draws):
        positions, weights = importance_draw(scores, 8, generator)
        model.zero_grad()
        losses = F.cross_entropy(model(x[positions]), y[positions], reduction="none")
        (weights * losses).mean().backward()
        gradients[r] = model.weight.grad
    mean = gradients.mean(0)
    standard_error = gradients.std(0) / math.sqrt(draws)
    assert ((mean - uniform_gradient.double()).abs() <= 4.5 * standard_error + 1e-9).all()


def test_weights_are_inverse_of_B_times_probability():
    scores = torch.tensor([1.0, 3.0, 0.0, 4.0])
    positions, weights = importance_draw(scores, 1000, torch.Generator().manual_seed(0))
    assert (positions != 2).all()  # zero score: never drawn
    g = scores / scores.sum()
    torch.testing.assert_close(weights, 1 / (4 * g[positions]))


def test_all_zero_scores_fall_back_to_uniform_with_unit_weights():
    positions, weights = importance_draw(torch.zeros(10), 5000, torch.Generator().manual_seed(0))
    assert (weights == 1).all()
    counts = torch.bincount(positions, minlength=10).float()
    assert counts.min() > 400 and counts.max() < 600


def test_same_generator_seed_same_draws():
    scores = torch.rand(50)
    first = importance_draw(scores, 20, torch.Generator().manual_seed(9))
    second = importance_draw(scores, 20, torch.Generator().manual_seed(9))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize(
    "scores, message",
    [
        (torch.tensor([1.0, -0.5]), "non-negative"),
        (torch.tensor([1.0, float("nan")]), "finite"),
        (torch.tensor([1.0, float("inf")]), "finite"),
        (torch.tensor([]), "non-empty"),
    ],
)
def test_bad_scores_raise_clear_errors(scores, message):
    with pytest.raises(ValueError, match=message):
        importance_draw(scores, 4)
    with pytest.raises(ValueError, match=message):
        variance_reduction(scores)


def test_bad_batch_size_raises():
    with pytest.raises(ValueError, match="b must be >= 1"):
        importance_draw(torch.ones(4), 0)


def test_variance_reduction_extremes():
    assert variance_reduction(torch.full((37,), 0.3)) == pytest.approx(1.0)
    dominant = torch.zeros(49)
    dominant[7] = 2.0
    assert variance_reduction(dominant) == pytest.approx(7.0)
    assert 1.0 < variance_reduction(torch.tensor([1.0, 2.0, 3.0])) < math.sqrt(3)


# -- the trees: totals and maxima after changes, prefix search against a cumulative sum, draws in
# proportion to the values (Monte Carlo)


@pytest.mark.parametrize("size", [1, 5, FANOUT, FANOUT + 1, FANOUT**2 + 3, 10_000])
def test_totals_and_maxima_follow_every_change(size):
    generator = torch.Generator().manual_seed(size)
    values = torch.rand(size, 2, generator=generator, dtype=torch.float64)
    sums, maxima = SumTree(size, channels=2), MaxTree(size, channels=2)
    sums.set(torch.arange(size), values)
    maxima.set(torch.arange(size), values)
    for _ in range(20):
        changed = torch.randperm(size, generator=generator)[: min(size, 37)]
        values[changed] = torch.rand(len(changed), 2, generator=generator, dtype=torch.float64) * 3
        sums.set(changed, values[changed])
        maxima.set(changed, values[changed])
        torch.testing.assert_close(sums.total(), values.sum(0), rtol=1e-12, atol=1e-12)
        assert torch.equal(maxima.total(), values.max(0).values)
    torch.testing.assert_close(sums.values(torch.arange(size)), values)


def test_find_is_the_cumulative_sums_search_and_never_returns_a_zero():
    size = 5000
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(size, generator=generator, dtype=torch.float64)
    values[torch.rand(size, generator=generator) < 0.5] = 0.0  # half of them zero, in runs
    values[:100] = 0.0
    values[-100:] = 0.0
    tree = SumTree(size)
    tree.set(torch.arange(size), values)
    targets = torch.rand(20_000, generator=generator, dtype=torch.float64) * values.sum()
    targets = torch.cat([targets, torch.tensor([0.0, values.sum().item(), values.sum().item() * (1 + 1e-9)])])
    found = tree.find(targets)
    reference = torch.searchsorted(values.cumsum(0), targets[:-3], right=True)
    assert torch.equal(found[:-3], reference)
    assert (values[found] > 0).all()  # the ends, pushed by rounding, land on positive leaves too


def test_draws_follow_the_values():
    size = 300
    generator = torch.Generator().manual_seed(2)
    values = torch.rand(size, generator=generator, dtype=torch.float64) ** 3
    tree = SumTree(size, channels=2)
    tree.set(torch.arange(size), torch.stack([values, torch.ones(size, dtype=torch.float64)], 1))
    counts = torch.bincount(tree.sample(300_000, generator), minlength=size).double()
    expected = values / values.sum() * counts.sum()
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < size + 5 * (2 * size) ** 0.5, chi_square  # about size - 1 when the draw follows the values
    uniform = torch.bincount(tree.sample(30_000, generator, channel=1), minlength=size)
    assert uniform.min() > 50 and uniform.max() < 150  # channel 1: all ones, a uniform draw


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match="at least one leaf"):
        SumTree(0)
    with pytest.raises(ValueError, match="all 0"):
        SumTree(10).sample(3)
    with pytest.raises(ValueError, match="no prefix sums"):
        MaxTree(10).find(torch.zeros(2))


def test_rounding_cannot_pile_up_over_many_changes():
    """Changes add their differences to the ancestors; after as many changes as leaves every level is
    recomputed from the leaves, so the sums stay within rounding of the exact ones however long it runs."""
    size = 1000
    generator = torch.Generator().manual_seed(3)
    tree = SumTree(size)
    values = torch.zeros(size, dtype=torch.float64)
    for step in range(3000):
        changed = torch.randperm(size, generator=generator)[:50]
        values[changed] = torch.rand(50, generator=generator, dtype=torch.float64) * 10 ** (step % 7 - 3)
        tree.set(changed, values[changed])
    assert tree._changes < size  # rebuilt along the way
    assert tree.total().item() == pytest.approx(values.sum().item(), rel=1e-12)
    for below, above in zip(tree.levels, tree.levels[1:]):
        torch.testing.assert_close(
            above[:, : below.shape[1] // FANOUT], below.view(1, -1, FANOUT).sum(2), rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_the_draw_without_host_reads_draws_q_with_the_same_weights(smoothing):
    """The draw CUDA takes (host_reads=False: inverted cumulative sums where the scores are): each position's
    frequency over 200,000 draws is q_i within 4.5 standard errors, its weights are 1 / (B q_i), and the
    weighted mean stays unbiased for the presample's mean."""
    generator = torch.Generator().manual_seed(11)
    scores = torch.rand(40, generator=generator) ** 3
    scores[7] = 0.0
    q = (1 - smoothing) * scores / scores.sum() + smoothing / 40
    positions, weights = importance_draw(scores, 200_000, generator, smoothing, host_reads=False)
    frequency = torch.bincount(positions, minlength=40).double() / len(positions)
    standard_error = (q * (1 - q) / len(positions)).sqrt()
    assert ((frequency - q).abs() <= 4.5 * standard_error + 1e-12).all()
    assert smoothing or frequency[7] == 0  # a zero score is never drawn unless smoothed
    torch.testing.assert_close(weights, 1 / (40 * q[positions]))
    f = torch.randn(40, generator=generator) + 5 * scores
    estimates = torch.tensor([float((w * f[p]).mean()) for p, w in zip(positions.view(-1, 16), weights.view(-1, 16))])
    assert within_monte_carlo_tolerance(estimates.double(), float(f.mean()))[0]


def test_the_draw_without_host_reads_survives_a_diverged_model():
    """NaN, infinite and negative scores are drawn as 0 (the caller reads `score_faults` later): positions stay
    inside the presample, and all-bad scores draw uniformly with weights 1."""
    scores = torch.tensor([1.0, float("nan"), 2.0, float("inf"), -1.0])
    positions, weights = importance_draw(scores, 1000, torch.Generator().manual_seed(0), host_reads=False)
    assert set(positions.tolist()) == {0, 2} and torch.isfinite(weights).all()
    nothing = torch.full((6,), float("nan"))
    positions, weights = importance_draw(nothing, 600, torch.Generator().manual_seed(0), host_reads=False)
    assert len(set(positions.tolist())) == 6 and (weights == 1).all()
