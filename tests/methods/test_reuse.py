"""reuse: a table of past scores, drawn from over the whole data set, unbiased by its weights."""

import pytest
import torch

from isample.methods import ReuseOptions
from isample.methods.reuse import filled_scores
from tests.common import toy_sampler


def reuse_sampler(n=200, b=50, **options):
    return toy_sampler("reuse", ReuseOptions(**options), n=n, batch_size=b, seed=3)


def test_weighted_draws_are_unbiased_for_the_whole_data_sets_mean():
    sampler = reuse_sampler(smoothing=0.1)
    method = sampler.method
    n = len(method.scores)
    generator = torch.Generator().manual_seed(0)
    method.scores = torch.rand(n, generator=generator) ** 3  # skewed, some scores near 0
    method.scored_at[:] = 0
    f = torch.randn(n, generator=generator) + 5 * method.scores  # correlated with the score: bias shows
    weighted, plain = [], []
    for _ in range(3000):  # 150,000 draws in all
        selection = method.select()
        weighted.append((selection.weights * f[selection.indices]).mean())
        plain.append(f[selection.indices].mean())
    weighted, plain = torch.stack(weighted), torch.stack(plain)
    standard_error = weighted.std() / len(weighted) ** 0.5
    assert abs(weighted.mean() - f.mean()) < 4 * standard_error
    assert abs(plain.mean() - f.mean()) > 20 * standard_error  # the unweighted mean is biased


def test_draw_frequencies_follow_the_smoothed_table_and_weights_are_bounded():
    sampler = reuse_sampler(n=100, b=100, smoothing=0.2)
    method = sampler.method
    method.scores = torch.zeros(100)
    method.scores[:10] = 1.0  # ten examples hold all the score
    method.scored_at[:] = 0
    counts = torch.zeros(100)
    for _ in range(400):
        selection = method.select()
        counts += torch.bincount(selection.indices, minlength=100)
        assert selection.by_score and selection.weights.max() <= 1 / 0.2 + 1e-6
    share = counts / counts.sum()
    expected_high, expected_low = 0.8 / 10 + 0.2 / 100, 0.2 / 100  # (1 - eps) s / sum(s) + eps / N
    assert share[:10].mean() == pytest.approx(expected_high, rel=0.05)
    assert share[10:].mean() == pytest.approx(expected_low, rel=0.1)
    assert (counts[10:] > 0).sum() > 80  # a zero score is no exile: the eps floor draws it again


def test_unseen_and_expired_scores_get_the_max_or_the_mean_of_usable_ones():
    scores = torch.tensor([1.0, 3.0, 0.0, 5.0])
    scored_at = torch.tensor([10, 9, -1, 2])  # example 2 never scored, example 3 scored long ago
    assert filled_scores(scores, scored_at, now=10, max_age=0, unseen="max").tolist() == [1, 3, 5, 5]
    assert filled_scores(scores, scored_at, now=10, max_age=5, unseen="max").tolist() == [1, 3, 3, 3]
    assert filled_scores(scores, scored_at, now=10, max_age=5, unseen="mean").tolist() == [1, 3, 2, 2]
    assert filled_scores(scores, torch.full((4,), -1), now=0, max_age=0, unseen="max").tolist() == [1, 1, 1, 1]


def test_training_forward_refreshes_the_table_for_free():
    sampler = reuse_sampler()
    it = sampler.step()
    method = sampler.method
    assert (method.scored_at[it.indices] == 0).all() and (method.scores[it.indices] > 0).all()
    assert (method.scored_at >= 0).sum() == len(it.indices.unique())
    assert it.phases["presample_forward"] == 0  # no forward of its own
    first_draw_uniform = it.weights
    assert torch.allclose(first_draw_uniform, torch.ones(50))  # nothing scored yet: a uniform draw


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="smoothing = 0"):
        ReuseOptions(smoothing=0)
    with pytest.raises(ValueError, match="unseen = 'min'"):
        ReuseOptions(unseen="min")
