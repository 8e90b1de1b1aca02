import itertools

import pytest
import torch

from isample.seeds import PURPOSES, derive_seed
from isample.selector import BatchSelector
from isample.trainer import Trainer
from tests.common import toy_problem


def test_every_stream_of_a_run_and_of_its_neighbours_has_its_own_seed():
    names = list(itertools.product(range(4), PURPOSES, range(3), range(3)))  # seed, purpose, rank, pass
    seeds = {derive_seed(seed, purpose, rank=rank, pass_index=index) for seed, purpose, rank, index in names}
    assert len(seeds) == len(names)
    assert all(0 <= seed < 2**63 for seed in seeds)
    assert derive_seed(5, "order", pass_index=2) == derive_seed(5, "order", pass_index=2)  # a function of its name


def test_streams_of_distinct_purposes_draw_unrelated_numbers():
    # The defect this replaces: one seed for two uses, so both drew the same numbers.
    first = [torch.Generator().manual_seed(derive_seed(0, purpose)) for purpose in PURPOSES]
    draws = torch.stack([torch.rand(20_000, generator=generator) for generator in first])
    correlation = torch.corrcoef(draws)
    off_diagonal = correlation[~torch.eye(len(PURPOSES), dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.04  # about 5 standard deviations of 1 / sqrt(20,000)


def test_an_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="unknown seed purpose 'weights'"):
        derive_seed(0, "weights")


def test_trainer_and_batch_selector_build_the_same_streams_from_one_seed():
    model, optimizer, x, y = toy_problem()
    trainer = Trainer("uniform", model, optimizer, x, y, 16, seed=11)
    selector = BatchSelector("uniform", len(x), 16, seed=11)
    batches = list(iter(selector))[:5]
    assert [trainer.step().indices.tolist() for _ in range(5)] == batches
    assert torch.equal(trainer.context.generator.get_state(), selector.context.generator.get_state())
    # The method's own draws are not the first pass's order (they once shared seed * 1_000_003).
    order = torch.Generator().manual_seed(derive_seed(11, "order"))
    assert not torch.equal(order.get_state(), trainer.context.generator.get_state())
