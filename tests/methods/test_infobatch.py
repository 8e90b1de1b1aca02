"""infobatch: per-epoch pruning of well-learned examples, rescaled, annealed off at the end."""

import math

import pytest
import torch

from isample.methods import InfoBatchOptions
from isample.methods.infobatch import prune
from tests.common import toy_sampler


@pytest.mark.parametrize("prune_ratio", [0.3, 0.5, 0.9])
def test_prunes_the_authors_exact_count_of_below_mean_examples_and_rescales_the_kept_ones(prune_ratio):
    generator = torch.Generator().manual_seed(0)
    losses = torch.rand(20001, generator=generator)
    losses[:100] = math.nan  # never trained: never pruned
    known = losses[100:]
    below = ~torch.isnan(losses) & (losses < known.mean())
    n_below = int(below.sum())
    keep_ratio = 1 - prune_ratio
    for _ in range(3):  # exactly int(keep_ratio * n), every time (the package's np.random.choice count)
        kept, weights = prune(losses, prune_ratio, generator)
        kept_mask = torch.zeros(20001, dtype=torch.bool)
        kept_mask[kept] = True
        assert int(kept_mask[below].sum()) == int(keep_ratio * n_below)
        assert kept_mask[~below].all()  # above the mean, or no loss yet: always kept
        assert len(kept.unique()) == len(kept)
        assert torch.allclose(weights[below[kept]], torch.tensor(1 / keep_ratio))
        assert (weights[~below[kept]] == 1).all()


def test_pruned_and_rescaled_sum_is_unbiased():
    generator = torch.Generator().manual_seed(1)
    losses = torch.rand(500, generator=generator)
    f = torch.randn(500, generator=generator) - 3 * losses  # correlated with the loss, so bias would show
    sums = torch.stack(
        [(weights * f[kept]).sum() for kept, weights in (prune(losses, 0.5, generator) for _ in range(4000))]
    )
    assert abs(sums.mean() - f.sum()) < 4 * sums.std() / math.sqrt(len(sums))
    unweighted = torch.stack([f[prune(losses, 0.5, generator)[0]].sum() for _ in range(200)])
    assert abs(unweighted.mean() - f.sum()) > 10 * sums.std() / math.sqrt(len(sums))


def infobatch_sampler(n=400, b=20, **options):
    return toy_sampler("infobatch", InfoBatchOptions(**options), n=n, batch_size=b)


def test_an_epoch_is_a_permutation_of_the_kept_examples_and_shrinks_with_pruning():
    sampler = infobatch_sampler(prune_ratio=0.5)
    method = sampler.method
    assert sampler.start_epoch() == 20  # no losses yet: nothing pruned
    first_epoch = torch.cat([sampler.step().indices for _ in range(20)])
    assert sorted(first_epoch.tolist()) == list(range(400))  # without replacement
    assert not torch.isnan(method.losses).any()  # every trained loss is in the table
    iterations = sampler.start_epoch()
    kept = len(method.order)
    assert kept < 400 and iterations == kept // 20 and method.pruning
    second_epoch = torch.cat([sampler.step().indices for _ in range(iterations)])
    assert len(second_epoch.unique()) == len(second_epoch)


def test_annealing_turns_pruning_off_for_the_last_part_of_the_budget():
    sampler = infobatch_sampler(prune_ratio=0.5, delta=0.875)
    method = sampler.method
    method.losses = torch.rand(400, generator=torch.Generator().manual_seed(2))
    sampler.context.progress = lambda: 0.8
    assert sampler.start_epoch() < 20 and method.pruning
    assert sampler.step().used_importance
    sampler.context.progress = lambda: 0.875
    assert sampler.start_epoch() == 20 and not method.pruning
    it = sampler.step()
    assert not it.used_importance and (it.weights == 1).all()


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match=r"prune_ratio = 0.95: must be in \[0, 0.9\]"):
        InfoBatchOptions(prune_ratio=0.95)
    with pytest.raises(ValueError, match="delta = 1.5"):
        InfoBatchOptions(delta=1.5)
