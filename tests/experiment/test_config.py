import pytest
import yaml

from isample.experiment.config import ConfigError, validate
from isample.experiment.train_config import parse_duration
from tests.common import REPO, raw_params


def test_repository_params_are_valid():
    params = validate(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert params.presample >= 1 and params.train.budget_list


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
        ({"presample": "often"}, ["presample = 'often'", "'auto'"]),
        ({"presample": "auto", "sampler": {"presample_max": 1.5}}, ["sampler.presample_max = 1.5", ">= 2"]),
        ({"presample": "auto", "sampler": {"tau_th": 1.5}}, ["sampler.tau_th = 1.5", "'auto' with presample: auto"]),
        (
            {"presample": "auto", "train": {"prices": {"presample_a": 0.1}}},
            ["train.prices.presample_a = 0.1", "from_prices with presample: auto"],
        ),
        (
            {"presample": "auto", "sampler": {"presample_max": 100}},
            ["sampler.presample_max * batch_size = 12800", "data.train_subset = 10000"],
        ),
        ({"batch_size": 0}, ["batch_size", "0"]),
        ({"train": {"budget": "soon"}}, ["train.budget", "'soon'", "90s"]),
        ({"train": {"budget": "0s"}}, ["train.budget", "> 0"]),
        ({"trian": {"budget": "1h"}}, ["trian", "unknown parameter"]),
        ({"data": {"name": "mnist"}}, ["data.name", "'mnist'", "cifar10", "cifar100"]),
        ({"model": {"name": "vgg"}}, ["model.name", "resnet8", "resnet18", "torchvision:<name>"]),
        ({"model": {"name": "torchvision:vgg99"}}, ["model.name", "'torchvision:vgg99'", "list_models"]),
        ({"model": {"name": "wrn26_2"}}, ["model.name", "'wrn26_2'", "6n + 4"]),
        ({"model": {"norm": "instance"}}, ["model.norm", "'instance'", "'batch', 'layer' or 'group'"]),
        ({"model": {"name": "torchvision:resnet18", "norm": "group"}}, ["model.norm = 'group'", "batch only"]),
        ({"sampler": {"tau_source": "eval"}}, ["sampler.tau_source", "'eval'", "'training' or 'scoring'"]),
        ({"sampler": {"draw": "systematic"}}, ["sampler.draw", "'systematic'", "without_replacement"]),
        ({"data": {"augment": "yes"}}, ["data.augment", "'yes'"]),
        ({"sampler": {"tau_th": "never"}}, ["sampler.tau_th", "auto"]),
        ({"timing": {"presamples": [2, 0.5]}}, ["timing.presamples", ">= 1"]),
        ({"train": {"lr_milestones": [0.75, 0.5]}}, ["train.lr_milestones", "increasing"]),
        ({"report": {"lang": "fr"}}, ["report.lang", "'fr'", "zh"]),
        ({"data": {"train_subset": 100}}, ["presample * batch_size", "data.train_subset"]),
        ({"sampler": {"score_mode": "train"}}, ["sampler.score_mode", "'train'", "eval", "batch"]),
        ({"sampler": {"smoothing": 1.0}}, ["sampler.smoothing", "1.0", "[0, 1)"]),
        ({"sampler": {"smoothing": -0.1}}, ["sampler.smoothing", "-0.1"]),
        ({"methods": {"fancy": {"x": 1}}}, ["methods.fancy", "unknown selection method", "upper_bound"]),
        ({"compare": {"methods": ["reuse", "fancy"]}}, ["compare.methods", "'fancy'", "selective_backprop"]),
        ({"compare": {"methods": ["uniform"]}}, ["compare.methods", "always runs"]),
        ({"methods": {"reuse": {"smoothing": 0}}}, ["methods.reuse.smoothing = 0", "(0, 1]"]),
        ({"methods": {"selective_backprop": {"beta": -1}}}, ["methods.selective_backprop.beta = -1", ">= 0"]),
        ({"methods": {"infobatch": {"prune_ratio": 1.0}}}, ["methods.infobatch.prune_ratio = 1.0", "[0, 0.9]"]),
        (
            {"methods": {"selective_backprop": {"sampling_min": 1.5}}},
            ["methods.selective_backprop.sampling_min = 1.5", "[0, 1]"],
        ),
        ({"methods": {"infobatch": {"ratio": 0.3}}}, ["methods.infobatch.ratio", "unknown parameter"]),
        ({"train": {"budgets": ["1m", "later"]}}, ["train.budgets", "'later'", "duration"]),
        ({"train": {"budgets": ["60s", "1m"]}}, ["train.budgets", "repeat"]),
        ({"train": {"budgets": ["1m"], "budget": "2m"}}, ["train:", "exactly one"]),
        ({"batch_size": 500, "presample": 1, "data": {"train_subset": 400}}, ["batch_size = 500", "train_subset"]),
        ({"train": {"clock": "cpu"}}, ["train.clock", "'cpu'", "'wall' or 'priced'"]),
        ({"train": {"prices": {"forward": 0}}}, ["train.prices.forward = 0", "greater than 0"]),
        ({"train": {"prices": {"score": -0.001}}}, ["train.prices.score = -0.001", "greater than 0"]),
        ({"train": {"prices": {"iteration": "1ms"}}}, ["train.prices.iteration = '1ms'", "number"]),
        ({"train": {"prices": {"presample_a": -0.1}}}, ["train.prices.presample_a", "-0.1", ">= 0"]),
        ({"train": {"prices": {"presample_a": "free"}}}, ["train.prices.presample_a", "'free'", "from_prices"]),
        ({"data": {"train_eval_subset": -1}}, ["data.train_eval_subset = -1", "greater than or equal to 0"]),
        ({"train": {"nodes": 2}}, ["train.nodes = 2", "needs train.rdzv_endpoint", "host:port"]),
        ({"train": {"nodes": 0}}, ["train.nodes = 0", "greater than or equal to 1"]),
        ({"train": {"rdzv_endpoint": "node0"}}, ["train.rdzv_endpoint", "'node0'", "not host:port"]),
        ({"train": {"rdzv_endpoint": "node0:http"}}, ["train.rdzv_endpoint", "'node0:http'", "not host:port"]),
        ({"train": {"rdzv_endpoint": ":29400"}}, ["train.rdzv_endpoint", "not host:port"]),
        ({"train": {"rdzv_endpoint": "node0:70000"}}, ["train.rdzv_endpoint", "not host:port"]),
        (
            {"batch_size": 36, "train": {"nodes": 4, "processes": 2, "rdzv_endpoint": "node0:29400"}},
            ["batch_size = 36", "train.nodes x train.processes = 4 x 2 = 8"],
        ),
    ],
)
def test_bad_values_give_one_line_naming_key_value_and_rule(raw, pieces):
    with pytest.raises(ConfigError) as caught:
        validate(raw_params(raw))
    message = str(caught.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, (piece, message)


def test_every_problem_is_listed_one_line_each():
    with pytest.raises(ConfigError) as caught:
        validate(raw_params({"presample": 0.5, "sampler": {"score_mode": "train", "smoothing": 2.0}}))
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("params.yaml: ") for line in lines)
    assert {"presample", "sampler.score_mode", "sampler.smoothing"} == {line.split()[1] for line in lines}


