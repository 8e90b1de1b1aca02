"""From .xlsx records to the notebook's questions: numbers, rule-based conclusions, markdown.

Every conclusion comes from an explicit rule over the numbers (see RULES below and the report's
own "How the conclusions are drawn" section); the same facts render in English or Chinese.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy import stats

from isample.records import RecordError, read_workbook

NOTEBOOK_A_PER_P = {2: 0.55 / 2, 5: 1.25 / 5}  # experiment 8: presample time / training time per p
SHARP_CHANGE = 0.5  # an IS-share change at an lr milestone counts when it is over half the larger share
MIN_SHARE = 0.05  # ...and that larger share is at least this (a few stray IS iterations are not a regime)
LINEAR_R2 = 0.95  # presample time is linear in p when the fit's R^2 reaches this
PROPORTIONAL_INTERCEPT = 0.1  # ...and proportional when |intercept| is at most this share of the largest time
NON_MODEL_NEGLIGIBLE = 0.05  # non-model time can be ignored at most this share of an iteration
STRONG_CORRELATION = 0.7
PREDICTION_TOLERANCE = 0.10

RUN_COLUMNS = {
    "epochs": ["epoch", "iterations", "train_seconds", "lr", "train_loss", "train_accuracy", "train_loss_weighted",
               "test_loss", "test_accuracy", "is_iterations", "is_share", "tau_mean", "tau_th_mean"],
    "params": ["parameter", "value"],
}  # fmt: skip
TIMING_COLUMNS = {
    "iterations": ["run", "presample", "total_seconds", "time_presample_forward", "time_train_forward"],
    "per_ratio": ["run", "presample", "measured_seconds", "a", "a_per_p", "k", "t", "predicted_seconds",
                  "prediction_error", "speedup_u", "non_model_share", "non_model_share_iqr", "tau_th"],
    "fit": ["metric", "value"],
}  # fmt: skip


@dataclass
class Run:
    kind: str  # "is" or "uniform"
    seed: int
    path: Path
    epochs: pd.DataFrame
    params: dict[str, str]


def read_run(path: str | Path, kind: str) -> Run:
    sheets = read_workbook(path, RUN_COLUMNS)
    params = dict(zip(sheets["params"]["parameter"].astype(str), sheets["params"]["value"].astype(str)))
    epochs = sheets["epochs"]
    if epochs.empty:
        raise RecordError(f"{path}: sheet 'epochs' has no rows")
    return Run(kind, int(float(params.get("seed", 0))), Path(path), epochs, params)


def read_timing(path: str | Path) -> dict[str, pd.DataFrame]:
    return read_workbook(path, TIMING_COLUMNS)


def time_to_accuracy(epochs: pd.DataFrame, target: float) -> float:
    """Training seconds at the first epoch whose test accuracy reaches target (nan if never)."""
    reached = epochs[epochs["test_accuracy"] >= target]
    return float(reached["train_seconds"].iloc[0]) if len(reached) else math.nan


def _final(run: Run) -> dict:
    last = run.epochs.iloc[-1]
    iterations = run.epochs["iterations"].sum()
    return {
        "train_accuracy": float(last["train_accuracy"]),
        "train_loss": float(last["train_loss"]),
        "train_loss_weighted": float(last["train_loss_weighted"]),
        "test_accuracy": float(last["test_accuracy"]),
        "test_loss": float(last["test_loss"]),
        "best_test_accuracy": float(run.epochs["test_accuracy"].max()),
        "train_seconds": float(last["train_seconds"]),
        "epochs": len(run.epochs),
        "is_share": float(run.epochs["is_iterations"].sum() / iterations) if iterations else 0.0,
    }


def confidence_interval(differences: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of paired differences (nan with fewer than two)."""
    n = len(differences)
    if n < 2:
        return math.nan, math.nan
    mean = sum(differences) / n
    sd = pd.Series(differences).std()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@dataclass
class Facts:
    """Numbers the conclusions are drawn from, and the conclusions as (rule, values) pairs."""

    numbers: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    conclusions: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)


