"""What every section of the report shares: the facts container, the paired comparison with uniform and
the time to an accuracy (one definition each, used by every section that shows them), the table and
number formatting, and the words that are no section's own. A section module holds its facts, its
named rules and its words in English and Chinese; `isample.report.render` puts the sections together."""

import math
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats

from isample.report.records import Run

MIN_SEEDS = 2  # paired seeds needed before a difference gets a direction
TARGET_SHARES = (0.90, 0.95, 1.00)  # time to reach these shares of uniform's best (smoothed) test accuracy
SMOOTHING_EPOCHS = 3  # accuracy is a trailing mean over this many epochs, so one lucky epoch does not count
SWEEP_COMMAND = "dvc exp run -S 'train.budgets=[50s,100s,200s]' -S 'train.seeds=[0,1]'"


@dataclass
class Facts:
    """Numbers the conclusions are drawn from, and the conclusions as (rule, values) pairs."""

    numbers: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    conclusions: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)


@dataclass
class Section:
    """A rendered section: its markdown lines, its numbers for reports/metrics.json, what it lacked,
    and its share of the headline metrics.json."""

    lines: list[str]
    metrics: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    headline: dict = field(default_factory=dict)


def confidence_interval(differences: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of paired differences (nan with fewer than two)."""
    n = len(differences)
    if n < 2:
        return math.nan, math.nan
    mean = sum(differences) / n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * pd.Series(differences).std() / math.sqrt(n)
    return mean - half, mean + half


def seeds_to_resolve(spread: float, difference: float = 0.01, level: float = 0.95, most: int = 1000) -> float:
    """The fewest paired seeds n whose Student-t interval half-width t(n - 1) spread / sqrt(n) is at most
    `difference`, given the standard deviation of the paired differences; nan without a spread, inf
    beyond `most`."""
    if math.isnan(spread):
        return math.nan
    for n in range(2, most + 1):
        if stats.t.ppf(0.5 + level / 2, n - 1) * spread / math.sqrt(n) <= difference:
            return float(n)
    return math.inf


def queue_command(seeds: int) -> str:
    """The dvc commands that queue and run one experiment with `seeds` seeds."""
    listed = ",".join(str(seed) for seed in range(seeds))
    return f"dvc exp run --queue -S 'train.seeds=[{listed}]' && dvc queue start"


@dataclass
class Paired:
    """A method's runs against uniform's of the same seeds (diverged runs left out)."""

    pairs: list[tuple[Run, Run]]

    @property
    def differences(self) -> list[float]:
        """Final test accuracy (the whole test set) minus uniform's, per seed."""
        return [run.final_accuracy - uniform.final_accuracy for run, uniform in self.pairs]

    @property
    def n(self) -> int:
        return len(self.pairs)

    @property
    def difference(self) -> float:
        return float(pd.Series(self.differences).mean()) if self.pairs else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return confidence_interval(self.differences)

    @property
    def resolution(self) -> float:
        """The interval's half-width: the smallest difference these seeds can tell from zero."""
        low, high = self.interval
        return (high - low) / 2

    @property
    def spread(self) -> float:
        """The standard deviation of the paired differences (nan with fewer than two)."""
        return float(pd.Series(self.differences).std()) if self.n >= 2 else math.nan


def paired(runs: list[Run], uniform_runs: list[Run]) -> Paired:
    uniform = {run.seed: run for run in uniform_runs if not run.diverged}
    return Paired([(run, uniform[run.seed]) for run in runs if not run.diverged and run.seed in uniform])


def comparison_values(numbers: dict) -> dict:
    """What a sentence on a comparison with uniform is filled with (`equal_time.compare_runs`'s numbers;
    differences in points)."""
    return {
        "diff": 100 * numbers["accuracy_difference"],
        "low": 100 * numbers["accuracy_ci_low"],
        "high": 100 * numbers["accuracy_ci_high"],
        "n": numbers["seeds"],
        "share": numbers["is_share"],
        "tta_is": numbers["time_to_accuracy_is"],
        "tta_uniform": numbers["time_to_accuracy_uniform"],
        "epoch": numbers["epoch_seconds"],
    }


def smoothed_accuracy(epochs: pd.DataFrame) -> pd.Series:
    """Test accuracy as a trailing mean over SMOOTHING_EPOCHS epochs (fewer at the start)."""
    return epochs["test_accuracy"].rolling(SMOOTHING_EPOCHS, min_periods=1).mean()


def time_to_reach(epochs: pd.DataFrame, target: float) -> float:
    """Training seconds at the first epoch whose smoothed test accuracy reaches target (nan if never)."""
    reached = epochs[smoothed_accuracy(epochs) >= target]
    return float(reached["train_seconds"].iloc[0]) if len(reached) else math.nan


def times_to_target(pairs: Paired, share: float) -> list[tuple[float, float]]:
    """Per seed, (the method's, uniform's) seconds to reach `share` of uniform's best smoothed accuracy."""
    times = []
    for run, uniform in pairs.pairs:
        target = share * smoothed_accuracy(uniform.epochs).max()
        times.append((time_to_reach(run.epochs, target), time_to_reach(uniform.epochs, target)))
    return times


# -- formatting -----------------------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table; its header cells must be unique, and every row as wide as the header."""
    if len({cell.strip() for cell in header}) < len(header):
        raise ValueError(f"a table's header repeats a cell: {header}")
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"a row of the table headed {header} has another width")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def number(value, digits=4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def milliseconds(seconds) -> str:
    return "-" if seconds is None or math.isnan(seconds) else f"{1000 * seconds:.1f}"


def percent(value) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.1%}"


