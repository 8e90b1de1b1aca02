"""IS forced on beside the rule's run (isample/report/forced.py): what IS itself did, and what the rule's
choice cost or gained, drawn only as far as the seeds allow, in both languages."""

import pytest

from isample.report import figures
from isample.report.forced import compare_forced
from isample.report.records import FORCED_ARM as ARM
from tests.common.records import epochs, forced_runs, pairs, report, run

RULE_OFF = {"is_share_by_lr": (0.0, 0.0, 0.0)}


@pytest.mark.parametrize(
    "forced, rule, choice",
    [
        ([0.64, 0.65, 0.66], [0.60, 0.60, 0.61], "choice_forced_higher"),
        ([0.56, 0.55, 0.57], [0.60, 0.60, 0.61], "choice_forced_lower"),
        ([0.64, 0.56, 0.60], [0.60, 0.60, 0.61], "choice_within_noise"),
        ([0.64], [0.60], None),  # one seed: no direction (section 1's one-seed sentence says why)
    ],
)
def test_the_rules_choice_is_judged_against_is_forced_on_paired_by_seed(forced, rule, choice):
    is_runs, uniform_runs = pairs(rule, [0.60] * len(rule), **RULE_OFF)
    facts = compare_forced(forced_runs(forced), is_runs, uniform_runs)
    assert facts.conclusions.get("choice", (None,))[0] == choice
    assert facts.numbers["choice_difference"] == pytest.approx(
        sum(f - r for f, r in zip(forced, rule, strict=True)) / len(rule)
    )
    assert facts.numbers["rule_share"] == 0.0 and facts.numbers["is_share"] == 1.0
    assert facts.conclusions["regime"][0] == "regime_on"  # forced on: IS against uniform, not two uniform runs


def test_the_default_runs_report_shows_is_itself_where_the_rule_kept_it_off():
    is_runs, uniform_runs = pairs([0.66, 0.67, 0.66], [0.60, 0.61, 0.60], **RULE_OFF)
    forced = forced_runs([0.70, 0.71, 0.72])
    english, metrics = report(is_runs, uniform_runs, None, "en", {}, {ARM: forced})
    assert "IS never switched on" in english  # the rule's run: no claim about IS
    part = english.split("### IS forced on at every iteration")[1].split("## 2.")[0]
    assert "IS forced on minus uniform, final test accuracy: +10.67 points over 3 seed(s)" in part
    assert "IS forced on minus the rule's run (IS on in 0.0% of its iterations): +4.67 points" in part
    assert "Importance sampling ends with higher test accuracy than uniform" in part
    assert "IS forced on ended higher than the rule's run" in part and "cost accuracy" in part
    assert "| IS forced on | 3 | 0.7100 |" in part
    assert metrics["forced"]["choice_seeds"] == 3 and metrics["forced"]["is_share"] == 1.0
    assert "IS forced on" in english.split("## 4.")[1]  # an arm of its own beside the other methods
    chinese, _ = report(is_runs, uniform_runs, None, "zh", {}, {ARM: forced})
    zh_part = chinese.split("### 每次迭代都强制启用重要性采样")[1].split("## 2.")[0]
    assert "强制启用的重要性采样减均匀：+10.67 个百分点" in zh_part and "高于按规则的运行" in zh_part


def test_without_the_arm_the_report_is_as_before_and_a_diverged_forced_run_is_named_as_such():
    is_runs, uniform_runs = pairs([0.62, 0.63], [0.60, 0.60])
    alone, metrics = report(is_runs, uniform_runs, None, "en", {})
    assert "### IS forced on at every iteration" not in alone and "forced" not in metrics
    forced = forced_runs([0.64, 0.64])
    forced[1] = run("upper_bound", 1, epochs(0.1), status="diverged at epoch 2, iteration 40, lr 1000", forced=True)
    english, metrics = report(is_runs, uniform_runs, None, "en", {}, {ARM: forced})
    part = english.split("### IS forced on at every iteration")[1].split("## 2.")[0]
    assert "IS forced on seed 1: diverged at epoch 2, iteration 40, lr 1000" in part
    assert "minus" not in part and "higher" not in part
    assert metrics["forced"]["diverged"] == ["IS forced on seed 1: diverged at epoch 2, iteration 40, lr 1000"]


def test_the_accuracy_figure_draws_the_forced_arm_in_its_own_colour_and_name():
    is_runs, uniform_runs = pairs([0.62, 0.61], [0.60, 0.59], **RULE_OFF)
    words = figures.labels("en")
    accuracy = figures.accuracy_and_loss(is_runs + forced_runs([0.65, 0.66]) + uniform_runs, words).axes[0]
    legend = {
        text.get_text(): handle.get_color()
        for text, handle in zip(accuracy.get_legend().get_texts(), accuracy.get_legend().legend_handles, strict=True)
        if hasattr(handle, "get_color")
    }
    assert {words["upper_bound_is_off"], words[ARM], words["uniform"]} <= set(legend)
    assert len({legend[words["upper_bound_is_off"]], legend[words[ARM]], legend[words["uniform"]]}) == 3
