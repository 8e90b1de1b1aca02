"""Speed-up at equal accuracy: the budget a method needs to match uniform, on synthetic records."""

import math

import numpy as np
import pytest

from isample.report.records import Run
from isample.report.speedup import budget_needed, speedups
from tests.common.records import epochs, report


def test_interpolates_on_the_log_budget_axis():
    # 0.50 at 50 s, 0.60 at 200 s: 0.55 lies halfway in log(budget), at sqrt(50 * 200) = 100 s.
    assert budget_needed([50, 200], [0.50, 0.60], 0.55) == pytest.approx(100.0)
    assert budget_needed([200, 50, 100], [0.60, 0.50, 0.56], 0.58) == pytest.approx(100 * 2**0.5)
    assert budget_needed([50, 100], [0.50, 0.56], 0.40) == 50  # reached at once: the smallest budget
    assert math.isnan(budget_needed([50, 100], [0.50, 0.56], 0.57))  # never reached


def final_only(method, budget, seed, accuracy, status="completed"):
    frame = epochs(accuracy)
    frame["train_seconds"] *= budget / frame["train_seconds"].iloc[-1]
    params = {"budget_seconds": str(float(budget)), "status": status, "method": method}
    return Run(method, seed, frame, params, f"results/{method}/{budget}.{seed}.xlsx")


def sweep(method_accuracy, uniform_accuracy, budgets=(50, 100, 200), seeds=(0, 1, 2), noise=0.002):
    runs = []
    for seed in seeds:
        for budget in budgets:
            wobble = noise * (seed - 1)
            runs.append(final_only("uniform", budget, seed, uniform_accuracy(budget) + wobble))
            runs.append(final_only("reuse", budget, seed, method_accuracy(budget) + wobble))
    return runs


def log_curve(offset=0.0, scale=1.0):
    """Accuracy linear in log(budget): a method `scale` times as fast reaches uniform's accuracy at budget / scale."""
    return lambda budget: 0.3 + 0.05 * math.log(budget * scale) + offset


def test_a_method_twice_as_fast_has_speedup_two_and_saves_time():
    facts = speedups(sweep(log_curve(scale=2.0), log_curve()))
    table = facts.tables["speedup"]
    reached = table[table["budget"] >= 100]  # at uniform's 50 s the method was already there at its smallest budget
    assert np.allclose(reached["speedup"], 2.0, rtol=1e-6)
    assert (table.loc[table["budget"] == 50, "speedup"] == 1.0).all()  # a lower bound only
    assert facts.conclusions["speedup_reuse"][0] == "speedup_within_noise"  # the lower bound 1.0 is not above 1.1


def test_a_faster_method_over_a_wider_sweep_saves_time():
    facts = speedups(sweep(log_curve(scale=2.0), log_curve(), budgets=(25, 50, 100, 200)))
    table = facts.tables["speedup"]
    faster = table[table["budget"] >= 50]
    assert np.allclose(faster["speedup"], 2.0)
    assert facts.conclusions["speedup_reuse"][0] == "speedup_within_noise"  # still the 25 s lower bound
    only_reachable = speedups(
        [
            r
            for r in sweep(log_curve(scale=2.0), log_curve(), budgets=(25, 50, 100, 200))
            if not (r.method == "uniform" and r.budget_seconds == 25)
        ]
    )
    assert only_reachable.conclusions["speedup_reuse"] == (
        "speedup_saves_time",
        pytest.approx({"method": "reuse", "median": 2.0}),
    )


def test_a_method_that_never_reaches_uniform_costs_time():
    facts = speedups(sweep(log_curve(offset=-0.1), log_curve()))
    table = facts.tables["speedup"]
    assert (table["not_reached"] == 3).all() and table["speedup"].isna().all()
    assert facts.conclusions["speedup_reuse"][0] == "speedup_costs_time"
    runs = sweep(log_curve(offset=-0.1), log_curve())
    markdown, metrics = report(
        [],
        [r for r in runs if r.method == "uniform"],
        None,
        "en",
        {},
        peer_runs={"reuse": [r for r in runs if r.method == "reuse"]},
    )
    section = markdown.split("## 5.")[1]
    assert "not reached" in section and "reuse costs time" in section
    assert metrics["speedup"] == {"reuse": None}


def test_one_budget_draws_no_speedup_and_says_what_to_run():
    facts = speedups(sweep(log_curve(scale=2.0), log_curve(), budgets=(100,)))
    assert facts.conclusions == {"speedup": ("speedup_one_budget", {})} and "speedup" not in facts.tables
    runs = sweep(log_curve(scale=2.0), log_curve(), budgets=(100,))
    markdown, _ = report(
        [],
        [r for r in runs if r.method == "uniform"],
        None,
        "en",
        {},
        peer_runs={"reuse": [r for r in runs if r.method == "reuse"]},
    )
    assert "dvc exp run -S 'train.budgets=[50s,100s,200s]' -S 'train.seeds=[0,1]'" in markdown.split("## 5.")[1]


def test_diverged_runs_are_left_out_of_the_curves():
    runs = sweep(log_curve(scale=2.0), log_curve())
    runs.append(final_only("reuse", 400, 0, 0.99, status="diverged at epoch 2, iteration 9, lr 10"))
    assert 400 not in speedups(runs).numbers["budgets"]


def test_some_seeds_short_of_uniform_is_noise_not_a_cost():
    runs = sweep(log_curve(scale=2.0), log_curve())
    # Seed 2 of the method ends far lower at every budget: it never reaches uniform's accuracy there.
    runs = [
        final_only(r.method, r.budget_seconds, r.seed, 0.2) if (r.method, r.seed) == ("reuse", 2) else r for r in runs
    ]
    facts = speedups(runs)
    assert (facts.tables["speedup"]["not_reached"] == 1).all()
    assert facts.conclusions["speedup_reuse"][0] == "speedup_within_noise"


def test_budgets_past_uniforms_peak_are_shown_but_not_concluded_from():
    # Uniform over-fits: best at 50 s, worse at 100 and 200 s; the method is far slower up to the peak.
    peaked = lambda budget: {50: 0.55, 100: 0.53, 200: 0.52}[budget]  # noqa: E731
    slower = lambda budget: {50: 0.535, 100: 0.52, 200: 0.50}[budget]  # noqa: E731
    facts = speedups(sweep(slower, peaked))
    table = facts.tables["speedup"]
    assert facts.numbers["past_peak"] == [100.0, 200.0] and table["past_peak"].tolist() == [False, True, True]
    assert table.loc[table["budget"] == 100, "speedup"].iloc[0] > 1  # a "speed-up" where uniform got worse...
    assert facts.conclusions["speedup_reuse"][0] == "speedup_costs_time"  # ...that the verdict ignores
    assert facts.conclusions["past_peak"] == ("speedup_past_peak", {"budgets": "100, 200", "peak": 50.0})
    runs = sweep(slower, peaked)
    markdown, _ = report(
        [],
        [r for r in runs if r.method == "uniform"],
        None,
        "en",
        {},
        peer_runs={"reuse": [r for r in runs if r.method == "reuse"]},
    )
    assert "| 100 † |" in markdown and "highest at 50 s and lower at 100, 200 s" in markdown