def with_spread(mean: float, spread: float, seeds: int, digits: int = 4) -> str:
    if seeds > 1 and not math.isnan(spread):
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"
    return number(mean, digits)


def finite_or_none(numbers: dict) -> dict:
    return {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in numbers.items()}


def method_name(words: dict, method: str) -> str:
    return words.get(f"method_{method}", method)


def conclude(words: dict, facts: Facts, values: dict) -> list[str]:
    """One bullet per conclusion, its rule's words filled with the section's values and its own."""
    lines = []
    for rule, extra in facts.conclusions.values():
        merged = {**values, **extra}
        merged.setdefault("name", method_name(words, merged.get("method", "")))
        lines.append(f"- {words[rule].format(**merged)}")
    return lines


def missing_lines(words: dict, facts: Facts) -> list[str]:
    return [line for what in facts.missing for line in (words["missing"].format(what=words[f"missing_{what}"]), "")]


def figure_lines(words: dict, figures: dict[str, str], names: tuple[str, ...], seeds: int | None = None) -> list[str]:
    """Each figure with its caption: what it shows and, for curves over `seeds` seeds, their interval."""
    spread = "" if seeds is None else words["seeds_one" if seeds == 1 else "seeds_many"].format(n=seeds)
    lines = [
        line
        for name, path in figures.items()
        if name in names
        for line in (f"![{name}]({path})", "", f"*{words[f'caption_{name}'].format(seeds=spread)}*", "")
    ]
    return [words["figures"], ""] + lines if lines else []


