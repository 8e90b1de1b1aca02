"""The GPU recipe as the docs write it: every `python -m recipes ...` line of README.md and docs/ builds a
`dvc exp run` whose overrides are keys of params.yaml, validate, and, with a tiny subset, budget and model
appended, train their first iterations on the CPU (the timing experiment: measures its ratios)."""

import re
import shlex

import pytest
import yaml

import recipes
from recipes.__main__ import main
from tests.common import CIFAR10_CLASSES, REPO, make_archive

DOCUMENTED = sorted(
    {
        match.strip()
        for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
        for match in re.findall(r"python -m recipes (?!<)[^`\n|#]+", path.read_text())
    }
)
# What makes a documented experiment a CPU test of seconds: a few examples, a small model, one second.
TINY = {
    "data.train_subset": 0,
    "data.test_subset": 0,
    "data.train_eval_subset": 0,
    "model.name": "resnet8",
    "batch_size": 8,
    "train.budgets": ["1s"],
    "train.device": "cpu",
    "train.amp": False,
    "train.channels_last": False,
    "train.eval_batch_size": 64,
    "timing.warmup": 1,
    "timing.iterations": 2,
    "timing.forward_chunks": [0],
}


def dvc_overrides(line: list[str]) -> dict:
    """The `-S key=value` pairs of a dvc exp run command, parsed as DVC parses them (YAML values)."""
    pairs = [line[i + 1] for i, word in enumerate(line) if word == "-S"]
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def test_the_docs_name_every_experiment_of_the_recipe():
    named = {shlex.split(line)[3] for line in DOCUMENTED}
    assert named == set(recipes.load()["experiments"]), DOCUMENTED


@pytest.mark.parametrize("line", DOCUMENTED)
def test_a_documented_experiment_validates_and_trains_its_first_iterations(line, tmp_path, capsys):
    from isample.experiment.config import validate
    from isample.experiment.data import load_dataset
    from isample.experiment.runs import run_spec
    from isample.experiment.timing import measure_params
    from isample.experiment.train import train_run

    arguments = shlex.split(line)[3:]
    assert main([*arguments, "--print"]) == 0
    printed = shlex.split(capsys.readouterr().out)
    assert printed[:3] == ["dvc", "exp", "run"]
    values = dvc_overrides(printed)
    params = validate(recipes.apply(yaml.safe_load((REPO / "params.yaml").read_text()), values))  # as written
    assert params.train.amp and params.model.name in ("resnet18", "wrn28_2")  # the GPU's, before TINY
    name = params.data.name
    classes = CIFAR10_CLASSES if name == "cifar10" else [f"class{i:03d}" for i in range(100)]
    make_archive(tmp_path / f"{name}-tiny.tar.gz", classes, per_class=(80 // len(classes) or 2, 1))
    tiny = validate(recipes.apply(recipes.apply(yaml.safe_load((REPO / "params.yaml").read_text()), values), TINY))
    data = load_dataset(name, tmp_path)
    if printed[-1] == "timing":  # a stage named: only it runs
        per_ratio = measure_params(tiny, data, progress=False)
        assert len(per_ratio) > 0
        return
    run = train_run(run_spec(tiny, "upper_bound", "1s", tiny.train.seeds[0]), data, progress=False)
    assert run.status == "completed" and run.epochs["total_iterations"].iloc[-1] > 0


def test_seeds_peers_and_more_overrides_reach_the_command(capsys):
    main(["1", "--seeds", "0", "1", "2", "--peers", "-S", "data.download=true", "--print"])
    line = shlex.split(capsys.readouterr().out)
    values = dvc_overrides(line)
    assert values["train.seeds"] == [0, 1, 2] and values["compare.methods"] == []
    assert values["data.download"] is True and values["train.budgets"] == ["3h"]
    assert values["train.lr_milestones"] == [0.5, 0.75]


def test_an_unknown_key_is_an_error_naming_it():
    with pytest.raises(KeyError, match="train.budget_list: not a key"):
        recipes.apply(yaml.safe_load((REPO / "params.yaml").read_text()), {"train.budget_list": [1]})


def test_the_training_time_the_docs_state_is_the_budget_times_the_training_stages():
    """docs/experiments.md's time per seed: each run (IS under the rule and, with compare.forced_is, forced
    on; uniform; one per peer of params.yaml's compare.methods) trains for the budget, one after another;
    with --peers alone only IS and uniform."""
    page = (REPO / "docs/experiments.md").read_text()
    compare = yaml.safe_load((REPO / "params.yaml").read_text())["compare"]
    peers, notebook = len(compare["methods"]), 3 if compare["forced_is"] else 2
    rows = re.findall(r"`python -m recipes ([\w-]+)` \| (\d+) h[^|]*`--peers`: (\d+) h \|", page)
    assert {name for name, _, _ in rows} == {"1", "2", "3", "4", "5", "wrn"}, rows
    for name, every, alone in rows:
        (budget,) = recipes.overrides(name)["train.budgets"]
        hours = int(budget.removesuffix("h"))
        assert (int(every), int(alone)) == (hours * (notebook + peers), hours * notebook), name
