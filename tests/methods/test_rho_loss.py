"""rho_loss: the authors' selection (top share by training minus irreducible loss), its IL table by
data-set index, and its misuse errors."""

import copy

import pytest
import torch

from isample.methods.catalog import RhoLossOptions
from isample.methods.rho_loss import candidate_count, reducible_top
from isample.scores import candidate_loss
from tests.common import toy_problem


def test_the_top_share_by_reducible_loss_with_ties_in_candidate_order():
    training = torch.tensor([2.0, 1.0, 3.0, 2.5, 1.5, 0.5, 2.0, 4.0])
    irreducible = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5, 0.0, 0.0, 3.0])
    # reducible:               1.0  1.0  1.0  2.0  0.0  0.5  2.0  1.0
    assert reducible_top(training, irreducible, 2).tolist() == [3, 6]  # the tie 2.0: candidate 3 first
    assert reducible_top(training, irreducible, 4).tolist() == [3, 6, 0, 1]  # four tie at 1.0: the first two
    assert reducible_top(training, irreducible, 8).tolist() == [3, 6, 0, 1, 2, 7, 5, 4]


def test_the_training_loss_alone_would_choose_otherwise():
    """The subtraction matters: the largest training losses are not the largest reducible ones."""
    training = torch.tensor([5.0, 4.0, 1.0, 0.9])
    irreducible = torch.tensor([4.9, 3.9, 0.0, 0.0])
    assert reducible_top(training, irreducible, 2).tolist() == [2, 3]
    assert reducible_top(training, torch.zeros(4), 2).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("batch_size", "selection", "candidates"),
    [(32, 0.1, 320), (128, 0.1, 1280), (30, 0.25, 120), (30, 0.7, 43), (8, 1.0, 8)],
)
def test_candidates_per_iteration(batch_size, selection, candidates):
    assert candidate_count(batch_size, selection) == candidates


def rho_trainer(n=600, batch_size=20, irreducible=None, options=None, seed=5):
    from isample.trainer import Trainer

    model, optimizer, x, y = toy_problem(n=n)
    if irreducible is None:
        irreducible = 0.5 * torch.rand(n, generator=torch.Generator().manual_seed(1))
    tables = {"irreducible_loss": irreducible}
    return (
        Trainer(
            "rho_loss", model, optimizer, x, y, batch_size, options=options, seed=seed, timing=False, tables=tables
        ),
        x,
        y,
    )


@pytest.mark.parametrize("score_mode", ["batch", "eval"])
def test_each_iteration_trains_the_top_b_of_its_candidates_as_the_authors_rule_picks(score_mode):
    """Replay the stream: the candidates are the next ceil(b / selection) of it, scored before the step
    by the model without gradients (batch: one forward over all, BatchNorm on their own statistics,
    as the authors' train-mode forward; eval: running statistics); the trained examples are exactly
    the rule's choice among them, and the scoring leaves the running statistics as they were."""
    from isample.methods.base import scoring_mode

    model, optimizer, x, y = toy_problem(n=600)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 64), torch.nn.BatchNorm1d(64), torch.nn.ReLU(), torch.nn.Linear(64, 5)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    irreducible = 0.5 * torch.rand(600, generator=torch.Generator().manual_seed(1))
    from isample.trainer import Trainer

    trainer = Trainer(
        "rho_loss",
        model,
        optimizer,
        x,
        y,
        20,
        options=RhoLossOptions(selection=0.25, score_mode=score_mode),
        seed=5,
        timing=False,
        tables={"irreducible_loss": irreducible},
    )
    trainer.start_epoch()
    for step in range(12):
        stream = copy.deepcopy(trainer.examples.stream)
        candidates = stream.take(80)
        with scoring_mode(model, "batch" if score_mode == "batch" else "eval"), torch.no_grad():
            losses = candidate_loss(model(x[candidates]), y[candidates])
        expected = candidates[reducible_top(losses, irreducible[candidates], 20)]
        if step == 5:
            running_mean = model[1].running_mean.clone()
            trainer.method.select()  # a selection alone moves no running statistic
            assert torch.equal(model[1].running_mean, running_mean)
            continue
        iteration = trainer.step()
        assert torch.equal(iteration.indices, expected)
        assert torch.equal(iteration.weights, torch.ones(20))  # unweighted, as the authors train
        assert iteration.by_score


def test_the_irreducible_losses_are_read_by_data_set_index():
    """IL loss -1000 x index: the reducible loss then orders candidates by index, so every iteration
    trains the b largest indices among its candidates whatever the model says."""
    n, b = 600, 20
    trainer, _, _ = rho_trainer(n=n, batch_size=b, irreducible=-1000.0 * torch.arange(n, dtype=torch.float32))
    trainer.start_epoch()
    for _ in range(6):
        stream = copy.deepcopy(trainer.examples.stream)
        candidates = stream.take(10 * b)
        assert torch.equal(trainer.step().indices, candidates.sort(descending=True).values[:b])


def test_the_irreducible_losses_go_with_the_checkpoint():
    trainer, _, _ = rho_trainer()
    trainer.start_epoch()
    trainer.step()
    state = trainer.state_dict()
    same, _, _ = rho_trainer(seed=9)
    same.load_state_dict(state)  # the same table: resumes
    assert torch.equal(same.method.irreducible, trainer.method.irreducible)
    other, _, _ = rho_trainer(irreducible=torch.zeros(600))
    with pytest.raises(ValueError, match="irreducible losses differ from the checkpoint's"):
        other.load_state_dict(state)


def test_an_epoch_is_one_pass_of_candidates_and_none_is_a_candidate_twice_in_an_iteration():
    trainer, _, _ = rho_trainer(n=700, batch_size=20)  # 200 candidates per iteration: 3 per pass, 100 left out
    assert trainer.start_epoch() == 3
    for _ in range(10):  # across passes too
        stream = copy.deepcopy(trainer.examples.stream)
        candidates = stream.take(200)
        assert len(set(candidates.tolist())) == 200
        assert set(trainer.step().indices.tolist()) <= set(candidates.tolist())


def test_misuse_is_one_clear_error():
    from isample.trainer import Trainer

    model, optimizer, x, y = toy_problem(n=100)
    with pytest.raises(ValueError, match="needs the irreducible loss of every training example"):
        Trainer("rho_loss", model, optimizer, x, y, 10, seed=0)
    with pytest.raises(ValueError, match=r"one value per example \(100\) expected"):
        Trainer("rho_loss", model, optimizer, x, y, 10, seed=0, tables={"irreducible_loss": torch.zeros(99)})
    with pytest.raises(ValueError, match="must all be finite"):
        Trainer(
            "rho_loss",
            model,
            optimizer,
            x,
            y,
            10,
            seed=0,
            tables={"irreducible_loss": torch.full((100,), float("nan"))},
        )
    with pytest.raises(ValueError, match="scores 200 candidates per iteration .* more than the 100 examples"):
        Trainer("rho_loss", model, optimizer, x, y, 20, seed=0, tables={"irreducible_loss": torch.zeros(100)})
    for bad in (0, 0.0, 1.5, -0.1, "a"):
        with pytest.raises(ValueError, match=r"selection = .*must be in \(0, 1\]"):
            RhoLossOptions(selection=bad)
