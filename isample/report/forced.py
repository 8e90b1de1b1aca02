"""Section 1's second part: IS forced on at every iteration (compare.forced_is) beside the rule's run and
uniform, paired by seed. Where the rule kept IS off, section 1 compares two uniform runs; this part shows
what importance sampling itself did in the same setting, and what the rule's choice cost or gained.
Its facts, its named rules and its words."""

import math

import pandas as pd

from isample.names import IMPORTANCE, UNIFORM
from isample.report.common import (
    MIN_SEEDS,
    Facts,
    Section,
    comparison_values,
    conclude,
    finite_or_none,
    method_name,
    number,
    paired,
    table,
)
from isample.report.equal_time import compare_runs
from isample.report.records import FORCED_ARM, Run


def choice_rule(n: int, low: float, high: float) -> tuple[str, dict] | None:
    """IS forced on against the rule's run: a direction needs MIN_SEEDS paired seeds and a 95% interval
    that excludes zero (one seed: section 1's one-seed sentence already says no direction is drawn)."""
    if n < MIN_SEEDS:
        return None
    if low > 0:
        return "choice_forced_higher", {}
    if high < 0:
        return "choice_forced_lower", {}
    return "choice_within_noise", {}


def compare_forced(forced_runs: list[Run], is_runs: list[Run], uniform_runs: list[Run]) -> Facts:
    """IS forced on against uniform (section 1's comparison and rules), then against the rule's run."""
    facts = compare_runs(forced_runs, uniform_runs)
    if facts.missing or "diverged" in facts.numbers or "accuracy_difference" not in facts.numbers:
        return facts
    choice = paired(forced_runs, [run for run in is_runs if not run.diverged])
    low, high = choice.interval
    facts.numbers.update(
        choice_seeds=choice.n,
        choice_difference=choice.difference,
        choice_ci_low=low,
        choice_ci_high=high,
        rule_share=float(pd.Series([run.scored_share for run in is_runs]).mean()) if is_runs else math.nan,
    )
    if rule := choice_rule(choice.n, low, high):
        facts.conclusions["choice"] = rule
    return facts


def _rows(words: dict, arms: dict[str, list[Run]]) -> list[list]:
    rows = []
    for arm, runs in arms.items():
        healthy = [run for run in runs if not run.diverged]
        if not healthy:
            continue
        accuracy = pd.Series([run.final_accuracy for run in healthy])
        rows.append(
            [
                words["forced_rule_row"] if arm == IMPORTANCE else method_name(words, arm),
                len(healthy),
                number(accuracy.mean()),
                number(pd.Series([run.final_loss for run in healthy]).mean()),
                f"{pd.Series([run.scored_share for run in healthy]).mean():.2f}",
            ]
        )
    return rows


def section(words: dict, forced_runs: list[Run], is_runs: list[Run], uniform_runs: list[Run]) -> Section:
    """Nothing when the records hold no forced run (compare.forced_is: false)."""
    if not forced_runs:
        return Section([])
    facts = compare_forced(forced_runs, is_runs, uniform_runs)
    arms = {IMPORTANCE: is_runs, FORCED_ARM: forced_runs, UNIFORM: uniform_runs}
    out = [words["forced_heading"], "", words["forced_intro"], ""]
    out += [table(words["forced_cols"], _rows(words, arms)), ""]
    numbers = facts.numbers
    if "diverged" in numbers:
        named = {IMPORTANCE: FORCED_ARM, UNIFORM: UNIFORM}  # compare_runs names a forced run by its method
        diverged = [f"{method_name(words, named[m])} seed {seed}: {status}" for m, seed, status in numbers["diverged"]]
        out += conclude(words, facts, {"diverged_text": "; ".join(diverged)}) + [""]
        return Section(out, {"forced": {"diverged": diverged}}, facts.missing)
    if "accuracy_difference" not in numbers:
        return Section(out + [words["forced_unpaired"], ""], {}, facts.missing)
    values = {
        **comparison_values(numbers),
        "cdiff": 100 * numbers["choice_difference"],
        "clow": 100 * numbers["choice_ci_low"],
        "chigh": 100 * numbers["choice_ci_high"],
        "cn": numbers["choice_seeds"],
        "rule_share": numbers["rule_share"],
    }
    interval = words["ci"].format(**values) if values["n"] > 1 else ""
    out += [words["forced_difference"].format(ci=interval, **values)]
    if values["cn"]:
        choice_interval = words["ci"].format(low=values["clow"], high=values["chigh"]) if values["cn"] > 1 else ""
        out += ["", words["choice_difference"].format(cci=choice_interval, **values)]
    out += ["", words["forced_conclusions"], ""] + conclude(words, facts, values) + [""]
    return Section(out, {"forced": finite_or_none(numbers)}, facts.missing)


