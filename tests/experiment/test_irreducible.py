"""rho_loss's IL models (isample.experiment.irreducible), the tables file, and the two stages that make
and read it (tables@rho_loss, train_peer@rho_loss), run in-process on synthetic data."""

import json

import pytest
import torch

from isample.experiment.data import DataError
from isample.experiment.irreducible import HalfModel, IrreducibleSpec, halves, irreducible_losses, train_half
from isample.experiment.tables import load_tables, save_tables
from tests.common import make_params, stopped_at_budget, synthetic_data


def test_halves_split_every_class_in_two_and_cover_the_set():
    labels = torch.tensor([0] * 7 + [1] * 4 + [2] * 9)[torch.randperm(20, generator=torch.Generator().manual_seed(3))]
    first, second = halves(labels)
    assert sorted(first.tolist() + second.tolist()) == list(range(20))  # disjoint, covering
    for label, count in ((0, 7), (1, 4), (2, 9)):
        assert int((labels[first] == label).sum()) == count // 2
        assert int((labels[second] == label).sum()) == count - count // 2
    assert torch.equal(halves(labels)[0], first)  # one split per data set


def test_each_example_gets_the_loss_of_the_model_that_did_not_train_on_it():
    models = [
        HalfModel(torch.tensor([4, 0, 2]), torch.tensor([0.4, 0.0, 0.2]), 0.2, 0.5, 1, 1.0),
        HalfModel(torch.tensor([1, 3]), torch.tensor([1.1, 1.3]), 1.2, 0.5, 1, 1.0),
    ]
    assert irreducible_losses(models, 5).tolist() == pytest.approx([0.0, 1.1, 0.2, 1.3, 0.4])
    with pytest.raises(ValueError, match="do not cover"):
        irreducible_losses(models[:1], 5)


def il_spec(**changes) -> IrreducibleSpec:
    values = dict(
        model="resnet8",
        epochs=3,
        lr=1e-3,
        weight_decay=0.01,
        batch_size=32,
        augment=False,
        device="cpu",
        amp=False,
        eval_batch_size=200,
        workers=0,
    )
    return IrreducibleSpec(**{**values, **changes})


def test_an_il_model_learns_and_keeps_its_best_held_out_epoch():
    data = synthetic_data()
    first, second = halves(data.train_y)
    lines = []
    model = train_half(il_spec(), data, first, second, 0, progress=lines.append)
    assert torch.equal(model.scored, second) and model.losses.shape == (len(second),)
    assert bool(torch.isfinite(model.losses).all()) and model.seconds > 0
    assert model.holdout_accuracy > 0.5  # 4 classes: chance is 0.25
    held_out = [float(line.split("loss ")[1].split()[0]) for line in lines]
    assert len(held_out) == 3 and model.holdout_loss == pytest.approx(min(held_out), abs=1e-4)
    assert held_out.index(min(held_out)) + 1 == model.best_epoch
    again = train_half(il_spec(), data, first, second, 0, progress=lambda line: None)
    assert torch.equal(again.losses, model.losses)  # seeded: the same table from the same data


def test_the_key_changes_with_what_shapes_the_table_only():
    assert il_spec().key("a") == il_spec(workers=3, eval_batch_size=50).key("a")
    assert len({il_spec().key("a"), il_spec().key("b"), il_spec(epochs=4).key("a"), il_spec(lr=0.01).key("a")}) == 4


