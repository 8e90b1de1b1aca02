"""The same checks for every method of the family: it trains in a plain loop, and it resumes."""

import copy

import pytest
import torch

from isample.methods import METHODS
from tests.common import toy_sampler


def built(method, seed=0, timing=True):
    return toy_sampler(method, n=600, batch_size=30, seed=seed, timing=timing)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_a_learnable_problem(method):
    sampler = built(method)
    losses = []
    for _ in range(10):
        iterations = sampler.start_epoch()
        losses.append(sum(sampler.step().plain_loss.item() for _ in range(iterations)) / iterations)
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_resumes_where_it_stopped(method):
    sampler = built(method, timing=False)  # measured times would move upper_bound's threshold
    for _ in range(3):
        for _ in range(sampler.start_epoch()):
            sampler.step()
    sampler.start_epoch()
    for _ in range(4):  # stop mid-epoch
        sampler.step()
    model, optimizer = sampler.context.model, sampler.train_step.optimizer
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), sampler.state_dict()))
    continued = [sampler.step().indices for _ in range(12)]

    fresh = built(method, seed=99, timing=False)
    fresh.context.model.load_state_dict(saved[0])
    fresh.train_step.optimizer.load_state_dict(saved[1])
    fresh.load_state_dict(saved[2])
    resumed = [fresh.step().indices for _ in range(12)]
    for a, b in zip(continued, resumed):
        assert torch.equal(a, b)