TEXT = {
    "en": {
        "forced_heading": "### IS forced on at every iteration (`compare.forced_is`)",
        "forced_intro": "Beside the rule's run, `train_is` trained IS forced on at every iteration, from the same initial "
        "weights for the same budget: importance sampling itself against uniform SGD, whether or not the rule "
        "would switch it on, and what the rule's choice cost or gained.",
        "forced_rule_row": "IS under the rule",
        "forced_cols": ["run", "seeds", "final test accuracy (whole test set)", "final test loss", "IS share"],
        "forced_difference": "IS forced on minus uniform, final test accuracy: {diff:+.2f} points over {n} seed(s){ci}.",
        "choice_difference": "IS forced on minus the rule's run (IS on in {rule_share:.1%} of its iterations): "
        "{cdiff:+.2f} points over {cn} seed(s){cci}.",
        "forced_unpaired": "No seed has both IS forced on and uniform healthy: nothing is compared.",
        "forced_conclusions": 'Of IS forced on ("IS" in these lines), by section 1\'s rules:',
        "choice_forced_higher": "IS forced on ended higher than the rule's run, by {cdiff:+.2f} points; the 95% "
        "interval [{clow:+.2f}, {chigh:+.2f}] excludes zero: the rule's choice cost accuracy in this setting.",
        "choice_forced_lower": "IS forced on ended lower than the rule's run, by {cdiff:+.2f} points; the 95% "
        "interval [{clow:+.2f}, {chigh:+.2f}] excludes zero: the rule's choice saved that accuracy in this setting.",
        "choice_within_noise": "IS forced on and the rule's run differ by {cdiff:+.2f} points, but the 95% interval "
        "[{clow:+.2f}, {chigh:+.2f}] includes zero: the rule's choice neither cost nor gained beyond the seed noise.",
    },
    "zh": {
        "forced_heading": "### 每次迭代都强制启用重要性采样（`compare.forced_is`）",
        "forced_intro": "除按规则决定的运行外，`train_is` 还从相同的初始权重、以相同预算训练了每次迭代都强制启用重要性采样的"
        "运行：无论规则是否会启用它，这就是重要性采样本身与均匀 SGD 的对比，也给出规则的选择带来的损失或收益。",
        "forced_rule_row": "按规则的重要性采样",
        "forced_cols": ["运行", "种子数", "最终测试准确率（全部测试集）", "最终测试损失", "重要性采样占比"],
        "forced_difference": "最终测试准确率，强制启用的重要性采样减均匀：{diff:+.2f} 个百分点，{n} 个种子{ci}。",
        "choice_difference": "强制启用的重要性采样减按规则的运行（其 {rule_share:.1%} 的迭代启用了重要性采样）："
        "{cdiff:+.2f} 个百分点，{cn} 个种子{cci}。",
        "forced_unpaired": "没有任何种子同时有正常的强制启用运行和均匀运行：不作比较。",
        "forced_conclusions": "强制启用的重要性采样（以下各条中的“重要性采样”），按第 1 节的规则：",
        "choice_forced_higher": "强制启用的重要性采样最终高于按规则的运行 {cdiff:+.2f} 个百分点；95% 区间 "
        "[{clow:+.2f}, {chigh:+.2f}] 不含零：在此设置下规则的选择损失了准确率。",
        "choice_forced_lower": "强制启用的重要性采样最终低于按规则的运行 {cdiff:+.2f} 个百分点；95% 区间 "
        "[{clow:+.2f}, {chigh:+.2f}] 不含零：在此设置下规则的选择保住了这部分准确率。",
        "choice_within_noise": "强制启用的重要性采样与按规则的运行相差 {cdiff:+.2f} 个百分点，但 95% 区间 "
        "[{clow:+.2f}, {chigh:+.2f}] 包含零：规则的选择带来的损失或收益未超出种子噪声。",
    },
}
RULES = {
    "en": [
        "IS forced on (`compare.forced_is`): against uniform by section 1's rules, paired by seed; against the rule's "
        f"run, paired by seed, a direction needs at least {MIN_SEEDS} seeds and a Student-t 95% interval of the "
        "differences that excludes zero.",
    ],
    "zh": [
        "强制启用的重要性采样（`compare.forced_is`）：与均匀采样的对比按第 1 节的规则、按种子配对；与按规则的运行对比时，"
        f"按种子配对，得出方向至少需要 {MIN_SEEDS} 个种子，且差值的 Student-t 95% 区间不含零。",
    ],
}