def test_the_tables_file_is_checked_against_the_prepared_data(tmp_path):
    data = synthetic_data()
    path = tmp_path / "tables.pt"
    with pytest.raises(DataError, match=r"missing: run `dvc repro tables@rho_loss` first"):
        load_tables(path, data, ("irreducible_loss",), "tables@rho_loss")
    table = torch.rand(data.train_size)
    save_tables(path, {"irreducible_loss": table}, data.content_hash, 12.5)
    tables, seconds = load_tables(path, data, ("irreducible_loss",), "tables@rho_loss")
    assert torch.equal(tables["irreducible_loss"], table) and seconds == 12.5
    other = synthetic_data(seed=1)  # another data set: its content hash differs
    with pytest.raises(DataError, match="computed on other data .*rerun `dvc repro tables@rho_loss`") as error:
        load_tables(path, other, ("irreducible_loss",), "tables@rho_loss")
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="holds no table other"):
        load_tables(path, data, ("other",), "tables@rho_loss")
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="damaged or foreign"):
        load_tables(path, data, ("irreducible_loss",), "tables@rho_loss")


@pytest.mark.parametrize(
    ("section", "fragment"),
    [({"epochs": 0}, "irreducible.epochs"), ({"lr": 0}, "irreducible.lr"), ({"model": "resnet7"}, "irreducible.model")],
)
def test_bad_il_parameters_are_one_line_each(section, fragment):
    from isample.experiment.config import ConfigError

    with pytest.raises(ConfigError) as error:
        make_params({"compare": {"methods": ["rho_loss"]}, "irreducible": section})
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_the_tables_stage_then_both_rho_loss_arms_train_from_it(tmp_path, monkeypatch, capsys):
    """tables@rho_loss writes the IL losses with their cost; train_peer@rho_loss trains the amortised run
    and the charged one (budget less that cost); other tables make the stage fail in one line."""
    import stages.tables
    import stages.train
    from isample.experiment.prepared import save_prepared
    from isample.report.records import read_run

    monkeypatch.chdir(tmp_path)
    data = synthetic_data()
    (tmp_path / "data/prepared").mkdir(parents=True)
    save_prepared(data, tmp_path / "data/prepared/cifar10.pt")
    params = make_params(
        {
            "batch_size": 16,
            "model": {"name": "resnet8"},
            "data": {"augment": False, "train_subset": 0, "test_subset": 0},
            "train": {"budgets": ["3s"], "eval_batch_size": 200, "device": "cpu", "seeds": [0]},
            "compare": {"methods": ["reuse", "rho_loss"]},
            "irreducible": {"epochs": 1},
            "methods": {"rho_loss": {"selection": 0.25}},
        }
    )
    stages.tables.main(params, "reuse")
    assert json.loads((tmp_path / "results/tables/reuse/summary.json").read_text())["tables"] == []
    stages.tables.main(params, "rho_loss")
    summary = json.loads((tmp_path / "results/tables/rho_loss/summary.json").read_text())
    assert (
        summary["seconds"] > 0 and len(summary["holdout_accuracy"]) == 2 and summary["examples_per_model"] == [160, 160]
    )
    tables, seconds = load_tables(tmp_path / "results/tables/rho_loss/tables.pt", data, ("irreducible_loss",), "")
    assert seconds == pytest.approx(summary["seconds"]) and bool(torch.isfinite(tables["irreducible_loss"]).all())
    save_tables(tmp_path / "results/tables/rho_loss/tables.pt", tables, data.content_hash, 1.0)  # a cost of 1 s

    stages.train.main(params, "rho_loss")
    runs = {run.arm: run for run in map(read_run, sorted((tmp_path / "results/rho_loss").glob("*.xlsx")))}
    assert set(runs) == {"rho_loss", "rho_loss_charged"}
    assert runs["rho_loss"].budget_seconds == runs["rho_loss_charged"].budget_seconds == 3.0  # paired with uniform's
    assert float(runs["rho_loss_charged"].params["budget_seconds"]) == 2.0  # what was left to train
    assert runs["rho_loss"].tables_seconds == runs["rho_loss_charged"].tables_seconds == 1.0  # the report states it
    assert stopped_at_budget(runs["rho_loss_charged"].epochs, 2.0)

    save_tables(tmp_path / "results/tables/rho_loss/tables.pt", tables, "another data set", 1.0)
    with pytest.raises(DataError, match="computed on other data"):
        stages.train.main(params, "rho_loss")
