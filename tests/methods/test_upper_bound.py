"""upper_bound's diagnostics of IS at zero price: the weights' spread, IS from a share of the budget."""

import math

import pytest
import torch

from isample.methods.catalog import UpperBoundOptions
from isample.methods.upper_bound import weight_spread
from isample.sampling import importance_draw
from isample.trainer import Trainer
from tests.common import toy_problem


def test_weight_spread_of_known_weights():
    spread = weight_spread(torch.tensor([0, 0, 1, 2]), torch.tensor([1.0, 1.0, 2.0, 4.0]), 6)
    assert float(spread["weight_max"]) == 4.0
    assert float(spread["effective_share"]) == pytest.approx(64 / (4 * 22))
    assert float(spread["distinct_share"]) == 0.75


def test_equal_scores_still_repeat_about_a_fifth_of_a_batch_at_p_2():
    """b = 128 draws with replacement from B = 256 equal scores: E[distinct] = B (1 - (1 - 1/B)^b), so
    about 21% of a batch repeats (the 2018 draw, which random reshuffling never does)."""
    generator = torch.Generator().manual_seed(0)
    draws = (importance_draw(torch.ones(256), 128, generator) for _ in range(2000))
    shares = [float(weight_spread(*draw, 256)["distinct_share"]) for draw in draws]
    expected = 256 * (1 - (1 - 1 / 256) ** 128) / 128
    assert sum(shares) / len(shares) == pytest.approx(expected, abs=0.003)
    assert expected == pytest.approx(0.788, abs=0.001)


def test_importance_sampling_waits_for_its_share_of_the_budget():
    model, optimizer, x, y = toy_problem()
    spent = [0.0]
    options = UpperBoundOptions(always_importance=True, importance_from=0.3)
    with Trainer("upper_bound", model, optimizer, x, y, 32, options=options, seed=0, progress=lambda: spent[0]) as t:
        t.start_epoch()
        before = [t.step() for _ in range(5)]
        spent[0] = 0.3
        after = [t.step() for _ in range(5)]
    assert not any(step.by_score for step in before) and all(step.by_score for step in after)
    assert all(math.isnan(step.metrics["weight_max"]) for step in before)
    assert all(1 <= step.metrics["weight_max"] <= 10 for step in after)  # smoothing 0.1: weights <= 1 / 0.1
    assert all(0 < step.metrics["distinct_share"] <= 1 for step in after)
    with pytest.raises(ValueError, match="importance_from = 1.0"):
        UpperBoundOptions(importance_from=1.0)


@pytest.mark.parametrize("presample", [1, 2, 3.5])
def test_a_draw_without_replacement_trains_b_distinct_examples_of_its_presample(presample):
    """Every importance-sampled batch is b distinct examples of the presample, their Horvitz-Thompson
    weights b / (B pi_i) are at most 1 / eps (pi_i >= b eps / B), and at p = 1 (B = b) every example of
    the presample is taken, with weight 1: the uniform batch itself."""
    model, optimizer, x, y = toy_problem()
    options = UpperBoundOptions(presample=presample, always_importance=True, draw="without_replacement")
    with Trainer("upper_bound", model, optimizer, x, y, 32, options=options, seed=0) as t:
        t.start_epoch()
        steps = [t.step() for _ in range(20)]
    for step in steps:
        assert step.by_score and len(torch.unique(step.indices)) == 32
        assert step.metrics["distinct_share"] == 1.0
        assert bool((step.weights <= 1 / options.smoothing + 1e-5).all())
        if presample == 1:
            assert torch.equal(step.weights, torch.ones(32))
    if presample > 1:
        assert any(not torch.equal(step.weights, torch.ones(32)) for step in steps)


def test_the_draw_is_an_option_whose_unknown_values_are_refused_by_name():
    assert UpperBoundOptions().draw == "without_replacement"
    with pytest.raises(ValueError, match="draw = 'systematic': must be one of without_replacement, with_replacement"):
        UpperBoundOptions(draw="systematic")
