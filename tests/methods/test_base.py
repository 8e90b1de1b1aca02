"""The examples every method draws from: the random-reshuffling stream (a permutation per pass)."""

import copy
import time

import pytest
import torch

from isample.methods.base import Reshuffling
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


def test_a_resumed_stream_continues_the_same_permutation():
    stream = Reshuffling(100, seed=3)
    stream.take(40)
    state = copy.deepcopy(stream.state_dict())
    expected = [stream.take(40) for _ in range(4)]  # crosses into the next pass
    resumed = Reshuffling(100, seed=99)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(expected, [resumed.take(40) for _ in range(4)]))


def test_ranks_taking_alike_partition_the_single_process_batches():
    whole = Reshuffling(1000, seed=5)
    ranks = [Reshuffling(1000, seed=5, rank=r, world_size=4) for r in range(4)]
    for _ in range(30):  # three passes of 10 global batches of 100
        global_batch = whole.take(100)
        shares = torch.cat([rank.take(25) for rank in ranks])
        assert sorted(shares.tolist()) == sorted(global_batch.tolist())


def test_taking_more_than_a_pass_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot take 11 examples from a pass of 10"):
        Reshuffling(10, seed=0).take(11)


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


def test_loads_dropped_unused_give_back_their_augmentation_draws():
    """Loaded ahead and augmented, then not asked for: the next request gets the draws it would get
    had nothing been loaded ahead (as the same requests from memory get them)."""
    from isample.methods.base import Examples, LoadedExamples
    from isample.phases import PhaseTimer
    from tests.methods.test_family import Jitter, TensorDataset

    x, y = torch.randn(200, 4), torch.randint(3, (200,))
    gathered = []
    for from_disk in (False, True):
        stream = Reshuffling(200, seed=5)
        if from_disk:
            args = (TensorDataset(x, y), torch.device("cpu"), Jitter(2), torch.Generator(), stream, PhaseTimer(False))
            examples = LoadedExamples(*args, workers=1)
        else:
            examples = Examples(x, y, torch.device("cpu"), Jitter(2), torch.Generator(), stream)
        batches = [examples.gather(examples.take(10))[0]]  # from disk: the next two loading ahead
        time.sleep(0.5)  # ... loaded and augmented by now
        batches.append(examples.gather(torch.tensor([7, 3, 9]))[0])  # not foreseen: the two are dropped
        batches += [examples.gather(examples.take(10))[0] for _ in range(3)]
        gathered.append(batches)
        if from_disk:
            assert examples.requests_foreseen == 2 and examples.requests_served == 5
    for memory, disk in zip(*gathered, strict=True):
        assert torch.equal(memory, disk)