def compare_runs(is_runs: list[Run], uniform_runs: list[Run]) -> Facts:
    """Experiments 1-3: the equal-time comparison, paired by seed."""
    facts = Facts()
    if not is_runs:
        facts.missing.append("is")
    if not uniform_runs:
        facts.missing.append("uniform")
    rows = []
    for run in is_runs + uniform_runs:
        rows.append({"run": run.kind, "seed": run.seed, **_final(run)})
    table = pd.DataFrame(rows)
    facts.tables["per_seed"] = table
    if facts.missing:
        return facts
    uniform_by_seed = {run.seed: run for run in uniform_runs}
    pairs = [(run, uniform_by_seed[run.seed]) for run in is_runs if run.seed in uniform_by_seed]
    if not pairs:
        facts.missing.append("paired seeds")
        return facts
    differences, loss_differences, tta_rows = [], [], []
    for importance_run, uniform_run in pairs:
        importance_final, uniform_final = _final(importance_run), _final(uniform_run)
        target = uniform_final["test_accuracy"]
        tta_rows.append(
            {
                "seed": importance_run.seed,
                "target": target,
                "is": time_to_accuracy(importance_run.epochs, target),
                "uniform": time_to_accuracy(uniform_run.epochs, target),
            }
        )
        differences.append(importance_final["test_accuracy"] - target)
        loss_differences.append(importance_final["test_loss"] - uniform_final["test_loss"])
    facts.tables["time_to_accuracy"] = pd.DataFrame(tta_rows)
    means = table.groupby("run").mean(numeric_only=True)
    spreads = table.groupby("run").std(numeric_only=True)
    facts.tables["mean"], facts.tables["spread"] = means, spreads
    low, high = confidence_interval(differences)
    difference = sum(differences) / len(differences)
    facts.numbers.update(
        seeds=len(pairs),
        accuracy_difference=difference,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        loss_difference=sum(loss_differences) / len(loss_differences),
        is_share=float(means.loc["is", "is_share"]),
        is_test_accuracy=float(means.loc["is", "test_accuracy"]),
        uniform_test_accuracy=float(means.loc["uniform", "test_accuracy"]),
    )
    # Rule: which run ends with the higher test accuracy, and whether that beats the seed noise.
    if len(pairs) < 2:
        rule = "accuracy_one_seed"
    elif low > 0:
        rule = "accuracy_is_better"
    elif high < 0:
        rule = "accuracy_is_worse"
    else:
        rule = "accuracy_within_noise"
    facts.conclusions["accuracy"] = (rule, {"higher": "is" if difference > 0 else "uniform"})
    # Rule: regime. IS that never switched on compares two uniform runs.
    share = facts.numbers["is_share"]
    facts.conclusions["regime"] = ("regime_off" if share == 0 else "regime_partial" if share < 0.5 else "regime_on", {})
    # Rule: the notebook's observation that IS train accuracy is low while its unbiased loss is not high.
    accuracy_lower = means.loc["is", "train_accuracy"] < means.loc["uniform", "train_accuracy"]
    unbiased_not_higher = means.loc["is", "train_loss_weighted"] <= means.loc["uniform", "train_loss_weighted"]
    if accuracy_lower and unbiased_not_higher:
        facts.conclusions["train_metrics"] = ("train_accuracy_misleading", {})
    elif accuracy_lower:
        facts.conclusions["train_metrics"] = ("train_fit_worse", {})
    else:
        facts.conclusions["train_metrics"] = ("train_accuracy_not_lower", {})
    # Rule: time to reach the uniform run's final test accuracy.
    tta = facts.tables["time_to_accuracy"]
    is_time, uniform_time = tta["is"].mean(), tta["uniform"].mean()
    facts.numbers.update(time_to_accuracy_is=is_time, time_to_accuracy_uniform=uniform_time)
    if math.isnan(is_time):
        facts.conclusions["time_to_accuracy"] = ("tta_never", {})
    else:
        facts.conclusions["time_to_accuracy"] = ("tta_faster" if is_time < uniform_time else "tta_slower", {})
    return facts


