"""Section 1, experiments 1-3: importance sampling against uniform at equal training time, paired by
seed: its facts, its named rules and its words."""

import math

import pandas as pd

from isample.names import IMPORTANCE, UNIFORM
from isample.report.common import (
    MIN_SEEDS,
    SMOOTHING_EPOCHS,
    Facts,
    Paired,
    Section,
    comparison_values,
    conclude,
    figure_lines,
    finite_or_none,
    missing_lines,
    number,
    paired,
    table,
    times_to_target,
    with_spread,
)
from isample.report.records import Run

PER_SEED = (
    "train_accuracy",
    "train_accuracy_weighted",
    "train_loss",
    "train_loss_weighted",
    "train_set_loss",
    "train_set_accuracy",
    "test_accuracy",
    "test_loss",
    "best_test_accuracy",
)


def per_seed(runs: list[Run]) -> pd.DataFrame:
    """One row per run: its final numbers, best test accuracy, epochs and share chosen by score."""
    rows = []
    for run in runs:
        final = run.final
        rows.append(
            {
                "method": run.method,
                "seed": run.seed,
                "status": run.status,
                **{column: float(final[column]) for column in PER_SEED if column in final},
                "test_accuracy": run.final_accuracy,  # the whole test set, not the per-epoch subset
                "test_loss": run.final_loss,
                "best_test_accuracy": float(run.epochs["test_accuracy"].max()),
                "epochs": len(run.epochs),
                "scored_share": run.scored_share,
            }
        )
    return pd.DataFrame(rows)


def regime_rule(share: float, pairs: Paired, uniform_runs: list[Run]) -> tuple[str, dict]:
    """IS that never switched on compares two uniform runs: their gap is the noise level, and no claim
    about IS against uniform can be drawn."""
    if share > 0:
        return ("regime_partial" if share < 0.5 else "regime_on"), {}
    gap = 100 * sum(abs(d) for d in pairs.differences) / pairs.n
    if len(uniform_runs) < MIN_SEEDS:
        return "regime_off_one_seed", {"gap": gap}
    spread = 100 * float(pd.Series([run.final_accuracy for run in uniform_runs]).std())
    return "regime_off", {"gap": gap, "spread": spread}


def accuracy_rule(low: float, high: float) -> tuple[str, dict]:
    """A direction needs a 95% interval of the paired differences that excludes zero."""
    if low > 0:
        return "accuracy_is_better", {}
    if high < 0:
        return "accuracy_is_worse", {}
    return "accuracy_within_noise", {}


def train_fit_rule(table_: pd.DataFrame) -> tuple[str, dict]:
    """Train metrics are compared with the sampling bias undone (weighted by 1 / (B q_i)); the plain
    accuracy on hard-example batches looks like a collapse when nothing collapsed."""
    means = table_.groupby("method").mean(numeric_only=True)
    importance, uniform = means.loc[IMPORTANCE], means.loc[UNIFORM]
    if (
        importance["train_accuracy_weighted"] < uniform["train_accuracy_weighted"]
        and importance["train_loss_weighted"] > uniform["train_loss_weighted"]
    ):
        return "train_fit_worse", {}
    if importance["train_accuracy"] < uniform["train_accuracy"]:
        return "train_accuracy_misleading", {}
    return "train_fit_not_worse", {}


def time_rule(times: list[tuple[float, float]], epoch_seconds: float) -> tuple[str, dict]:
    """Time to uniform's best (smoothed) accuracy; a gap under one epoch is no gap, since accuracy is only
    measured at epoch ends."""
    never = sum(math.isnan(mine) for mine, _ in times)
    if never:
        return "tta_never", {"never": never}
    gap = sum(mine - reference for mine, reference in times) / len(times)
    if not abs(gap) >= epoch_seconds:
        return "tta_same", {}
    return ("tta_faster" if gap < 0 else "tta_slower"), {}


