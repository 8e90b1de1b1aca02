"""Section 2, experiments 3-5: when importance sampling switched on and off, its share before and
after each learning-rate change, and how far IS was from paying by its own rule (the predicted speed-up
s / (1 + a) against 1): its facts, its named rules and its words."""

import math

import pandas as pd

from isample.names import IMPORTANCE
from isample.report.common import (
    Facts,
    Section,
    conclude,
    figure_lines,
    missing_lines,
    table,
)
from isample.report.records import Run, predicted_speedup

SHARP_CHANGE = 0.5  # an IS-share change at an lr milestone counts when it is over half the larger share
MIN_SHARE = 0.05  # ...and that larger share is at least this (a few stray IS iterations are not a regime)


def lr_segments(epochs: pd.DataFrame) -> pd.DataFrame:
    """Runs of epochs with one lr: its value, start, and the share of its iterations chosen by score."""
    segment = (epochs["lr"] != epochs["lr"].shift(1)).cumsum()
    scored = epochs["scored_share"] * epochs["iterations"]
    segments = (
        epochs.assign(scored=scored)
        .groupby(segment)
        .agg(
            lr=("lr", "first"),
            start=("train_seconds", "first"),
            scored=("scored", "sum"),
            iterations=("iterations", "sum"),
        )
    )
    return segments.assign(is_share=segments["scored"] / segments["iterations"])


def sharp_change(before: float, after: float) -> bool:
    """The rule: a change counts when it is over SHARP_CHANGE of the larger share, that one >= MIN_SHARE."""
    larger = max(before, after)
    return larger >= MIN_SHARE and abs(after - before) > SHARP_CHANGE * larger


def rule_distance(run: Run) -> dict:
    """How far IS was from paying in one run: tau's peak (epoch means) and tau_th in that epoch, the
    peak of s / (1 + a), and the share of iterations in epochs where it exceeded 1."""
    epochs = run.epochs
    speedup = predicted_speedup(epochs)
    known = speedup.notna()
    peak = epochs["tau"].idxmax() if epochs["tau"].notna().any() else None
    iterations = epochs["iterations"]
    return {
        "seed": run.seed,
        "tau_peak": math.nan if peak is None else float(epochs.loc[peak, "tau"]),
        "tau_th_at_peak": math.nan if peak is None else float(epochs.loc[peak, "tau_threshold"]),
        "speedup_peak": float(speedup.max()) if known.any() else math.nan,
        "paying_share": float(iterations[speedup > 1].sum() / iterations[known].sum()) if known.any() else math.nan,
    }


def lr_activation(is_runs: list[Run]) -> Facts:
    facts = Facts()
    if not is_runs:
        facts.missing.append(IMPORTANCE)
        return facts
    rows = []
    for run in is_runs:
        epochs = run.epochs
        on = epochs["scored_share"] > 0
        segments = lr_segments(epochs)
        for (_, before), (_, after) in zip(segments.iloc[:-1].iterrows(), segments.iloc[1:].iterrows(), strict=True):
            rows.append(
                {
                    "seed": run.seed,
                    "lr_before": before["lr"],
                    "lr_after": after["lr"],
                    "at_seconds": after["start"],
                    "is_share_before": before["is_share"],
                    "is_share_after": after["is_share"],
                    "sharp_change": sharp_change(before["is_share"], after["is_share"]),
                }
            )
        facts.numbers.setdefault("first_on_seconds", []).append(
            float(epochs.loc[on, "train_seconds"].iloc[0]) if on.any() else math.nan
        )
        facts.numbers.setdefault("switched_off_seconds", []).append(
            epochs.loc[~on & on.shift(1, fill_value=False), "train_seconds"].tolist()
        )
    facts.tables["milestones"] = milestones = pd.DataFrame(rows)
    if milestones.empty:
        facts.conclusions["lr"] = ("lr_constant", {})
    else:
        facts.conclusions["lr"] = ("lr_affects_is" if milestones["sharp_change"].any() else "lr_no_effect", {})
    never = all(math.isnan(t) for t in facts.numbers["first_on_seconds"])
    facts.conclusions["activation"] = ("never_on" if never else "switched_on", {})
    facts.tables["distance"] = distance = pd.DataFrame([rule_distance(run) for run in is_runs])
    best = distance["speedup_peak"].max()  # nan when no run measured a
    if math.isnan(best):
        rule = "a_unmeasured"
    elif never:
        rule = "never_short" if best < 1 else "never_above"
    else:
        rule = "on_distance"
    facts.conclusions["distance"] = (rule, {"best": best, "gap": 1 - best})
    return facts


