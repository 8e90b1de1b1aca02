"""The family of selection methods: adding one takes a class, a registration and its params section."""

from dataclasses import dataclass

import pytest
import torch

from isample.experiment.config import ConfigError
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run
from isample.methods import METHODS, Selection, SelectionMethod, register
from isample.methods.catalog import check_options, is_number
from tests.common import make_params


@dataclass(frozen=True)
class LargestLossOptions:
    explore: float = 0.5  # share of each batch drawn uniformly, so every example gets a loss

    def __post_init__(self):
        check_options(self, {"explore": (lambda e: is_number(e) and 0 < e <= 1, "must be in (0, 1]")})


class LargestLoss(SelectionMethod):
    """A method the library does not know: trains on the examples with the largest last-seen loss.

    It keeps a per-example loss table fed for free by the training forward (observe), and runs no
    forward of its own."""

    name = "largest_loss_test"
    Options = LargestLossOptions

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.losses = torch.full((len(context.examples),), float("inf"))
        self.observed = 0

    def select(self) -> Selection:
        examples, b = self.context.examples, self.context.batch_size
        with self.context.timer.phase("draw_batch"):
            explore = max(1, round(self.options.explore * b))
            uniform = examples.take(explore)
            ranked = torch.argsort(self.losses, descending=True)
            largest = ranked[~torch.isin(ranked, uniform)][: b - explore]
            indices = torch.cat([uniform, largest])
            x, y = examples.gather(indices)
        return Selection(indices, None, x, y)

    def observe(self, selection: Selection, result) -> None:
        self.losses[selection.indices] = result.losses.cpu()
        self.observed += len(selection.indices)


@pytest.fixture
def largest_loss():
    register(LargestLoss)
    yield LargestLoss
    METHODS.pop(LargestLoss.name)


def test_a_registered_method_trains_through_the_stages_training_run(largest_loss, tiny_data, monkeypatch):
    built = []
    real_init = LargestLoss.__init__

    def spy(self, context, options=None):
        real_init(self, context, options)
        built.append(self)

    monkeypatch.setattr(LargestLoss, "__init__", spy)
    params = make_params(
        {
            "batch_size": 32,
            "data": {"train_subset": 0, "test_subset": 0},
            "train": {"budget": "1s", "device": "cpu", "eval_batch_size": 200},
            "methods": {"largest_loss_test": {"explore": 0.25}},
        }
    )
    spec = run_spec(params, "largest_loss_test", "1s", 0)
    record = train_run(spec, tiny_data, progress=False)
    method = built[0]
    assert method.options == LargestLossOptions(explore=0.25)  # its params section reached it
    assert record.epochs["iterations"].sum() >= 3
    assert method.observed == 32 * record.epochs["iterations"].sum()  # fed by every training forward
    assert torch.isfinite(method.losses).sum() > 32  # the table holds losses of trained examples
    assert record.status == "completed" and (record.epochs["scored_share"] == 0).all()
    assert spec.record_name == "cifar10.largest_loss_test.1s.0.xlsx"
    info = record.params
    assert info["method"] == "largest_loss_test" and info["methods.largest_loss_test.explore"] == "0.25"
    assert "presample" not in info  # another method's parameters are not this run's


def run_key(params, data, method, seed):
    return run_spec(params, method, params.train.budget_list[0], seed).key(data.content_hash)


def test_a_method_reruns_only_when_its_own_params_change(largest_loss, tiny_data):
    base = {"methods": {"largest_loss_test": {"explore": 0.25}}}
    key = run_key(make_params(base), tiny_data, "largest_loss_test", 0)
    assert run_key(make_params({**base, "presample": 7}), tiny_data, "largest_loss_test", 0) == key
    assert (
        run_key(make_params({"methods": {"largest_loss_test": {"explore": 0.5}}}), tiny_data, "largest_loss_test", 0)
        != key
    )
    uniform = run_key(make_params(base), tiny_data, "uniform", 0)
    assert run_key(make_params({**base, "presample": 7}), tiny_data, "uniform", 0) == uniform
    upper_bound = run_key(make_params(base), tiny_data, "upper_bound", 0)
    assert run_key(make_params({**base, "presample": 7}), tiny_data, "upper_bound", 0) != upper_bound


def test_a_registered_methods_bad_params_are_one_line_naming_the_key(largest_loss):
    with pytest.raises(ConfigError, match=r"^params.yaml: methods.largest_loss_test.explore = 0: must be in \(0, 1\]$"):
        make_params({"methods": {"largest_loss_test": {"explore": 0}}})
    with pytest.raises(ConfigError, match=r"^params.yaml: methods.largest_loss_test.speed: unknown parameter$"):
        make_params({"methods": {"largest_loss_test": {"explore": 0.25, "speed": 2}}})
    with pytest.raises(ConfigError, match=r"^params.yaml: methods.largest_loss_test.explore: missing$"):
        make_params({"methods": {"largest_loss_test": {}}})


def test_names_are_taken_once():
    class Impostor(SelectionMethod):
        name = "uniform"

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert METHODS["uniform"].__name__ == "Uniform"