def test_defaults_live_in_params_yaml_only():
    """The schema has no defaults: a key missing from params.yaml is an error, not a silent value."""
    raw = raw_params()
    del raw["sampler"]["score_mode"]
    del raw["train"]["lr"]
    with pytest.raises(ConfigError) as caught:
        validate(raw)
    assert sorted(str(caught.value).splitlines()) == [
        "params.yaml: sampler.score_mode: missing",
        "params.yaml: train.lr: missing",
    ]


def test_the_score_names_are_the_score_functions():
    from isample.methods.catalog import SCORES
    from isample.phases import PHASES
    from isample.report.records import PHASES as RECORD_PHASES
    from isample.scores import SCORE_FUNCTIONS

    assert SCORES == tuple(SCORE_FUNCTIONS) and RECORD_PHASES == PHASES


def test_a_listed_method_needs_its_params_section():
    raw = raw_params({"compare": {"methods": ["reuse", "infobatch"]}})
    del raw["methods"]["infobatch"]
    with pytest.raises(
        ConfigError,
        match=r"^params.yaml: compare.methods lists 'infobatch' but params.yaml has no "
        r"methods.infobatch section$",
    ):
        validate(raw)


@pytest.mark.parametrize("price", ["forward", "backward", "iteration", "score", "presample_a"])
def test_a_missing_price_is_one_line_naming_its_key(price):
    raw = raw_params()
    del raw["train"]["prices"][price]
    with pytest.raises(ConfigError, match=rf"^params.yaml: train.prices.{price}: missing$"):
        validate(raw)
