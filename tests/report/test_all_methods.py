"""All methods at equal time: paired differences, their intervals, time to accuracy, cost, and the verdicts."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isample.report.all_methods import compare_methods
from isample.report.common import confidence_interval, seeds_to_resolve, smoothed_accuracy, time_to_reach
from isample.report.records import Run
from tests.common.records import epochs, report, timing_tables


def curve(method, seed, accuracy_at, n=20, seconds=100.0):
    frame = epochs(0.5, n=n)
    frame["train_seconds"] = np.linspace(seconds / n, seconds, n)
    frame["test_accuracy"] = [accuracy_at(t) for t in frame["train_seconds"]]
    return Run(method, seed, frame, {"method": method, "budget_seconds": str(seconds)}, f"results/{method}/{seed}.xlsx")


def rising(speed=1.0, offset=0.0):
    """Accuracy rising to a plateau; speed 2 gets everywhere in half the time."""
    return lambda t: 0.2 + 0.4 * (1 - math.exp(-speed * t / 25)) + offset


def test_one_lucky_epoch_does_not_count_as_reaching_the_target():
    frame = epochs(0.5, n=6)
    frame["test_accuracy"] = [0.2, 0.3, 0.9, 0.3, 0.5, 0.6]
    assert smoothed_accuracy(frame).round(3).tolist() == [0.2, 0.25, 0.467, 0.5, 0.567, 0.467]
    assert time_to_reach(frame, 0.55) == frame["train_seconds"].iloc[4]  # not at the 0.9 epoch
    assert math.isnan(time_to_reach(frame, 0.7))


def test_paired_differences_intervals_time_ratios_and_verdicts():
    seeds = range(3)
    runs = {
        "uniform": [curve("uniform", s, rising(offset=0.002 * s)) for s in seeds],
        "reuse": [curve("reuse", s, rising(speed=2.0, offset=0.03 + 0.002 * s)) for s in seeds],
        "infobatch": [curve("infobatch", s, rising(offset=[0.01, -0.01, 0.0][s] + 0.002 * s)) for s in seeds],
    }
    timing = timing_tables()
    timing["per_ratio"] = pd.concat([timing["per_ratio"], pd.DataFrame({"run": ["reuse"], "a": [0.012]})])
    facts = compare_methods(runs, timing["per_ratio"])
    table = facts.tables["methods"]
    assert table.loc["reuse", "difference"] == pytest.approx(0.03 + 0.4 * (math.exp(-4) - math.exp(-8)), abs=1e-6)
    assert table.loc["reuse", "ci_low"] > 0 and table.loc["reuse", "a"] == 0.012
    assert table.loc["infobatch", "ci_low"] < 0 < table.loc["infobatch", "ci_high"]
    assert math.isnan(table.loc["infobatch", "a"])  # not in the timing record
    # Twice as fast, and higher: the 90% target reached in about half of uniform's time (epoch granularity).
    assert 0.4 < table.loc["reuse", "time_0.90"] < 0.65
    assert facts.numbers["ranking"] == ["reuse", "infobatch"]
    assert facts.conclusions["method_reuse"][0] == "method_better"
    assert facts.conclusions["method_infobatch"][0] == "method_within_noise"
    assert facts.conclusions["overall"] == ("methods_best", {"method": "reuse"})
    markdown, metrics = report(
        [], runs["uniform"], timing, "en", {}, peer_runs={k: v for k, v in runs.items() if k != "uniform"}
    )
    section = markdown.split("## 4.")[1].split("## 5.")[0]
    assert "score reuse ends above uniform" in section and "InfoBatch differs from uniform" in section
    assert metrics["methods"]["reuse"]["a"] == 0.012 and metrics["methods"]["infobatch"]["a"] is None


def test_a_method_that_never_gets_there_is_not_reached_and_one_seed_gives_no_direction():
    runs = {
        "uniform": [curve("uniform", 0, rising())],
        "selective_backprop": [curve("selective_backprop", 0, rising(offset=-0.04))],
    }
    facts = compare_methods(runs, None)
    row = facts.tables["methods"].loc["selective_backprop"]
    assert math.isnan(row["time_1.00"]) and math.isnan(row["time_0.95"]) and not math.isnan(row["time_0.90"])
    assert facts.conclusions["method_selective_backprop"][0] == "method_one_seed"
    assert facts.conclusions["overall"] == ("methods_too_few_seeds", {})
    markdown, _ = report(
        [], runs["uniform"], None, "en", {}, peer_runs={"selective_backprop": runs["selective_backprop"]}
    )
    assert "not reached" in markdown.split("## 4.")[1]


def test_worse_beyond_noise_and_nothing_better():
    runs = {
        "uniform": [curve("uniform", s, rising(offset=0.002 * s)) for s in range(3)],
        "selective_backprop": [curve("selective_backprop", s, rising(offset=-0.05 + 0.002 * s)) for s in range(3)],
    }
    facts = compare_methods(runs, None)
    assert facts.conclusions["method_selective_backprop"][0] == "method_worse"
    assert facts.conclusions["overall"] == ("methods_none_better", {})


def test_the_resolution_is_the_interval_half_width_and_seeds_to_resolve_one_point_follow():
    offsets = [0.02, -0.01, 0.005]  # the paired differences: spread 1.53 points
    runs = {
        "uniform": [curve("uniform", s, rising()) for s in range(3)],
        "reuse": [curve("reuse", s, rising(offset=offsets[s])) for s in range(3)],
    }
    row = compare_methods(runs, None).tables["methods"].loc["reuse"]
    assert row["resolution"] == pytest.approx((row["ci_high"] - row["ci_low"]) / 2)
    spread = float(np.std(offsets, ddof=1))
    seeds = int(row["seeds_for_1_point"])
    half_width = lambda n: stats.t.ppf(0.975, n - 1) * spread / math.sqrt(n)  # noqa: E731
    assert half_width(seeds) <= 0.01 < half_width(seeds - 1)
    markdown, _ = report([], runs["uniform"], None, "en", {}, peer_runs={"reuse": runs["reuse"]})
    section = markdown.split("## 4.")[1]
    listed = ",".join(str(s) for s in range(seeds))
    assert f"+-{100 * row['resolution']:.2f} points cannot be told from zero; {seeds} seeds" in section
    assert f"dvc exp run --queue -S 'train.seeds=[{listed}]' && dvc queue start" in section


def test_the_seeds_to_resolve_a_point_give_such_intervals_in_simulation():
    """Monte Carlo: with seeds_to_resolve(sigma) seeds of differences of spread sigma, the interval's
    half-width is at most 1 point about half the time or more (the sample spread varies around sigma)."""
    sigma = 0.02
    n = int(seeds_to_resolve(sigma))
    rng = np.random.default_rng(0)
    halves = [(lambda d: (d[1] - d[0]) / 2)(confidence_interval(list(rng.normal(0.0, sigma, n)))) for _ in range(2000)]
    assert 0.45 < float(np.mean(np.array(halves) <= 0.01)) < 0.75
    assert seeds_to_resolve(math.nan) != seeds_to_resolve(math.nan)  # nan: no spread, no count
    assert seeds_to_resolve(1.0) == math.inf


def test_one_seed_states_no_resolution_and_says_how_to_get_one():
    runs = {"uniform": [curve("uniform", 0, rising())], "reuse": [curve("reuse", 0, rising(offset=0.01))]}
    markdown, _ = report([], runs["uniform"], None, "en", {}, peer_runs={"reuse": runs["reuse"]})
    assert "score reuse: 1 paired seed(s) have no spread, so no resolution can be stated" in markdown
    assert "dvc exp run --queue -S 'train.seeds=[0,1,2]' && dvc queue start" in markdown


def test_the_final_accuracy_is_the_whole_test_sets_when_the_record_has_it():
    run = curve("uniform", 0, rising())
    assert run.final_accuracy == run.final["test_accuracy"]  # an older record: the last epoch's
    run.params["final_test_accuracy"] = "0.61234"
    assert run.final_accuracy == 0.61234


def test_the_il_charged_arm_is_a_row_of_its_own_costing_as_its_method():
    """rho_loss's charged runs (budget less its IL models' time) sit beside its amortised ones, paired with
    uniform at the same budget, with rho_loss's a and the time they were charged in words."""
    seeds = range(3)

    def charged(seed):
        run = curve("rho_loss", seed, rising(offset=-0.05), seconds=60.0)
        run.params.update(budget_seconds="60.0", charged_seconds="40.0")
        return run

    runs = {
        "uniform": [curve("uniform", s, rising(offset=0.002 * s)) for s in seeds],
        "rho_loss": [curve("rho_loss", s, rising(offset=0.01 + 0.002 * s)) for s in seeds],
        "rho_loss_charged": [charged(s) for s in seeds],
    }
    assert {run.arm for run in runs["rho_loss_charged"]} == {"rho_loss_charged"}
    assert {run.budget_seconds for run in runs["rho_loss_charged"]} == {100.0}  # the budget, charge included
    timing = timing_tables()
    timing["per_ratio"] = pd.concat([timing["per_ratio"], pd.DataFrame({"run": ["rho_loss"], "a": [1.25]})])
    table = compare_methods(runs, timing["per_ratio"]).tables["methods"]
    assert table.loc["rho_loss_charged", "a"] == table.loc["rho_loss", "a"] == 1.25
    assert table.loc["rho_loss_charged", "difference"] < 0 < table.loc["rho_loss", "difference"]
    markdown, _ = report(
        [], runs["uniform"], timing, "en", {}, peer_runs={k: v for k, v in runs.items() if k != "uniform"}
    )
    section = markdown.split("## 4.")[1].split("## 5.")[0]
    assert "| RHO-LOSS (IL time charged) |" in section and "| RHO-LOSS (IL amortised) |" in section
    assert "RHO-LOSS (IL time charged): trained for the 100 s budget less the 40 s its IL models took" in section


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_report_states_the_il_cost_and_why_no_charged_row_exists(language):
    """IL models that took longer than the budget: no charged run was trained; the report says what they
    cost against the budget and why its charged row is missing."""
    seeds = range(2)
    runs = {
        "uniform": [curve("uniform", s, rising(offset=0.002 * s), seconds=20.0) for s in seeds],
        "rho_loss": [curve("rho_loss", s, rising(offset=-0.01), seconds=20.0) for s in seeds],
    }
    for run in runs["rho_loss"]:
        run.params["tables_seconds"] = "108.0"
    markdown, _ = report([], runs["uniform"], timing_tables(), language, {}, peer_runs={"rho_loss": runs["rho_loss"]})
    section = markdown.split("## 4.")[1].split("## 5.")[0]
    said = {
        "en": ("its IL models took 108 s", "the whole 20 s budget", "there is no charged row"),
        "zh": ("108 秒", "20 秒预算", "没有计入一行"),
    }
    assert all(words in section for words in said[language]), section
