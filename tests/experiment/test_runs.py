"""What params.yaml specifies: one RunSpec per run, and what shapes one (isample/experiment/runs.py)."""

from isample.experiment.config import validate
from tests.common import raw_params


def test_one_budget_or_a_sweep_and_each_run_gets_one_budget():
    from isample.experiment.runs import run_specs

    single = validate(raw_params({"train": {"budget": "90s"}}))
    assert single.train.budget_list == ["90s"]
    sweep = validate(raw_params({"train": {"budgets": ["2m", "30s", "1m"], "seeds": [0, 1]}}))
    assert sweep.train.budget_list == ["30s", "1m", "2m"]  # shortest first
    specs = run_specs(sweep, "uniform")
    assert [(s.budget, s.budget_seconds, s.seed) for s in specs] == [
        ("30s", 30, 0),
        ("30s", 30, 1),
        ("1m", 60, 0),
        ("1m", 60, 1),
        ("2m", 120, 0),
        ("2m", 120, 1),
    ]
    assert specs[2].record_name == "cifar10.un.1m.0.xlsx" and specs[2].checkpoint_name == "uniform/1m.seed0.pt"
    # A run of a sweep is the run of that one budget: same key, so a sweep resumes single-budget runs.
    alone = run_specs(validate(raw_params({"train": {"budget": "1m", "seeds": [0, 1]}})), "uniform")[0]
    assert alone.key("data") == specs[2].key("data") and alone.key("data") != specs[0].key("data")


def test_what_shapes_a_run_is_its_stage_params_less_what_picks_runs():
    from isample.experiment.runs import TRAIN_OPERATIONAL, run_spec

    params = validate(raw_params({"compare": {"methods": ["reuse", "infobatch"]}}))
    shaping = dict(run_spec(params, "uniform", "200s", 0).shaping)
    assert {"batch_size", "train.lr", "model.name", "sampler.score", "sampler.tau_momentum"} <= set(shaping)
    assert not set(shaping) & set(TRAIN_OPERATIONAL)
    assert not any(
        key.startswith(("methods.", "compare.", "timing.", "report.")) or key == "presample" for key in shaping
    )
    key = run_spec(params, "uniform", "200s", 0).key("data")
    for change in (
        {"train": {"checkpoint_every": "5m"}},
        {"train": {"seeds": [0, 3]}},
        {"presample": 7},
        {"compare": {"methods": ["reuse"]}},
        {"methods": {"reuse": {"smoothing": 0.5}}},
    ):
        assert run_spec(validate(raw_params(change)), "uniform", "200s", 0).key("data") == key, change
    assert run_spec(validate(raw_params({"train": {"lr": 0.05}})), "uniform", "200s", 0).key("data") != key


def test_the_forced_arm_trains_is_at_every_iteration_beside_the_rule_without_moving_the_rules_run():
    from isample.experiment.runs import forced_specs, run_specs

    params = validate(raw_params({"train": {"seeds": [0, 1]}}))
    assert params.compare.forced_is  # params.yaml's default: the report shows IS itself
    rule, forced = run_specs(params, "upper_bound"), forced_specs(params, "upper_bound")
    assert [(s.budget, s.seed) for s in forced] == [(s.budget, s.seed) for s in rule]
    assert all(s.options.always_importance and s.forced for s in forced)
    assert not any(s.options.always_importance or s.forced for s in rule)
    assert (
        forced[0].record_name == "cifar10.is-forced.200s.0.xlsx"
        and forced[0].title == "upper_bound forced on 200s seed 0"
    )
    assert forced[0].checkpoint_name == "upper_bound/200s.seed0.forced.pt" != rule[0].checkpoint_name
    assert forced[0].key("data") != rule[0].key("data")  # never resumed from the rule's checkpoint
    assert forced_specs(params, "uniform") == [] and forced_specs(params, "reuse") == []
    # Turning the arm off or on picks runs only: the rule's run keeps its key (its checkpoint resumes).
    off = validate(raw_params({"train": {"seeds": [0, 1]}, "compare": {"forced_is": False}}))
    assert forced_specs(off, "upper_bound") == []
    assert run_specs(off, "upper_bound")[0].key("data") == rule[0].key("data")
