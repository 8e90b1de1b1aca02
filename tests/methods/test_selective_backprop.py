"""selective_backprop: selection by the loss's percentile among recent losses, unweighted."""

import pytest
import torch

from isample.methods import SelectiveBackpropOptions
from isample.methods.selective_backprop import loss_percentiles, selection_probabilities
from isample.sampler import Sampler


def test_percentile_and_probability_functions():
    history = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert loss_percentiles(torch.tensor([0.5, 2.0, 3.5, 9.0]), history).tolist() == [0, 0.5, 0.75, 1]
    probabilities = selection_probabilities(torch.tensor([0.0, 0.5, 1.0]), beta=2, sampling_min=0.1)
    assert probabilities.tolist() == pytest.approx([0.1, 0.25, 1.0])
    assert selection_probabilities(torch.tensor([0.2]), beta=0, sampling_min=0.1).item() == 1.0


def known_losses_sampler(n=1000, b=40, **options):
    """A model whose logits are its inputs (identity, frozen): each example's loss is set by its data."""
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    margin = torch.linspace(-4, 4, n)  # example i's loss grows with -margin: ranks are known
    x = torch.stack([margin, torch.zeros(n)], 1)
    y = torch.zeros(n, dtype=torch.int64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return Sampler(
        "selective_backprop",
        model,
        optimizer,
        x,
        y,
        b,
        options=SelectiveBackpropOptions(**options),
        generator=torch.Generator().manual_seed(0),
    )


def test_selection_frequency_follows_the_loss_percentile_to_the_power_beta():
    sampler = known_losses_sampler(beta=2.0, sampling_min=0.1, history=1000)
    method = sampler.method
    for _ in range(30):  # fill the history
        method.select()
    counts = torch.zeros(1000)
    seen_before = method.candidates_seen
    for _ in range(1500):
        selection = method.select()
        assert selection.weights is None and len(selection.indices) == 40  # unweighted, b at a time
        counts += torch.bincount(selection.indices, minlength=1000)
    candidates_per_example = (method.candidates_seen - seen_before) / 1000
    # Example i has loss rank 1000 - i: percentile F = (1000 - i) / 1000.
    percentile = (1000 - torch.arange(1000)).float() / 1000
    expected = selection_probabilities(percentile, 2.0, 0.1)
    for decile in range(10):
        band = slice(100 * decile, 100 * (decile + 1))
        measured = counts[band].sum() / (candidates_per_example * 100)
        assert measured.item() == pytest.approx(expected[band].mean().item(), rel=0.1, abs=0.01)


def test_selected_examples_beyond_b_wait_for_the_next_iteration():
    sampler = known_losses_sampler(beta=0.0)  # beta 0: every candidate selected
    method = sampler.method
    first = method.select()
    assert method.candidates_seen == 40 and len(method.waiting) == 0
    method.waiting = torch.arange(50)  # 50 selected: 40 trained now, 10 wait
    second = method.select()
    assert second.indices.tolist() == list(range(40)) and method.waiting.tolist() == list(range(40, 50))
    assert method.candidates_seen == 40  # no new candidates were needed
    assert len(first.indices) == 40


def test_candidate_forward_is_timed_as_its_own_cost():
    sampler = known_losses_sampler(beta=1.0)
    it = sampler.step()
    assert it.phases["presample_forward"] > 0 and it.used_importance
