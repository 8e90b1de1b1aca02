"""reuse: a table of past scores, drawn from over the whole data set, unbiased by its weights."""

import pytest
import torch

from isample.methods import ReuseOptions
from isample.methods.reuse import filled_scores
from tests.common import toy_sampler


def reuse_sampler(n=200, b=50, **options):
    return toy_sampler("reuse", ReuseOptions(**options), n=n, batch_size=b, seed=3)


def set_table(method, scores, scored_at=None, iterations=0):
    """The method's table as if trained so far (through its resume path, which rebuilds the trees)."""
    scored_at = torch.zeros(len(scores), dtype=torch.int64) if scored_at is None else scored_at
    method.load_state_dict({"tau": 0.0, "scores": scores, "scored_at": scored_at, "iterations": iterations})


def dense_q(method, eps):
    """q over all N from the O(N) reference table: (1 - eps) s / sum(s) + eps / N."""
    n = len(method.scores)
    table = filled_scores(
        method.scores, method.scored_at, method.iterations, method.max_age_iterations, method.options.unseen
    )
    return (1 - eps) * table / table.sum() + eps / n


def test_weighted_draws_are_unbiased_for_the_whole_data_sets_mean():
    sampler = reuse_sampler(smoothing=0.1)
    method = sampler.method
    n = len(method.scores)
    generator = torch.Generator().manual_seed(0)
    set_table(method, torch.rand(n, generator=generator) ** 3)  # skewed, some scores near 0
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
    scores = torch.zeros(100)
    scores[:10] = 1.0  # ten examples hold all the score
    set_table(method, scores)
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


@pytest.mark.parametrize("unseen, max_age", [("max", 0), ("mean", 0), ("max", 1), ("mean", 1)])
def test_the_tree_draws_exactly_the_dense_tables_q_with_unseen_and_expired_scores(unseen, max_age):
    """Monte Carlo: frequencies over a table with unseen, expired, zero and skewed scores follow the
    O(N) reference q; every weight is exactly 1 / (N q) of it; tau is the reference table's."""
    from isample.sampling import variance_reduction

    n, b, eps = 300, 100, 0.1
    sampler = reuse_sampler(n=n, b=b, smoothing=eps, unseen=unseen, max_age=max_age)
    method = sampler.method
    generator = torch.Generator().manual_seed(1)
    scores = torch.rand(n, generator=generator) ** 2
    scores[:20] = 0.0
    scored_at = torch.randint(-1, 9, (n,), generator=generator)  # -1: never; with max_age 1 (3 iterations), < 5 expired
    set_table(method, scores, scored_at, iterations=8)
    method._expire()
    q = dense_q(method, eps)
    counts = torch.zeros(n)
    for _ in range(1500):
        indices, weights = method.draw()
        torch.testing.assert_close(weights, 1 / (n * q[indices]), rtol=1e-5, atol=0)
        counts += torch.bincount(indices, minlength=n)
    table = filled_scores(method.scores, method.scored_at, 8, method.max_age_iterations, unseen)
    assert method.tau == pytest.approx(variance_reduction(table), rel=1e-6)
    expected = q * counts.sum()
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < n + 5 * (2 * n) ** 0.5, chi_square  # about n - 1 when the draw follows q


def test_training_keeps_the_tree_equal_to_the_reference_table_and_resume_draws_alike():
    sampler = reuse_sampler(n=300, b=50, smoothing=0.2, max_age=1)  # scores expire after 6 iterations
    for _ in range(20):
        sampler.step()
    method = sampler.method
    method._expire()
    q = dense_q(method, 0.2)
    positions = torch.arange(300)
    usable = method.table.values(positions)[:, 2] == 0
    reference = (method.scored_at >= 0) & (method.iterations - method.scored_at <= method.max_age_iterations)
    assert torch.equal(usable, reference) and 0 < usable.sum() < 300
    indices, weights = method.draw()
    torch.testing.assert_close(weights, 1 / (300 * q[indices]), rtol=1e-5, atol=0)
    resumed = reuse_sampler(n=300, b=50, smoothing=0.2, max_age=1)
    resumed.load_state_dict(sampler.state_dict())  # the trees are rebuilt from the table
    for _ in range(3):
        (mine, my_weights), (theirs, their_weights) = method.draw(), resumed.method.draw()
        assert torch.equal(mine, theirs) and torch.equal(my_weights, their_weights)


def test_a_batch_holding_an_example_twice_keeps_its_later_score():
    from isample.methods.reuse import last_of_each

    indices, values = last_of_each(torch.tensor([4, 1, 4, 2]), torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert indices.tolist() == [1, 2, 4] and values.tolist() == pytest.approx([0.2, 0.4, 0.3])
