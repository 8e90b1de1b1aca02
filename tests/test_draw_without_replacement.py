"""isample.sampling's draw without replacement (inclusion probabilities pi_i = min(1, c q_i), randomised
systematic sampling, Horvitz-Thompson weights), checked by Monte Carlo: each position is drawn with its
pi_i, the weighted batch mean is unbiased for the presample's mean and, over presamples, the data's, and
flat scores give uniform batches of distinct examples."""

import pytest
import torch

from isample.sampling import (
    importance_draw,
    importance_draw_without_replacement,
    inclusion_probabilities,
    systematic_draw,
)


def scores_with_a_few_large(n=64, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, generator=generator) + 0.05
    scores[:3] = torch.tensor([40.0, 25.0, 6.0])  # large enough that c q_i > 1: taken for sure
    return scores


def test_inclusion_probabilities_sum_to_b_are_capped_at_one_and_proportional_below():
    scores = scores_with_a_few_large()
    q = scores / scores.sum()
    pi = inclusion_probabilities(q, 16)
    assert float(pi.sum()) == pytest.approx(16, abs=1e-9)
    assert float(pi.max()) == pytest.approx(1.0) and (pi <= 1 + 1e-12).all()
    capped = pi >= 1 - 1e-12
    assert capped[:2].all() and capped.sum() >= 2  # the largest two at least
    ratio = pi[~capped] / q[~capped]  # one c for every position not capped
    assert float(ratio.max() - ratio.min()) < 1e-5 * float(ratio.mean())  # float32
    uncapped = torch.full((10,), 0.1)
    assert torch.allclose(inclusion_probabilities(uncapped, 4), torch.full((10,), 0.4, dtype=torch.float32))


def test_each_draw_is_b_distinct_positions_each_drawn_with_its_inclusion_probability():
    scores = scores_with_a_few_large()
    q = scores / scores.sum()
    pi = inclusion_probabilities(q, 16)
    generator, draws = torch.Generator().manual_seed(1), 20_000
    counts = torch.zeros(64)
    for _ in range(draws):
        positions = systematic_draw(pi, 16, generator)
        assert positions.unique().numel() == 16
        counts[positions] += 1
    frequency = counts / draws
    sigma = (pi * (1 - pi) / draws).sqrt()
    # 4.5 standard errors per position (64 positions, seeded): a wrong pi_i of 0.01 would show
    assert ((frequency - pi).abs() <= 4.5 * sigma + 1e-9).all(), (frequency - pi).abs().max()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_weighted_batch_mean_is_unbiased_for_the_presample_mean(smoothing):
    scores = scores_with_a_few_large()
    f = torch.randn(64, generator=torch.Generator().manual_seed(2)) + scores / 10  # any per-example value
    generator, draws = torch.Generator().manual_seed(3), 20_000
    estimates = torch.empty(draws)
    for index in range(draws):
        positions, weights = importance_draw_without_replacement(scores, 16, generator, smoothing)
        estimates[index] = (weights * f[positions]).mean()
    standard_error = estimates.std() / draws**0.5
    assert float(estimates.mean()) == pytest.approx(float(f.mean()), abs=4 * float(standard_error))


def test_over_presamples_the_weighted_batch_mean_is_unbiased_for_the_data_mean():
    """The two stages of IS: a uniform presample of B = 2b of N examples, then b of it by the scores."""
    generator = torch.Generator().manual_seed(4)
    data_scores = torch.rand(500, generator=generator) ** 3 + 0.01
    f = torch.randn(500, generator=generator) + 5 * data_scores
    draws, estimates = 20_000, torch.empty(20_000)
    for index in range(draws):
        presample = torch.randperm(500, generator=generator)[:32]
        positions, weights = importance_draw_without_replacement(data_scores[presample], 16, generator)
        estimates[index] = (weights * f[presample][positions]).mean()
    standard_error = estimates.std() / draws**0.5
    assert float(estimates.mean()) == pytest.approx(float(f.mean()), abs=4 * float(standard_error))


def test_flat_scores_give_distinct_uniform_batches_with_unit_weights():
    generator, counts = torch.Generator().manual_seed(5), torch.zeros(32)
    for _ in range(5_000):
        positions, weights = importance_draw_without_replacement(torch.ones(32), 16, generator)
        assert positions.unique().numel() == 16 and torch.allclose(weights, torch.ones(16))
        counts[positions] += 1
    frequency, sigma = counts / 5_000, (0.5 * 0.5 / 5_000) ** 0.5
    assert ((frequency - 0.5).abs() <= 4.5 * sigma).all()
    positions, weights = importance_draw_without_replacement(torch.zeros(32), 16, generator)  # no information
    assert positions.unique().numel() == 16 and torch.allclose(weights, torch.ones(16))


def test_where_nothing_is_capped_the_weights_are_the_2018_draws():
    scores = torch.rand(64, generator=torch.Generator().manual_seed(6)) + 0.5
    positions, weights = importance_draw_without_replacement(scores, 16, torch.Generator().manual_seed(7), 0.1)
    q = 0.9 * scores / scores.sum() + 0.1 / 64
    assert torch.allclose(weights, 1 / (64 * q[positions]), rtol=1e-5)


def test_without_replacement_varies_less_than_with_replacement_on_the_same_scores():
    """Scores that tell most of f (f = s (1 + noise)): the estimate from b distinct examples varies less
    than from b drawn with repeats; flat scores: by the finite-population factor (B - b) / (B - 1)."""
    generator = torch.Generator().manual_seed(8)
    scores = torch.rand(32, generator=generator) + 0.5
    f = scores * (1 + 0.3 * torch.randn(32, generator=generator))

    def variance(draw, values, by) -> float:
        estimates = []
        for _ in range(4_000):
            positions, weights = draw(by, 16, generator)
            estimates.append(float((weights * values[positions]).mean()))
        return float(torch.tensor(estimates).var())

    informed = variance(importance_draw_without_replacement, f, scores) / variance(importance_draw, f, scores)
    flat = torch.ones(32)
    uniform = variance(importance_draw_without_replacement, f, flat) / variance(importance_draw, f, flat)
    assert informed < 0.7 and uniform == pytest.approx(16 / 31, rel=0.15)  # 4,000 draws: about 4% each


def test_bad_batch_sizes_are_refused():
    with pytest.raises(ValueError, match="b must be in 1 ... 8"):
        inclusion_probabilities(torch.full((8,), 0.125), 9)
