from pathlib import Path

import pytest
import yaml

from isample.config import ConfigError, parse_duration, validate

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_are_valid():
    params = validate(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert params.presample >= 1 and params.train.budget_seconds > 0


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("4m", 240), ("3h", 10800), ("1h30m", 5400), ("2.5m", 150), (45, 45)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "raw, pieces",
    [
        ({"presample": 0.5}, ["presample", "0.5", ">= 1"]),
        ({"presample": "7"}, ["presample", "'7'"]),
        ({"batch_size": 0}, ["batch_size", "0"]),
        ({"train": {"budget": "soon"}}, ["train.budget", "'soon'", "90s"]),
        ({"train": {"budget": "0s"}}, ["train.budget", "> 0"]),
        ({"trian": {"budget": "1h"}}, ["trian", "unknown parameter"]),
        ({"data": {"name": "mnist"}}, ["data.name", "'mnist'", "cifar10", "cifar100"]),
        ({"model": {"name": "vgg"}}, ["model.name", "resnet8", "resnet18"]),
        ({"data": {"augment": "yes"}}, ["data.augment", "'yes'"]),
        ({"sampler": {"tau_th": "never"}}, ["sampler.tau_th", "auto"]),
        ({"timing": {"presamples": [2, 0.5]}}, ["timing.presamples", ">= 1"]),
        ({"train": {"lr_milestones": [0.75, 0.5]}}, ["train.lr_milestones", "increasing"]),
        ({"report": {"lang": "fr"}}, ["report.lang", "'fr'", "zh"]),
        ({"data": {"train_subset": 100}}, ["presample * batch_size", "data.train_subset"]),
    ],
)
def test_bad_values_give_one_line_naming_key_value_and_rule(raw, pieces):
    with pytest.raises(ConfigError) as caught:
        validate(raw)
    message = str(caught.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, (piece, message)
