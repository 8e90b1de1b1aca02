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
    spread = weight_spread(torch.tensor([0, 0, 1, 2]), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    assert spread["weight_max"] == 4.0
    assert spread["effective_share"] == pytest.approx(64 / (4 * 22))
    assert spread["distinct_share"] == 0.75


def test_equal_scores_still_repeat_about_a_fifth_of_a_batch_at_p_2():
    """b = 128 draws with replacement from B = 256 equal scores: E[distinct] = B (1 - (1 - 1/B)^b), so
    about 21% of a batch repeats (the 2018 draw, which random reshuffling never does)."""
    generator = torch.Generator().manual_seed(0)
    shares = [weight_spread(*importance_draw(torch.ones(256), 128, generator))["distinct_share"] for _ in range(2000)]
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