def compare_runs(is_runs: list[Run], uniform_runs: list[Run]) -> Facts:
    """The equal-time comparison of IS with uniform, paired by seed."""
    facts = Facts(missing=[m for m, runs in ((IMPORTANCE, is_runs), (UNIFORM, uniform_runs)) if not runs])
    facts.tables["per_seed"] = per_seed(is_runs + uniform_runs)
    if facts.missing:
        return facts
    diverged = [run for run in is_runs + uniform_runs if run.diverged]
    if diverged:  # a diverged run has no final accuracy worth comparing; that it diverged is the result
        facts.numbers["diverged"] = [(run.method, run.seed, run.status) for run in diverged]
        facts.conclusions["diverged"] = ("runs_diverged", {})
        return facts
    pairs = paired(is_runs, uniform_runs)
    if not pairs.n:
        facts.missing.append("paired seeds")
        return facts
    times = times_to_target(pairs, 1.0)
    low, high = pairs.interval
    epochs = pd.concat([run.epochs["train_seconds"].diff() for run in uniform_runs])
    facts.numbers.update(
        seeds=pairs.n,
        accuracy_difference=pairs.difference,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        loss_difference=float(pd.Series([r.final_loss - u.final_loss for r, u in pairs.pairs]).mean()),
        is_share=float(pd.Series([run.scored_share for run in is_runs]).mean()),
        epoch_seconds=float(epochs.median()) if epochs.notna().any() else math.nan,
        time_to_accuracy_is=float(pd.Series([mine for mine, _ in times]).mean()),
        time_to_accuracy_uniform=float(pd.Series([reference for _, reference in times]).mean()),
    )
    facts.tables["time_to_accuracy"] = pd.DataFrame(times, columns=[IMPORTANCE, UNIFORM])
    facts.conclusions["regime"] = regime_rule(facts.numbers["is_share"], pairs, uniform_runs)
    if facts.conclusions["regime"][0].startswith("regime_off"):
        return facts
    if pairs.n < MIN_SEEDS:  # a direction (higher, sooner, fitted worse) needs MIN_SEEDS paired seeds
        facts.conclusions["accuracy"] = ("one_seed", {})
        return facts
    facts.conclusions["accuracy"] = accuracy_rule(low, high)
    facts.conclusions["train_metrics"] = train_fit_rule(facts.tables["per_seed"])
    facts.conclusions["time_to_accuracy"] = time_rule(times, facts.numbers["epoch_seconds"])
    return facts


def _rows(words: dict, facts: Facts) -> list[list]:
    per_seed_table, times = facts.tables["per_seed"], facts.tables.get("time_to_accuracy")
    rows = []
    for method in (IMPORTANCE, UNIFORM):
        group = per_seed_table[per_seed_table["method"] == method] if len(per_seed_table) else per_seed_table
        if group.empty:
            continue
        cells = [words[f"method_{method}"], len(group)]
        cells += [with_spread(group[column].mean(), group[column].std(), len(group)) for column in PER_SEED]
        cells.append(number(times[method].mean(), 0) if times is not None else "-")
        cells += [f"{group['scored_share'].mean():.2f}", f"{group['epochs'].mean():.0f}"]
        rows.append(cells)
    return rows


def section(words: dict, is_runs: list[Run], uniform_runs: list[Run], figures: dict, forced: Section) -> Section:
    """forced: IS forced on beside them (isample.report.forced), its lines before the figures."""
    facts = compare_runs(is_runs, uniform_runs)
    out = [words["s1"], ""] + missing_lines(words, facts)
    if rows := _rows(words, facts):
        out += [words["key"], "", table(words["cols_runs"], rows), "", words["train_note"], ""]
    numbers, metrics = facts.numbers, {}
    if "diverged" in numbers:
        described = "; ".join(
            f"{words[f'method_{m}']} seed {seed}: {status}" for m, seed, status in numbers["diverged"]
        )
        out += [words["conclusion"], ""] + conclude(words, facts, {"diverged_text": described}) + [""]
        metrics = {"diverged": [f"{m} seed {seed}: {status}" for m, seed, status in numbers["diverged"]]}
    elif "accuracy_difference" in numbers:
        values = comparison_values(numbers)
        interval = words["ci"].format(**values) if numbers["seeds"] > 1 else ""
        out += [words["difference"].format(ci=interval, **values), "", words["conclusion"], ""]
        out += conclude(words, facts, values) + [""]
        metrics = finite_or_none(numbers)
    out += forced.lines + figure_lines(words, figures, ("accuracy", "train_loss"), seeds=len({r.seed for r in is_runs}))
    metrics = ({"comparison": metrics} if metrics else {}) | forced.metrics
    return Section(out, metrics, facts.missing + forced.missing)


