"""selective_backprop: the authors' selection by the loss's percentile among recent losses, unweighted."""

import pytest
import torch

from isample.methods import SelectiveBackpropOptions
from isample.methods.selective_backprop import loss_percentiles, selection_probabilities
from isample.trainer import Trainer


def test_percentile_and_probability_functions():
    history = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # The authors' percentile_of_score: the share strictly below.
    assert loss_percentiles(torch.tensor([0.5, 2.0, 3.5, 9.0]), history).tolist() == [0, 0.25, 0.75, 1]
    probabilities = selection_probabilities(torch.tensor([0.0, 0.5, 1.0]), beta=2, sampling_min=0.1)
    assert probabilities.tolist() == pytest.approx([0.1, 0.25, 1.0])
    assert selection_probabilities(torch.tensor([0.2]), beta=0, sampling_min=0.1).item() == 1.0
    assert selection_probabilities(torch.tensor([0.0, 0.5]), beta=3, sampling_min=0.0).tolist() == [0.0, 0.125]


def known_losses_sampler(n=1000, b=40, transform=None, **options):
    """A model whose logits are its inputs (identity, frozen): each example's loss is set by its data."""
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    margin = torch.linspace(-4, 4, n)  # example i's loss grows with -margin: ranks are known
    x = torch.stack([margin, torch.zeros(n)], 1)
    y = torch.zeros(n, dtype=torch.int64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return Trainer(
        "selective_backprop",
        model,
        optimizer,
        x,
        y,
        b,
        options=SelectiveBackpropOptions(**options),
        transform=transform,
        generator=torch.Generator().manual_seed(0),
    )


def prime(sampler) -> torch.Tensor:
    """The priming pass: the first N // b batches, every example trained, none scored."""
    return torch.cat([sampler.step().indices for _ in range(sampler.start_epoch())])


def test_the_first_pass_trains_every_example_without_a_forward_of_its_own():
    sampler = known_losses_sampler()
    method = sampler.method
    first = []
    for _ in range(sampler.start_epoch()):
        it = sampler.step()
        assert not it.used_importance and it.phases["presample_forward"] == 0
        first.append(it.indices)
    assert sorted(torch.cat(first).tolist()) == list(range(1000)) and len(method.history) == 0
    assert sampler.step().used_importance  # selection starts with the second pass


def test_selection_rate_per_decile_follows_the_authors_rule_at_their_defaults():
    sampler = known_losses_sampler(history=1000)  # beta 3, sampling_min 0: the authors' defaults
    method = sampler.method
    assert (method.options.beta, method.options.sampling_min) == (3.0, 0.0)
    prime(sampler)
    for _ in range(10):  # fill the history
        method.select()
    counts = torch.zeros(1000)
    seen_before = method.candidates_seen
    for _ in range(800):
        selection = method.select()
        assert selection.weights is None and len(selection.indices) == 40  # unweighted, b at a time
        counts += torch.bincount(selection.indices, minlength=1000)
    candidates_per_example = (method.candidates_seen - seen_before) / 1000
    assert candidates_per_example > 100  # each example a candidate once per pass: many passes
    # Example i has the (i + 1)-th largest loss: a share (999 - i) / 1000 of the others lies below it.
    percentile = (999 - torch.arange(1000)).float() / 1000
    expected = selection_probabilities(percentile, 3.0, 0.0)
    for decile in range(10):
        band = slice(100 * decile, 100 * (decile + 1))
        measured = counts[band].sum() / (candidates_per_example * 100)
        assert measured.item() == pytest.approx(expected[band].mean().item(), rel=0.1, abs=0.005)
    assert counts[-1] == 0  # the smallest loss of the history is never selected at sampling_min 0


def test_candidates_come_from_shuffled_passes():
    sampler = known_losses_sampler(beta=0.0)  # every candidate selected: the candidates are the batches
    prime(sampler)
    second_pass = torch.cat([sampler.step().indices for _ in range(25)])
    assert sorted(second_pass.tolist()) == list(range(1000))


def test_the_trained_view_is_the_scored_view():
    """A transform that draws fresh noise on every call and records what it returned."""
    views = []
    noise = torch.Generator().manual_seed(4)

    def recording(x):
        view = x + torch.randn(x.shape, generator=noise)
        views.append(view)
        return view

    sampler = known_losses_sampler(transform=recording, beta=1.0, sampling_min=0.1)
    prime(sampler)
    calls_after_priming = len(views)
    for _ in range(20):
        selection = sampler.method.select()
        scored = torch.cat(views[calls_after_priming:])
        for row in selection.inputs:  # every trained example is one of the views that were scored
            assert (scored == row).all(1).any()
    candidate_batches = (sampler.method.candidates_seen - 1000) // 40
    assert len(views) - calls_after_priming == candidate_batches  # gathered once: never augmented again


def test_selected_examples_beyond_b_wait_for_the_next_iteration():
    sampler = known_losses_sampler(beta=0.0)
    prime(sampler)
    method = sampler.method
    method._queue_until(80)  # two candidate batches, all selected: 40 trained now, 40 wait
    waiting = method.waiting.clone()
    seen = method.candidates_seen
    second = method.select()
    assert torch.equal(second.indices, waiting[:40]) and torch.equal(method.waiting, waiting[40:])
    assert method.candidates_seen == seen  # no new candidates were needed
    assert len(method.waiting_inputs) == len(method.waiting) == 40


def test_candidate_forward_is_timed_as_its_own_cost():
    sampler = known_losses_sampler(beta=1.0)
    prime(sampler)
    it = sampler.step()
    assert it.phases["presample_forward"] > 0 and it.used_importance


@pytest.mark.parametrize("value, accepted", [(0.0, True), (1.0, True), (-0.1, False), (1.5, False)])
def test_sampling_min_in_zero_one_closed(value, accepted):
    if accepted:
        assert SelectiveBackpropOptions(sampling_min=value).sampling_min == value
    else:
        with pytest.raises(ValueError, match=rf"sampling_min = {value}: must be in \[0, 1\]"):
            SelectiveBackpropOptions(sampling_min=value)