WORDS = {
    "en": {
        "title": "# Importance sampling against uniform SGD at equal training time",
        "generated": "Written by the `report` stage from the records under `results/`; rerun `dvc repro` to refresh.",
        "break_even": "Where IS pays at all was measured apart, at equal priced budgets with IS's presample at stated "
        "prices ([docs/break-even.md](../docs/break-even.md), 3 regimes, 5 seeds at a = 0 and 3 at the other prices, "
        "60 priced seconds). Drawn without replacement (`sampler.draw`, the default), IS forced on does not beat uniform "
        "even when its presample is free: -0.19 [-1.18, +0.81] points in the default regime, -0.12 [-1.21, +0.96] where "
        "the model memorises, -0.18 [-0.61, +0.26] where it has memorised, so a gain above one point is ruled out. The "
        "2018 draw, with replacement, loses -2.45 [-4.13, -0.77] and -1.30 [-2.25, -0.36] in the first two, and the new "
        "draw beats it by +2.26 [+1.55, +2.97] and +1.18 [+0.27, +2.09] there. IS pays where its presample costs less "
        "than a* of a training step: a* is below 0.402 (default regime) and 0.319 (memorising regime) with 95% "
        "confidence, below 0 by the means. At the priced clock's a = 0.508 at p = 2, "
        "the rule cannot switch IS on at p = 2: no draw from a presample of 2b predicts a speed-up above sqrt(2).",
        "parameters": "## Parameters",
        "files": "## Result files",
        "rules": "## How the conclusions are drawn",
        "key": "### Key information",
        "conclusion": "### Conclusion",
        "figures": "### Figures",
        "seeds_one": "one seed, so no interval",
        "seeds_many": "the mean over {n} seeds, the band its 95% t-interval",
        "caption_accuracy": "Test accuracy and loss (the test subset, after every epoch) against training time, IS (the "
        "rule's run, and forced on where trained) and uniform from the same initial weights; {seeds}. Dotted: the lr drops.",
        "caption_train_loss": "Train loss against training time (log scale): on the batches trained, importance-weighted, "
        "and of the training set in eval mode; {seeds}.",
        "caption_activation": "IS along its run, epoch means: the draw's predicted speed-up s and tau against the "
        "threshold 1 + a, and s / (1 + a) against 1; {seeds}.",
        "caption_all_methods": "Every method's test accuracy against training time; {seeds}.",
        "caption_accuracy_vs_budget": "Final test accuracy against the budget, each budget with its own schedule: the "
        "mean over seeds, bars one standard deviation.",
        "caption_phases": "Median time of each phase per iteration, per configuration, over the timing stage's measured "
        "iterations (medians: no interval).",
        "caption_presample_fit": "The presample's median time per iteration against p, with the cost model's straight "
        "line.",
        "caption_presample_vs_train": "Each measured IS iteration's presample forward against its training step.",
        "missing": "**Missing:** {what}. This section is incomplete until it exists (run `dvc repro`).",
        "missing_upper_bound": "no importance-sampling record in results/upper_bound/",
        "missing_uniform": "no uniform record in results/uniform/",
        "missing_paired seeds": "no seed was run both with IS and uniform",
        "missing_timing": "no timing record (results/timing.xlsx)",
        "method_upper_bound": "importance sampling",
        "method_uniform": "uniform SGD",
        "method_upper_bound_is_off": "importance sampling, IS off",
        "method_upper_bound_forced": "IS forced on",
        "method_reuse": "score reuse",
        "method_selective_backprop": "Selective-Backprop",
        "method_infobatch": "InfoBatch",
        "method_rho_loss": "RHO-LOSS (IL amortised)",
        "method_rho_loss_charged": "RHO-LOSS (IL time charged)",
        "not_reached": "not reached",
    },
    "zh": {
        "title": "# 等训练时间下重要性采样与均匀 SGD 的对比",
        "generated": "由 `report` 阶段根据 `results/` 下的记录生成；运行 `dvc repro` 以更新。",
        "break_even": "重要性采样在何处划算另行测量：在等定价预算下、以给定价格计预采样（[docs/break-even.md](../docs/break-even.md)，"
        "3 种情形，a = 0 时 5 个种子、其他价格 3 个种子，60 定价秒）。不放回抽取（`sampler.draw`，默认）时，即使预采样免费，"
        "强制开启的重要性采样也没有超过均匀采样：默认情形 -0.19 [-1.18, +0.81] 点，记忆情形 -0.12 [-1.21, +0.96]，"
        "已记住的情形 -0.18 [-0.61, +0.26]，因此超过一个点的提升可以排除。2018 年的有放回抽取在前两种情形下损失 "
        "-2.45 [-4.13, -0.77] 和 -1.30 [-2.25, -0.36]，新的抽取方式在那里比它高 +2.26 [+1.55, +2.97] 和 "
        "+1.18 [+0.27, +2.09]。当预采样成本低于训练步的 a* 时重要性采样划算：以 95% 置信度，默认情形 a* 低于 0.402，"
        "记忆情形低于 0.319，按均值低于 0。在定价时钟的 a = 0.508（p = 2）下，规则无法在 p = 2 时开启重要性采样："
        "从 2b 的预采样中抽取，预测加速都不超过 sqrt(2)。",
        "parameters": "## 参数",
        "files": "## 结果文件",
        "rules": "## 结论的判定规则",
        "key": "### 关键信息",
        "conclusion": "### 结论",
        "figures": "### 图",
        "seeds_one": "单个种子，因此没有区间",
        "seeds_many": "{n} 个种子的均值，阴影为其 95% t 区间",
        "caption_accuracy": "测试准确率与损失（每轮后的测试子集）随训练时间的变化，重要性采样（按规则的运行；若已训练，还有强制启用的运行）"
        "与均匀采样从相同初始权重出发；"
        "{seeds}。虚线：学习率下降。",
        "caption_train_loss": "训练损失随训练时间的变化（对数坐标）：训练批次上、重要性加权、以及评估模式下的训练集；{seeds}。",
        "caption_activation": "重要性采样在运行中的情况（每轮平均）：抽取方式的预测加速 s 与 tau 对比阈值 1 + a，"
        "以及 s / (1 + a) 对比 1；{seeds}。",
        "caption_all_methods": "各方法的测试准确率随训练时间的变化；{seeds}。",
        "caption_accuracy_vs_budget": "最终测试准确率与预算（每个预算各自的学习率计划）：种子均值，误差棒为一个标准差。",
        "caption_phases": "计时阶段实测迭代中每次迭代各阶段的中位时间，按配置（中位数：无区间）。",
        "caption_presample_fit": "预采样每次迭代的中位时间与 p，以及成本模型的直线拟合。",
        "caption_presample_vs_train": "每次实测的重要性采样迭代中预采样前向与训练步的对比。",
        "missing": "**缺少：** {what}。在它存在之前本节不完整（运行 `dvc repro`）。",
        "missing_upper_bound": "results/upper_bound/ 中没有重要性采样记录",
        "missing_uniform": "results/uniform/ 中没有均匀采样记录",
        "missing_paired seeds": "没有同时用重要性采样和均匀采样运行的种子",
        "missing_timing": "没有计时记录（results/timing.xlsx）",
        "method_upper_bound": "重要性采样",
        "method_uniform": "均匀 SGD",
        "method_upper_bound_is_off": "重要性采样（IS 关闭）",
        "method_upper_bound_forced": "强制启用的重要性采样",
        "method_reuse": "分数复用",
        "method_selective_backprop": "Selective-Backprop",
        "method_infobatch": "InfoBatch",
        "method_rho_loss": "RHO-LOSS（IL 成本摊销）",
        "method_rho_loss_charged": "RHO-LOSS（计入 IL 时间）",
        "not_reached": "未达到",
    },
}