TEXT = {
    "en": {
        "s1": "## 1. Equal training time: importance sampling against uniform (notebook experiments 1-3)",
        "cols_runs": [
            "method",
            "seeds",
            "train accuracy",
            "weighted train accuracy",
            "train loss",
            "unbiased train loss",
            "training-set loss (eval mode)",
            "training-set accuracy (eval mode)",
            "final test accuracy (whole test set)",
            "final test loss",
            "best test accuracy (per-epoch subset)",
            "time to uniform's best accuracy (s)",
            "IS share",
            "epochs",
        ],
        "difference": "IS minus uniform, final test accuracy: {diff:+.2f} points over {n} seed(s){ci}.",
        "ci": "; 95% confidence interval [{low:+.2f}, {high:+.2f}]",
        "train_note": "Train accuracy and loss are measured on the batches actually trained (what the notebook "
        "logged, biased towards hard examples for IS); the unbiased train loss and the weighted train "
        "accuracy weight each example by 1 / (B q_i), undoing that bias. The training-set loss and accuracy are "
        "the notebook's: the model in eval mode on the training set (or its class-stratified subset, "
        "`data.train_eval_subset`), not augmented, after the last epoch.",
        "one_seed": "One seed: no direction is drawn from test accuracy, time to accuracy or train metrics, since "
        "the difference between two seeds of the same method can be as large (the figures show this one "
        "seed). For a finding, run several seeds: `dvc exp run -S 'train.seeds=[0,1,2]'`.",
        "accuracy_is_better": "Importance sampling ends with higher test accuracy than uniform, by {diff:+.2f} "
        "points; the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference "
        "is larger than the seed noise.",
        "accuracy_is_worse": "Importance sampling ends with lower test accuracy than uniform, by {diff:+.2f} points; "
        "the 95% interval [{low:+.2f}, {high:+.2f}] excludes zero, so the difference is larger "
        "than the seed noise.",
        "accuracy_within_noise": "The final test accuracies differ by {diff:+.2f} points, but the 95% interval "
        "[{low:+.2f}, {high:+.2f}] includes zero: importance sampling and uniform cannot be "
        "told apart at this number of seeds.",
        "regime_off": "IS never switched on (its predicted speed-up stayed below tau_th = 1 + a): both runs were uniform SGD, so no claim "
        "about importance sampling against uniform is drawn. Uniform runs of different seeds ended "
        "{spread:.2f} points of test accuracy apart (standard deviation): that is the noise level of "
        "this setting. IS switches on once the training set is well fitted: give it a longer "
        "budget (`train.budgets`) or earlier `train.lr_milestones`, and a presample cheaper than "
        "sqrt(p) - 1 of a training step: no draw from B = p b predicts a speed-up above sqrt(p).",
        "regime_off_one_seed": "IS never switched on (its predicted speed-up stayed below tau_th = 1 + a): both runs were uniform SGD, so no "
        "claim about importance sampling against uniform is drawn. They share their seed, "
        "so their gap ({gap:.2f} points) only shows how many iterations each fitted in the "
        "budget; the noise level needs several seeds: `dvc exp run -S "
        "'train.seeds=[0,1,2]'`. IS switches on once the training set is well fitted: give "
        "it a longer budget (`train.budgets`) or earlier `train.lr_milestones`, and a presample cheaper "
        "than sqrt(p) - 1 of a training step: no draw from B = p b predicts a speed-up above sqrt(p).",
        "regime_partial": "IS was on in {share:.1%} of the iterations: the run compares partly importance-sampled "
        "training with uniform.",
        "regime_on": "IS was on in {share:.1%} of the iterations.",
        "train_accuracy_misleading": "IS train accuracy on the sampled examples is lower than uniform's, but with "
        "the sampling bias undone (weighted accuracy and unbiased loss) IS fitted the "
        "training set no worse: the plain train accuracy is not a meaningful metric "
        "for IS (notebook, experiment 2).",
        "train_fit_worse": "IS weighted train accuracy is lower and its unbiased train loss is higher than uniform's: "
        "IS fitted the training set less well within the budget.",
        "train_fit_not_worse": "With the sampling bias undone, IS fitted the training set no worse than uniform.",
        "runs_diverged": "Diverged (loss or scores became NaN or infinite): {diverged_text}. No accuracy conclusion "
        "is drawn from a diverged run; that it diverged is the result.",
        "tta_never": "IS did not reach uniform's best test accuracy within its budget on {never} seed(s).",
        "tta_same": "IS and uniform reached uniform's best test accuracy within one epoch's training time "
        "of each other ({tta_is:.0f} s and {tta_uniform:.0f} s; an epoch takes {epoch:.0f} s): the same.",
        "tta_faster": "IS reached uniform's best test accuracy after {tta_is:.0f} s, uniform after "
        "{tta_uniform:.0f} s: IS got there sooner.",
        "tta_slower": "IS reached uniform's best test accuracy after {tta_is:.0f} s, uniform after "
        "{tta_uniform:.0f} s: IS got there later.",
    },
    "zh": {
        "s1": "## 1. 等训练时间：重要性采样对比均匀采样（笔记实验 1-3）",
        "cols_runs": [
            "方法",
            "种子数",
            "训练准确率",
            "加权训练准确率",
            "训练损失",
            "无偏训练损失",
            "训练集损失（评估模式）",
            "训练集准确率（评估模式）",
            "最终测试准确率（全部测试集）",
            "最终测试损失",
            "最佳测试准确率（每轮子集）",
            "达到均匀采样最佳准确率的时间 (s)",
            "重要性采样占比",
            "轮数",
        ],
        "difference": "最终测试准确率，重要性采样减均匀：{diff:+.2f} 个百分点，{n} 个种子{ci}。",
        "ci": "；95% 置信区间 [{low:+.2f}, {high:+.2f}]",
        "train_note": "训练准确率和损失在实际训练的批次上测得（即笔记记录的量，对重要性采样偏向难样本）；"
        "无偏训练损失和加权训练准确率对每个样本按 1 / (B q_i) 加权，消除这一偏差。训练集损失和准确率是笔记中的量："
        "最后一轮后模型在评估模式下、不做增强，在训练集（或其按类分层的子集，`data.train_eval_subset`）上测得。",
        "one_seed": "只有一个种子：不从测试准确率、达到准确率的时间或训练指标得出方向，因为同一方法两个种子之间的差异"
        "可能同样大（图中为这一个种子）。要得出结论，请运行多个种子：`dvc exp run -S 'train.seeds=[0,1,2]'`。",
        "accuracy_is_better": "重要性采样的最终测试准确率高于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
        "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_is_worse": "重要性采样的最终测试准确率低于均匀采样 {diff:+.2f} 个百分点；95% 区间 "
        "[{low:+.2f}, {high:+.2f}] 不含零，差异大于种子噪声。",
        "accuracy_within_noise": "最终测试准确率相差 {diff:+.2f} 个百分点，但 95% 区间 [{low:+.2f}, {high:+.2f}] "
        "包含零：在这个种子数下无法区分重要性采样与均匀采样。",
        "regime_off": "重要性采样从未启用（其预测加速始终未超过 tau_th = 1 + a）：两次运行都是均匀 SGD，因此不得出重要性采样与均匀采样"
        "对比的结论。不同种子的均匀运行最终测试准确率相差 {spread:.2f} 个百分点（标准差）：这就是该设置下的"
        "噪声水平。训练集拟合得足够好时重要性采样才会启用：可增加预算（`train.budgets`）或提前 `train.lr_milestones`，"
        "并把预采样的成本控制在训练步的 sqrt(p) - 1 以内：从 B = p b 中抽取，预测加速都不超过 sqrt(p)。",
        "regime_off_one_seed": "重要性采样从未启用（其预测加速始终未超过 tau_th = 1 + a）：两次运行都是均匀 SGD，因此不得出重要性采样与"
        "均匀采样对比的结论。两者种子相同，其差距（{gap:.2f} 个百分点）只反映各自在预算内完成的迭代数；"
        "噪声水平需要多个种子：`dvc exp run -S 'train.seeds=[0,1,2]'`。训练集拟合得足够好时重要性"
        "采样才会启用：可增加预算（`train.budgets`）或提前 `train.lr_milestones`，"
        "并把预采样的成本控制在训练步的 sqrt(p) - 1 以内：从 B = p b 中抽取，预测加速都不超过 sqrt(p)。",
        "regime_partial": "重要性采样在 {share:.1%} 的迭代中启用：部分迭代使用了重要性采样。",
        "regime_on": "重要性采样在 {share:.1%} 的迭代中启用。",
        "train_accuracy_misleading": "重要性采样在采样样本上的训练准确率低于均匀采样，但消除采样偏差后（加权准确率"
        "和无偏损失）其对训练集的拟合并不更差：普通训练准确率对重要性采样没有意义（笔记实验 2）。",
        "train_fit_worse": "重要性采样的加权训练准确率更低，无偏训练损失也更高：在预算内对训练集的拟合更差。",
        "train_fit_not_worse": "消除采样偏差后，重要性采样对训练集的拟合不比均匀采样差。",
        "runs_diverged": "发散（损失或分数变为 NaN 或无穷大）：{diverged_text}。不从发散的运行得出准确率结论；"
        "发散本身就是结果。",
        "tta_never": "在 {never} 个种子上，重要性采样在预算内未达到均匀采样的最佳测试准确率。",
        "tta_same": "重要性采样与均匀采样达到均匀采样最佳测试准确率的时间相差不到一轮训练时间（{tta_is:.0f} s 与 "
        "{tta_uniform:.0f} s；一轮需 {epoch:.0f} s）：相同。",
        "tta_faster": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最佳测试准确率，均匀采样在 {tta_uniform:.0f} s："
        "重要性采样更快。",
        "tta_slower": "重要性采样在 {tta_is:.0f} s 达到均匀采样的最佳测试准确率，均匀采样在 {tta_uniform:.0f} s："
        "重要性采样更慢。",
    },
}
RULES = {
    "en": [
        f"Accuracy: the mean over seeds of IS minus uniform final test accuracy; a direction needs at least "
        f"{MIN_SEEDS} paired seeds, and a Student-t 95% interval of the paired differences that excludes zero.",
        "Regime: the share of IS iterations over the whole run (0: never on, and then no IS-versus-uniform claim "
        "at all; below 50%: partly).",
        "Train metrics: compared with the sampling bias undone; IS fitted worse when its weighted train accuracy "
        "is lower and its unbiased train loss higher than uniform's.",
        "Divergence: a run whose loss or scores became NaN or infinite is shown as diverged and no accuracy "
        "conclusion is drawn from it.",
        f"Time to accuracy (as in section 4): first epoch end at which a run's test accuracy, averaged over "
        f"the last {SMOOTHING_EPOCHS} epochs, reaches uniform's best such average; mean times less than one "
        "epoch's training time apart are the same.",
    ],
    "zh": [
        f"准确率：各种子上重要性采样与均匀采样最佳测试准确率之差的均值；得出方向至少需要 {MIN_SEEDS} 个配对种子，"
        "且配对差值的 Student-t 95% 区间不含零。",
        "状态：整个运行中重要性采样迭代的占比（0：从未启用，此时不作任何对比结论；低于 50%：部分启用）。",
        "训练指标：在消除采样偏差后比较；加权训练准确率更低且无偏训练损失更高时，重要性采样拟合更差。",
        "发散：损失或分数变为 NaN 或无穷大的运行标为发散，不从中得出准确率结论。",
        f"达到准确率的时间（与第 4 节相同）：运行的测试准确率（最近 {SMOOTHING_EPOCHS} 轮的平均）首次达到均匀采样"
        "该平均的最佳值时的训练时间；平均时间相差不到一轮训练时间即视为相同。",
    ],
}