def lr_activation(is_runs: list[Run]) -> Facts:
    """Experiments 3-5: when IS switched on and off, and its share before and after each lr change."""
    facts = Facts()
    if not is_runs:
        facts.missing.append("is")
        return facts
    rows, sharp = [], False
    for run in is_runs:
        epochs = run.epochs
        active = epochs[epochs["is_iterations"] > 0]
        first_on = float(active["train_seconds"].iloc[0]) if len(active) else math.nan
        switched_off = epochs[(epochs["is_iterations"] == 0) & (epochs["is_iterations"].shift(1) > 0)]
        segment = (epochs["lr"] != epochs["lr"].shift(1)).cumsum()
        segments = epochs.groupby(segment).agg(
            lr=("lr", "first"),
            start=("train_seconds", "first"),
            is_iterations=("is_iterations", "sum"),
            iterations=("iterations", "sum"),
        )
        segments["is_share"] = segments["is_iterations"] / segments["iterations"]
        for (_, before), (_, after) in zip(segments.iloc[:-1].iterrows(), segments.iloc[1:].iterrows()):
            larger = max(before["is_share"], after["is_share"])
            changed = larger >= MIN_SHARE and abs(after["is_share"] - before["is_share"]) > SHARP_CHANGE * larger
            sharp |= changed
            rows.append(
                {
                    "seed": run.seed,
                    "lr_before": before["lr"],
                    "lr_after": after["lr"],
                    "at_seconds": after["start"],
                    "is_share_before": before["is_share"],
                    "is_share_after": after["is_share"],
                    "sharp_change": changed,
                }
            )
        facts.numbers.setdefault("first_on_seconds", []).append(first_on)
        facts.numbers.setdefault("switched_off_seconds", []).append(switched_off["train_seconds"].tolist())
    facts.tables["milestones"] = pd.DataFrame(rows)
    if not rows:
        facts.conclusions["lr"] = ("lr_constant", {})
    else:
        facts.conclusions["lr"] = ("lr_affects_is" if sharp else "lr_no_effect", {})
    never = all(math.isnan(t) for t in facts.numbers["first_on_seconds"])
    facts.conclusions["activation"] = ("never_on" if never else "switched_on", {})
    return facts


def timing_facts(timing: dict[str, pd.DataFrame] | None) -> Facts:
    """Experiments 6-8: phase breakdown, a / p, presample-time fit, cost model against measurement."""
    facts = Facts()
    if timing is None:
        facts.missing.append("timing")
        return facts
    per_ratio = timing["per_ratio"]
    fit = dict(zip(timing["fit"]["metric"], timing["fit"]["value"]))
    importance = per_ratio[per_ratio["run"] == "importance"]
    facts.tables["per_ratio"] = per_ratio
    facts.numbers.update(fit)
    r2 = fit.get("presample_r2", math.nan)
    intercept = fit.get("presample_intercept_seconds", math.nan)
    largest = (fit.get("presample_slope_seconds_per_p", math.nan) * importance["presample"].max()) + intercept
    if not r2 >= LINEAR_R2:
        rule = "presample_not_linear"
    elif abs(intercept) <= PROPORTIONAL_INTERCEPT * abs(largest):
        rule = "presample_proportional"
    else:
        rule = "presample_linear_offset"
    facts.conclusions["fit"] = (rule, {})
    worst = float(importance["non_model_share"].max())
    facts.numbers["non_model_share_worst"] = worst
    facts.conclusions["non_model"] = ("non_model_negligible" if worst <= NON_MODEL_NEGLIGIBLE else "non_model_large", {})
    correlation = fit.get("presample_train_step_correlation", math.nan)
    facts.conclusions["correlation"] = (
        "passes_correlated" if correlation >= STRONG_CORRELATION else "passes_not_correlated", {}
    )
    error = float(importance["prediction_error"].abs().max())
    facts.numbers["prediction_error_worst"] = error
    facts.conclusions["prediction"] = (
        "cost_model_accurate" if error <= PREDICTION_TOLERANCE else "cost_model_off", {}
    )
    return facts


# -- rendering ------------------------------------------------------------------------------------