def _seed_distance(words: dict, r) -> str:
    """One seed's distance from paying, saying what was not measured rather than printing nan."""
    if math.isnan(r.tau_peak):
        return words["distance_seed_no_tau"].format(seed=r.seed)
    if math.isnan(r.speedup_peak) or math.isnan(r.tau_th_at_peak):
        return words["distance_seed_no_a"].format(seed=r.seed, tau=r.tau_peak)
    return words["distance_seed"].format(
        seed=r.seed, tau=r.tau_peak, th=r.tau_th_at_peak, speedup=r.speedup_peak, share=r.paying_share
    )


def section(words: dict, is_runs: list[Run], figures: dict) -> Section:
    facts = lr_activation(is_runs)
    out = [words["s2"], ""] + missing_lines(words, facts)
    metrics = {}
    if not facts.missing:
        milestones = facts.tables["milestones"]
        if len(milestones):
            rows = [
                [
                    int(r.seed),
                    f"{r.lr_before:g}",
                    f"{r.lr_after:g}",
                    f"{r.at_seconds:.0f}",
                    f"{r.is_share_before:.2f}",
                    f"{r.is_share_after:.2f}",
                    "✓" if r.sharp_change else "",
                ]
                for r in milestones.itertuples()
            ]
            out += [table(words["cols_milestones"], rows), ""]
        first_on = facts.numbers["first_on_seconds"]
        times = [
            words["never_seed"].format(seed=run.seed)
            if math.isnan(t)
            else words["first_on_seed"].format(time=f"{t:.0f}", seed=run.seed)
            for t, run in zip(first_on, is_runs, strict=True)
        ]
        off = "; ".join(", ".join(f"{t:.0f} s" for t in s) or "-" for s in facts.numbers["switched_off_seconds"])
        out += [words["first_on"].format(times=", ".join(times), off=off), ""]
        distance = facts.tables["distance"]
        details = "; ".join(_seed_distance(words, r) for r in distance.itertuples())
        out += [words["conclusion"], ""] + conclude(words, facts, {"details": details}) + [""]
        metrics["activation"] = {
            "first_on_seconds": [None if math.isnan(t) else t for t in first_on],
            "sharp_change_at_lr": facts.conclusions["lr"][0] == "lr_affects_is",
            **{
                column: [None if math.isnan(v) else v for v in distance[column]]
                for column in distance
                if column != "seed"
            },
        }
    out += figure_lines(words, figures, ("activation",), seeds=len({r.seed for r in is_runs}))
    return Section(out, metrics, facts.missing)


