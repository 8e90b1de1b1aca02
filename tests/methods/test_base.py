"""What every method shares: an epoch of the random-reshuffling stream, and IS held off as the uniform run."""

import pytest
import torch

from isample.trainer import ImportanceSampler, UniformSampler
from tests.common import toy_problem, toy_sampler


def one_epoch(sampler) -> torch.Tensor:
    return torch.cat([sampler.step().indices for _ in range(sampler.start_epoch())])


def test_an_epoch_of_uniform_trains_every_example_exactly_once():
    sampler = toy_sampler("uniform", n=600, batch_size=30)
    epochs = [one_epoch(sampler) for _ in range(3)]
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(600))
    assert not torch.equal(epochs[0], epochs[1])  # a fresh permutation each pass


def test_the_last_partial_batch_sits_the_pass_out():
    """N = 610, b = 30: 20 batches a pass; the 10 left over are not trained in that pass (drop_last)."""
    sampler = toy_sampler("uniform", n=610, batch_size=30)
    for _ in range(3):
        epoch = one_epoch(sampler)
        assert len(epoch) == 600 and len(epoch.unique()) == 600
    left_out = [set(range(610)) - set(one_epoch(sampler).tolist()) for _ in range(3)]
    assert all(len(rest) == 10 for rest in left_out) and left_out[0] != left_out[1]


@pytest.mark.parametrize("timing", [True, False])
def test_upper_bound_with_is_off_is_the_uniform_run_itself(timing):
    """Same seed, IS never on: the same batches, the same augmentation draws, the same weights."""

    def noisy(generator):
        return lambda x: x + 0.1 * torch.randn(x.shape, generator=generator)

    runs = []
    threshold = "auto" if timing else 1e9  # auto: probes price IS while it is off
    for sampler_type, options in ((UniformSampler, {}), (ImportanceSampler, {"tau_threshold": threshold})):
        model, optimizer, x, y = toy_problem()
        sampler = sampler_type(
            model,
            optimizer,
            x,
            y,
            32,
            transform=noisy(torch.Generator().manual_seed(7)),
            generator=torch.Generator().manual_seed(1),
            timing=timing,
            **options,
        )
        indices = []
        for _ in range(120):  # past two probes (every 50 iterations)
            it = sampler.step()
            assert not it.used_importance
            indices.append(it.indices)
            sampler.tau = 0.0  # keeps IS off under the auto threshold
        runs.append((torch.cat(indices), [p.detach().clone() for p in model.parameters()]))
    (uniform_indices, uniform_weights), (is_indices, is_weights) = runs
    assert torch.equal(uniform_indices, is_indices)
    assert all(torch.equal(a, b) for a, b in zip(uniform_weights, is_weights))