TEXT = {
    "en": {
        "title": "# Importance sampling against uniform SGD at equal training time",
        "generated": "Written by the `report` stage from the records under `results/`; rerun `dvc repro` to refresh.",
        "parameters": "## Parameters",
        "files": "## Result files",
        "s1": "## 1. Equal training time: importance sampling against uniform (notebook experiments 1-3)",
        "s2": "## 2. Learning rate and IS activation (notebook experiments 3-5)",
        "s3": "## 3. What the sampling costs (notebook experiments 6-8)",
        "rules": "## How the conclusions are drawn",
        "key": "### Key information",
        "conclusion": "### Conclusion",
        "figures": "### Figures",
        "missing": "**Missing:** {what}. This section is incomplete until it exists (run `dvc repro`).",
        "missing_is": "no importance-sampling record in results/is/",
        "missing_uniform": "no uniform record in results/uniform/",
        "missing_paired seeds": "no seed was run both with IS and uniform",
        "missing_timing": "no timing record (results/timing.xlsx)",
        "cols_runs": ["run", "seeds", "train accuracy", "train loss", "unbiased train loss", "test accuracy",
                      "test loss", "best test accuracy", "time to uniform's final accuracy (s)", "IS share", "epochs"],
        "run_is": "importance sampling", "run_uniform": "uniform SGD",
        "difference": "IS minus uniform, final test accuracy: {diff:+.2f} points over {n} seed(s){ci}.",
        "ci": "; 95% confidence interval [{low:+.2f}, {high:+.2f}]",
        "train_note": "Train accuracy and loss are measured on the batches actually trained (what the notebook "
                      "logged, biased towards hard examples for IS); the unbiased train loss weights each example "
                      "by 1 / (B g_i).",
        "cols_milestones": ["seed", "lr before", "lr after", "at (s)", "IS share before", "IS share after",
                            "sharp change"],
        "first_on": "IS first switched on at: {times} s of training (seed order); switched off again at: {off}.",
        "never": "never",
        "cols_timing": ["configuration", "iteration (ms)", "presample (ms)", "train step (ms)", "a",
                        "a / p", "notebook a / p", "k = T/t", "predicted (ms)", "error", "u", "tau_th = 1 + a",
                        "non-model share (IQR)"],
        "fit": "Presample time = {slope:.2f} ms x p {intercept:+.2f} ms (R² = {r2:.3f}); correlation of presample "
               "and training-step times across the iterations of a ratio (median over ratios) r = {corr:.2f}.",
        "model_note": "t and T are the training step's forward and backward time per example, k = T / t; a is the "
                      "measured presample time over the training-step time; predicted = (p + 1 + k) b t; "
                      "u = (p + k + 1) / (p (1 + k)) is the speed-up against full-batch GD.",
        "accuracy_one_seed": "Importance sampling ends with {diff:+.2f} points of test accuracy against uniform, "
                             "{higher_text} higher; with one seed this cannot be told from noise (list several "
                             "seeds in train.seeds).",
        "accuracy_is_better": "Importance sampling ends with higher test accuracy than uniform, by {diff:+.2f} "
                              "points; the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference "
                              "is larger than the seed noise.",
        "accuracy_is_worse": "Importance sampling ends with lower test accuracy than uniform, by {diff:+.2f} points; "
                             "the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference is larger "
                             "than the seed noise.",
        "accuracy_within_noise": "The final test accuracies differ by {diff:+.2f} points, {higher_text} higher, but "
                                 "the 95% interval [{low:+.2f}, {high:+.2f}] includes zero: within the seed noise.",
        "higher_is": "importance sampling", "higher_uniform": "uniform",
        "regime_off": "IS never switched on (tau stayed below tau_th): both runs were uniform SGD, so this "
                      "comparison shows noise, not importance sampling.",
        "regime_partial": "IS was on in {share:.1%} of the iterations: the run compares partly importance-sampled "
                          "training with uniform.",
        "regime_on": "IS was on in {share:.1%} of the iterations.",
        "train_accuracy_misleading": "IS train accuracy is lower than uniform's while its unbiased train loss is not "
                                     "higher: train accuracy on the sampled examples is not a meaningful metric for "
                                     "IS (notebook, experiment 2).",
        "train_fit_worse": "IS train accuracy is lower and its unbiased train loss is higher: IS fitted the training "
                           "set less well within the budget.",
        "train_accuracy_not_lower": "IS train accuracy is not lower than uniform's.",
        "tta_never": "IS never reached the uniform run's final test accuracy.",
        "tta_faster": "IS reached the uniform run's final test accuracy after {tta_is:.0f} s, uniform after "
                      "{tta_uniform:.0f} s: IS got there sooner.",
        "tta_slower": "IS reached the uniform run's final test accuracy after {tta_is:.0f} s, uniform after "
                      "{tta_uniform:.0f} s: IS got there later.",
        "lr_affects_is": "The IS share changed by more than half at an lr change: the learning rate affects "
                         "importance sampling (notebook, experiments 3 and 5).",
        "lr_no_effect": "No lr change moved the IS share by more than half.",
        "lr_constant": "The learning rate was constant: there is no lr change to compare across (notebook, "
                       "experiment 4).",
        "never_on": "IS never switched on in this run.",
        "switched_on": "IS switched on by itself when tau exceeded tau_th.",
        "presample_proportional": "Presample time is proportional to p (R² = {r2:.3f}, intercept {intercept:+.2f} "
                                  "ms): the notebook's experiment 8 holds; a smaller p makes IS cheaper.",
        "presample_linear_offset": "Presample time is linear in p (R² = {r2:.3f}) with a fixed cost of "
                                   "{intercept:+.2f} ms per iteration.",
        "presample_not_linear": "Presample time is not linear in p (R² = {r2:.3f}): the measurement is too noisy "
                                "or the hardware is not saturated.",
        "non_model_negligible": "Non-model time is at most {worst:.1%} of an IS iteration at every ratio: it can be "
                                "ignored (notebook, experiment 7).",
        "non_model_large": "Non-model time reaches {worst:.1%} of an IS iteration: it is not negligible (notebook, "
                           "experiment 6).",
        "passes_correlated": "The presample forward and training-step times move together (r = {corr:.2f}).",
        "passes_not_correlated": "The presample forward and training-step times are not strongly correlated "
                                 "(r = {corr:.2f}).",
        "cost_model_accurate": "The cost model (p + 1 + k) b t predicts the iteration time within {error:.0%} at "
                               "every ratio.",
        "cost_model_off": "The cost model (p + 1 + k) b t misses the measured iteration time by up to {error:.0%} "
                          "(error column): it prices the B presample forwards at the training forward's cost t "
                          "per example, which a forward without gradients on large batches need not match.",
        "rule_list": [
            "Accuracy: the mean over seeds of IS minus uniform final test accuracy; with two or more seeds a "
            "Student-t 95% interval of the paired differences decides whether it exceeds the noise.",
            "Regime: the share of IS iterations over the whole run (0: never on; below 50%: partly).",
            "Train metrics: IS train accuracy lower than uniform's while the unbiased train loss is not higher.",
            "Time to accuracy: first epoch end at which a run reaches the uniform run's final test accuracy.",
            f"Learning rate: an lr change counts when the IS share moves by more than {SHARP_CHANGE:.0%} of the "
            f"larger of the shares before and after it, that larger share being at least {MIN_SHARE:.0%}.",
            f"Presample time: linear when R² >= {LINEAR_R2}; proportional when also |intercept| <= "
            f"{PROPORTIONAL_INTERCEPT:.0%} of the time at the largest p.",
            f"Non-model time: negligible when at most {NON_MODEL_NEGLIGIBLE:.0%} of the median IS iteration at "
            "every ratio.",
            f"Cost model: accurate when within {PREDICTION_TOLERANCE:.0%} at every ratio; correlation strong at "
            f"r >= {STRONG_CORRELATION}.",
        ],
    },
    "zh": {
        "title": "# 等训练时间下重要性采样与均匀 SGD 的对比",
        "generated": "由 `report` 阶段根据 `results/` 下的记录生成；运行 `dvc repro` 以更新。",
        "parameters": "## 参数",
        "files": "## 结果文件",
        "s1": "## 1. 等训练时间：重要性采样对比均匀采样（笔记实验 1-3）",
        "s2": "## 2. 学习率与重要性采样的启用（笔记实验 3-5）",
        "s3": "## 3. 采样本身的开销（笔记实验 6-8）",
        "rules": "## 结论的判定规则",
        "key": "### 关键信息",
        "conclusion": "### 结论",
        "figures": "### 图",
        "missing": "**缺少：** {what}。在它存在之前本节不完整（运行 `dvc repro`）。",
        "missing_is": "results/is/ 中没有重要性采样记录",
        "missing_uniform": "results/uniform/ 中没有均匀采样记录",
        "missing_paired seeds": "没有同时用重要性采样和均匀采样运行的种子",
        "missing_timing": "没有计时记录（results/timing.xlsx）",
        "cols_runs": ["运行", "种子数", "训练准确率", "训练损失", "无偏训练损失", "测试准确率", "测试损失",
                      "最佳测试准确率", "达到均匀采样最终准确率的时间 (s)", "重要性采样占比", "轮数"],
        "run_is": "重要性采样", "run_uniform": "均匀 SGD",
        "difference": "最终测试准确率，重要性采样减均匀：{diff:+.2f} 个百分点，{n} 个种子{ci}。",
        "ci": "；95% 置信区间 [{low:+.2f}, {high:+.2f}]",
        "train_note": "训练准确率和损失在实际训练的批次上测得（即笔记记录的量，对重要性采样偏向难样本）；"
                      "无偏训练损失对每个样本按 1 / (B g_i) 加权。",
        "cols_milestones": ["种子", "变化前学习率", "变化后学习率", "时间 (s)", "变化前占比", "变化后占比", "剧烈变化"],
        "first_on": "重要性采样首次启用于训练的 {times} s（按种子顺序）；再次关闭于：{off}。",
        "never": "从未",
        "cols_timing": ["配置", "迭代 (ms)", "预采样 (ms)", "训练步 (ms)", "a", "a / p", "笔记 a / p", "k = T/t",
                        "预测 (ms)", "误差", "u", "tau_th = 1 + a", "非模型时间占比 (IQR)"],
        "fit": "预采样时间 = {slope:.2f} ms x p {intercept:+.2f} ms（R² = {r2:.3f}）；同一比例各迭代中预采样与训练步"
               "时间的相关系数（各比例的中位数）r = {corr:.2f}。",
        "model_note": "t 和 T 是训练步中每个样本的前向和反向时间，k = T / t；a 是测得的预采样时间与训练步时间之比；"
                      "预测 = (p + 1 + k) b t；u = (p + k + 1) / (p (1 + k)) 是相对全批量梯度下降的加速比。",
        "accuracy_one_seed": "重要性采样的最终测试准确率比均匀采样高 {diff:+.2f} 个百分点（{higher_text}更高）；"
                             "只有一个种子，无法与噪声区分（在 train.seeds 中列出多个种子）。",
        "accuracy_is_better": "重要性采样的最终测试准确率高于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
                              "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_is_worse": "重要性采样的最终测试准确率低于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
                             "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_within_noise": "最终测试准确率相差 {diff:+.2f} 个百分点（{higher_text}更高），但 95% 区间 "
                                 "[{low:+.2f}, {high:+.2f}] 包含零：在种子噪声之内。",
        "higher_is": "重要性采样", "higher_uniform": "均匀采样",
        "regime_off": "重要性采样从未启用（tau 一直低于 tau_th）：两次运行都是均匀 SGD，此对比只反映噪声。",
        "regime_partial": "重要性采样在 {share:.1%} 的迭代中启用：部分迭代使用了重要性采样。",
        "regime_on": "重要性采样在 {share:.1%} 的迭代中启用。",
        "train_accuracy_misleading": "重要性采样的训练准确率低于均匀采样，而其无偏训练损失并不更高：在采样样本上"
                                     "测得的训练准确率对重要性采样没有意义（笔记实验 2）。",
        "train_fit_worse": "重要性采样的训练准确率更低，无偏训练损失也更高：在预算内对训练集的拟合更差。",
        "train_accuracy_not_lower": "重要性采样的训练准确率不低于均匀采样。",
        "tta_never": "重要性采样从未达到均匀采样的最终测试准确率。",
        "tta_faster": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最终测试准确率，均匀采样在 {tta_uniform:.0f} s："
                      "重要性采样更快。",
        "tta_slower": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最终测试准确率，均匀采样在 {tta_uniform:.0f} s："
                      "重要性采样更慢。",
        "lr_affects_is": "在某次学习率变化处，重要性采样占比的变化超过一半：学习率影响重要性采样（笔记实验 3 和 5）。",
        "lr_no_effect": "没有哪次学习率变化使重要性采样占比变化超过一半。",
        "lr_constant": "学习率固定：没有可比较的学习率变化（笔记实验 4）。",
        "never_on": "本次运行中重要性采样从未启用。",
        "switched_on": "当 tau 超过 tau_th 时，重要性采样自动启用。",
        "presample_proportional": "预采样时间与 p 成正比（R² = {r2:.3f}，截距 {intercept:+.2f} ms）：笔记实验 8 "
                                  "成立；更小的 p 使重要性采样更便宜。",
        "presample_linear_offset": "预采样时间与 p 成线性关系（R² = {r2:.3f}），每次迭代有 {intercept:+.2f} ms 的固定开销。",
        "presample_not_linear": "预采样时间与 p 不成线性关系（R² = {r2:.3f}）：测量噪声过大或硬件未饱和。",
        "non_model_negligible": "在每个比例下，非模型时间最多占重要性采样迭代的 {worst:.1%}：可以忽略（笔记实验 7）。",
        "non_model_large": "非模型时间最多占重要性采样迭代的 {worst:.1%}：不可忽略（笔记实验 6）。",
        "passes_correlated": "预采样前向与训练步时间同步变化（r = {corr:.2f}）。",
        "passes_not_correlated": "预采样前向与训练步时间没有强相关（r = {corr:.2f}）。",
        "cost_model_accurate": "代价模型 (p + 1 + k) b t 在每个比例下对迭代时间的预测误差都在 {error:.0%} 以内。",
        "cost_model_off": "代价模型 (p + 1 + k) b t 与实测迭代时间最多相差 {error:.0%}（见误差列）：它按训练前向的"
                          "每样本时间 t 计算 B 个预采样前向，而无梯度的大批量前向不一定与之相同。",
        "rule_list": [
            "准确率：各种子上重要性采样与均匀采样最终测试准确率之差的均值；有两个以上种子时，用配对差值的 "
            "Student-t 95% 区间判断是否超过噪声。",
            "状态：整个运行中重要性采样迭代的占比（0：从未启用；低于 50%：部分启用）。",
            "训练指标：重要性采样训练准确率低于均匀采样，而无偏训练损失不更高。",
            "达到准确率的时间：运行首次在某轮结束时达到均匀采样最终测试准确率的训练时间。",
            f"学习率：若某次学习率变化前后重要性采样占比之差超过两者中较大者的 {SHARP_CHANGE:.0%}，且较大者至少为 "
            f"{MIN_SHARE:.0%}，则计为剧烈变化。",
            f"预采样时间：R² >= {LINEAR_R2} 时为线性；若截距绝对值不超过最大 p 处时间的 "
            f"{PROPORTIONAL_INTERCEPT:.0%}，则为成正比。",
            f"非模型时间：在每个比例下不超过重要性采样迭代中位时间的 {NON_MODEL_NEGLIGIBLE:.0%} 时可忽略。",
            f"代价模型：每个比例下误差在 {PREDICTION_TOLERANCE:.0%} 以内为准确；r >= {STRONG_CORRELATION} 为强相关。",
        ],
    },
}
LANGUAGES = tuple(TEXT)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value, digits=4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _with_spread(mean: float, spread: float, seeds: int, digits: int = 4) -> str:
    if seeds > 1 and not math.isnan(spread):
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"
    return _number(mean, digits)