TEXT = {
    "en": {
        "s2": "## 2. Learning rate and IS activation (notebook experiments 3-5)",
        "cols_milestones": [
            "seed",
            "lr before",
            "lr after",
            "at (s)",
            "IS share before",
            "IS share after",
            "sharp change",
        ],
        "first_on": "IS first switched on at: {times}; switched off again at: {off}.",
        "first_on_seed": "{time} s (seed {seed})",
        "never_seed": "never (seed {seed})",
        "lr_affects_is": "The IS share changed by more than half at an lr change: the learning rate affects "
        "importance sampling (notebook, experiments 3 and 5).",
        "lr_no_effect": "No lr change moved the IS share by more than half.",
        "lr_constant": "No lr change falls between two recorded epochs (a constant learning rate, as in notebook "
        "experiment 4, or too few epochs): there is none to compare across.",
        "never_on": "IS never switched on in this run.",
        "switched_on": "IS switched on by itself when its predicted speed-up s exceeded tau_th = 1 + a.",
        "distance_seed": "seed {seed}: tau peaked at {tau:.3f} against tau_th {th:.3f} there, s / (1 + a) at most "
        "{speedup:.3f}, above 1 for {share:.0%} of the iterations",
        "never_short": "By its own rule IS would not have paid: s / (1 + a), s the speed-up its draw is predicted to bring (above 1 "
        "it pays for its presample), stayed below 1, {gap:.0%} short at its closest ({details}).",
        "never_above": "s / (1 + a) reached {best:.3f}, above 1, yet IS never switched on: the threshold used was "
        "not 1 + a, or the excess lasted less than the moving averages need ({details}).",
        "on_distance": "How far IS was from paying, s / (1 + a) against 1: {details}.",
        "distance_seed_no_tau": "seed {seed}: no tau recorded",
        "distance_seed_no_a": "seed {seed}: tau peaked at {tau:.3f}, with no measured a to set it against",
        "a_unmeasured": "a was not measured, so whether IS would have paid for its presample cannot be told: with "
        "a fixed threshold (sampler.tau_th set to a number) or timing off, the run prices nothing ({details}).",
    },
    "zh": {
        "s2": "## 2. 学习率与重要性采样的启用（笔记实验 3-5）",
        "cols_milestones": ["种子", "变化前学习率", "变化后学习率", "时间 (s)", "变化前占比", "变化后占比", "剧烈变化"],
        "first_on": "重要性采样首次启用于：{times}；再次关闭于：{off}。",
        "first_on_seed": "{time} s（种子 {seed}）",
        "never_seed": "从未（种子 {seed}）",
        "lr_affects_is": "在某次学习率变化处，重要性采样占比的变化超过一半：学习率影响重要性采样（笔记实验 3 和 5）。",
        "lr_no_effect": "没有哪次学习率变化使重要性采样占比变化超过一半。",
        "lr_constant": "记录的各轮之间没有学习率变化（学习率固定，如笔记实验 4，或轮数太少）：没有可比较的变化。",
        "never_on": "本次运行中重要性采样从未启用。",
        "switched_on": "当预测加速 s 超过 tau_th = 1 + a 时，重要性采样自动启用。",
        "distance_seed": "种子 {seed}：tau 峰值 {tau:.3f}，此时 tau_th 为 {th:.3f}；s / (1 + a) 最高 {speedup:.3f}，"
        "大于 1 的迭代占 {share:.0%}",
        "never_short": "按其自身规则，重要性采样不会划算：s / (1 + a)（s 为其抽样方式预测的加速，大于 1 才抵得上预采样的代价）始终"
        "低于 1，最接近时仍差 {gap:.0%}（{details}）。",
        "never_above": "s / (1 + a) 达到 {best:.3f}，超过 1，但重要性采样从未启用：所用阈值不是 1 + a，或超出的时间"
        "短于滑动平均所需（{details}）。",
        "on_distance": "重要性采样离划算有多远，s / (1 + a) 与 1 相比：{details}。",
        "distance_seed_no_tau": "种子 {seed}：没有记录 tau",
        "distance_seed_no_a": "种子 {seed}：tau 峰值 {tau:.3f}，没有测得的 a 可与之比较",
        "a_unmeasured": "没有测量 a，因此无法判断重要性采样能否抵得上预采样的代价：阈值固定（sampler.tau_th 设为数值）"
        "或关闭计时时，运行不为其定价（{details}）。",
    },
}
RULES = {
    "en": [
        f"Learning rate: an lr change counts when the IS share moves by more than {SHARP_CHANGE:.0%} of the "
        f"larger of the shares before and after it, that larger share being at least {MIN_SHARE:.0%}.",
    ],
    "zh": [
        f"学习率：若某次学习率变化前后重要性采样占比之差超过两者中较大者的 {SHARP_CHANGE:.0%}，且较大者至少为 "
        f"{MIN_SHARE:.0%}，则计为剧烈变化。",
    ],
}