def _conclude(text: dict, facts: Facts, values: dict) -> list[str]:
    lines = []
    for rule, extra in facts.conclusions.values():
        merged = {**values, **extra}
        if "higher" in merged:
            merged["higher_text"] = text[f"higher_{merged['higher']}"]
        lines.append(f"- {text[rule].format(**merged)}")
    return lines


def render(
    is_runs: list[Run],
    uniform_runs: list[Run],
    timing: dict[str, pd.DataFrame] | None,
    lang: str,
    figures: dict[str, str],
    timing_path: str = "results/timing.xlsx",
) -> tuple[str, dict]:
    """The markdown report and the headline metrics, from the records alone."""
    if lang not in TEXT:
        raise ValueError(f"unknown report language {lang!r}; known: {', '.join(TEXT)}")
    text = TEXT[lang]
    out = [text["title"], "", text["generated"], ""]
    runs = is_runs + uniform_runs
    # Parameters and files.
    out += [text["parameters"], ""]
    if runs:
        shown = ["data.name", "model.name", "train.budget", "presample", "batch_size", "train.lr", "train.lr_scale",
                 "train.lr_schedule", "train.lr_milestones", "train.lr_gamma", "train.seeds", "data.augment",
                 "sampler.tau_th", "sampler.score", "train_examples", "test_examples", "device_name", "torch"]  # fmt: skip
        params = runs[0].params
        out += [_table(["parameter", "value"], [[key, params.get(key, "-")] for key in shown]), ""]
    files = [str(run.path) for run in runs] + ([timing_path] if timing is not None else [])
    out += [text["files"], ""] + [f"- `{f}`" for f in files] + [""]
    metrics: dict = {}

    # 1. Equal-time comparison.
    comparison = compare_runs(is_runs, uniform_runs)
    out += [text["s1"], ""]
    for what in comparison.missing:
        out += [text["missing"].format(what=text[f"missing_{what}"]), ""]
    per_seed = comparison.tables["per_seed"]
    if len(per_seed):
        rows = []
        tta = comparison.tables.get("time_to_accuracy")
        for kind in ("is", "uniform"):
            group = per_seed[per_seed["run"] == kind]
            if group.empty:
                continue
            seeds = len(group)
            cells = [text[f"run_{kind}"], seeds]
            for column in ("train_accuracy", "train_loss", "train_loss_weighted", "test_accuracy", "test_loss",
                           "best_test_accuracy"):  # fmt: skip
                cells.append(_with_spread(group[column].mean(), group[column].std(), seeds))
            cells.append(_number(tta[kind].mean(), 0) if tta is not None else "-")
            cells += [f"{group['is_share'].mean():.2f}", f"{group['epochs'].mean():.0f}"]
            rows.append(cells)
        out += [text["key"], "", _table(text["cols_runs"], rows), "", text["train_note"], ""]
    numbers = comparison.numbers
    if "accuracy_difference" in numbers:
        n = numbers["seeds"]
        values = {
            "diff": 100 * numbers["accuracy_difference"],
            "low": 100 * numbers["accuracy_ci_low"],
            "high": 100 * numbers["accuracy_ci_high"],
            "n": n,
            "share": numbers["is_share"],
            "tta_is": numbers["time_to_accuracy_is"],
            "tta_uniform": numbers["time_to_accuracy_uniform"],
        }
        ci = text["ci"].format(**values) if n > 1 else ""
        out += [text["difference"].format(ci=ci, **values), "", text["conclusion"], ""]
        out += _conclude(text, comparison, values) + [""]
        metrics["comparison"] = {key: (None if isinstance(v, float) and math.isnan(v) else v)
                                 for key, v in numbers.items()}  # fmt: skip
    figure_lines = [f"![{name}]({path})" for name, path in figures.items() if name in ("accuracy", "train_loss")]
    if figure_lines:
        out += [text["figures"], ""] + figure_lines + [""]

    # 2. Learning rate and IS activation.
    activation = lr_activation(is_runs)
    out += [text["s2"], ""]
    for what in activation.missing:
        out += [text["missing"].format(what=text[f"missing_{what}"]), ""]
    if not activation.missing:
        milestones = activation.tables["milestones"]
        if len(milestones):
            rows = [[int(r.seed), f"{r.lr_before:g}", f"{r.lr_after:g}", f"{r.at_seconds:.0f}",
                     f"{r.is_share_before:.2f}", f"{r.is_share_after:.2f}", "✓" if r.sharp_change else ""]
                    for r in milestones.itertuples()]  # fmt: skip
            out += [_table(text["cols_milestones"], rows), ""]
        first_on = activation.numbers["first_on_seconds"]
        off = activation.numbers["switched_off_seconds"]
        out += [text["first_on"].format(
            times=", ".join(text["never"] if math.isnan(t) else f"{t:.0f}" for t in first_on),
            off="; ".join(", ".join(f"{t:.0f} s" for t in seconds) or "-" for seconds in off),
        ), ""]  # fmt: skip
        out += [text["conclusion"], ""] + _conclude(text, activation, {}) + [""]
        metrics["activation"] = {"first_on_seconds": [None if math.isnan(t) else t for t in first_on],
                                 "sharp_change_at_lr": activation.conclusions["lr"][0] == "lr_affects_is"}  # fmt: skip
    if "activation" in figures:
        out += [text["figures"], "", f"![activation]({figures['activation']})", ""]

    # 3. Timing.
    cost = timing_facts(timing)
    out += [text["s3"], ""]
    for what in cost.missing:
        out += [text["missing"].format(what=text[f"missing_{what}"]), ""]
    if not cost.missing:
        rows = []
        for r in cost.tables["per_ratio"].to_dict("records"):
            importance = r["run"] == "importance"
            label = f"p = {r['presample']:g}" if importance else text["run_uniform"]
            if importance and r.get("forward_chunk", 0):
                label += f", chunk {int(r['forward_chunk'])}"
            notebook = NOTEBOOK_A_PER_P.get(int(r["presample"])) if importance else None
            rows.append([
                label, f"{1000 * r['measured_seconds']:.1f}",
                f"{1000 * r['presample_seconds']:.1f}" if importance else "-",
                f"{1000 * r['train_step_seconds']:.1f}" if "train_step_seconds" in r else "-",
                _number(r["a"], 3), _number(r["a_per_p"], 3), _number(notebook, 3), f"{r['k']:.2f}",
                f"{1000 * r['predicted_seconds']:.1f}", f"{r['prediction_error']:+.1%}", _number(r["speedup_u"], 3),
                _number(r["tau_th"], 3), f"{r['non_model_share']:.1%} ({r['non_model_share_iqr']:.1%})",
            ])  # fmt: skip
        n = cost.numbers
        values = {
            "slope": 1000 * n.get("presample_slope_seconds_per_p", math.nan),
            "intercept": 1000 * n.get("presample_intercept_seconds", math.nan),
            "r2": n.get("presample_r2", math.nan),
            "corr": n.get("presample_train_step_correlation", math.nan),
            "worst": n["non_model_share_worst"],
            "error": n["prediction_error_worst"],
        }
        out += [_table(text["cols_timing"], rows), "", text["model_note"], "", text["fit"].format(**values), ""]
        out += [text["conclusion"], ""] + _conclude(text, cost, values) + [""]
        metrics["timing"] = {key: (None if isinstance(v, float) and math.isnan(v) else float(v))
                             for key, v in n.items() if isinstance(v, (int, float))}  # fmt: skip
    timing_figures = [f"![{name}]({path})" for name, path in figures.items()
                      if name in ("phases", "presample_fit", "presample_vs_train")]  # fmt: skip
    if timing_figures:
        out += [text["figures"], ""] + timing_figures + [""]

    out += [text["rules"], ""] + [f"- {rule}" for rule in text["rule_list"]] + [""]
    metrics["missing"] = list(dict.fromkeys(comparison.missing + activation.missing + cost.missing))
    return "\n".join(out), metrics
