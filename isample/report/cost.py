"""Section 3, experiments 6-8: what the sampling costs: per-phase times, a per ratio, the presample-time
fit and both cost models against the measurement: its facts, its named rules and its words."""

import math

import pandas as pd

from isample.names import IMPORTANCE
from isample.report.common import (
    Facts,
    Section,
    conclude,
    figure_lines,
    method_name,
    milliseconds,
    missing_lines,
    number,
    percent,
    table,
)
from isample.report.records import fit_values

NOTEBOOK_A_PER_P = {2: 0.55 / 2, 5: 1.25 / 5}  # experiment 8: presample time / training time per p
LINEAR_R2 = 0.95  # presample time is linear in p when the fit's R^2 reaches this
PROPORTIONAL_INTERCEPT = 0.1  # ...and proportional when |intercept| is at most this share of the largest time
NON_MODEL_NEGLIGIBLE = 0.05  # non-model time can be ignored at most this share of an iteration
STRONG_CORRELATION = 0.7
PREDICTION_TOLERANCE = 0.10
MIN_RATIOS = 2  # presample ratios needed before a line is fitted through them


def fit_rule(ratios: int, fit: dict, largest_p: float) -> str:
    """A line through presample times needs MIN_RATIOS ratios; then linear, and proportional or offset."""
    r2, intercept = fit.get("presample_r2", math.nan), fit.get("presample_intercept_seconds", math.nan)
    largest = fit.get("presample_slope_seconds_per_p", math.nan) * largest_p + intercept
    if ratios < MIN_RATIOS:
        return "fit_one_ratio"
    if not r2 >= LINEAR_R2:
        return "presample_not_linear"
    return (
        "presample_proportional"
        if abs(intercept) <= PROPORTIONAL_INTERCEPT * abs(largest)
        else "presample_linear_offset"
    )


def prediction_rule(error: float, measured_error: float) -> str:
    """Which cost model predicts every measured ratio within PREDICTION_TOLERANCE."""
    if math.isnan(error) or math.isnan(measured_error):  # a model's predictions are not in the record
        return "prediction_unknown"
    notebook, measured = error <= PREDICTION_TOLERANCE, measured_error <= PREDICTION_TOLERANCE
    return {
        (True, True): "both_models_fit",
        (False, True): "measured_model_fits",
        (True, False): "notebook_model_fits",
        (False, False): "neither_model_fits",
    }[(notebook, measured)]


def timing_facts(timing: dict[str, pd.DataFrame] | None) -> Facts:
    facts = Facts()
    if timing is None:
        facts.missing.append("timing")
        return facts
    per_ratio = timing["per_ratio"]
    importance = per_ratio[per_ratio["run"] == IMPORTANCE]
    fit = fit_values(timing)
    facts.tables["per_ratio"] = per_ratio
    facts.numbers.update(fit, ratios=importance["presample"].nunique())
    ratios = ", ".join(f"{p:g}" for p in sorted(importance["presample"].unique()))
    facts.conclusions["fit"] = (fit_rule(facts.numbers["ratios"], fit, importance["presample"].max()), {"p": ratios})
    worst = facts.numbers["non_model_share_worst"] = float(importance["non_model_share"].max())
    if math.isnan(worst):
        facts.conclusions["non_model"] = ("non_model_unknown", {})
    else:
        facts.conclusions["non_model"] = (
            "non_model_negligible" if worst <= NON_MODEL_NEGLIGIBLE else "non_model_large",
            {},
        )
    correlation = fit.get("presample_train_step_correlation", math.nan)
    if math.isnan(correlation):  # fewer than three iterations per ratio, or no spread in them
        facts.conclusions["correlation"] = ("passes_no_correlation", {})
    else:
        strong = correlation >= STRONG_CORRELATION
        facts.conclusions["correlation"] = ("passes_correlated" if strong else "passes_not_correlated", {})
    train_step = per_ratio["train_step_seconds"]  # the same b-example step in every row: a check of the clock
    facts.numbers["train_step_spread"] = float((train_step.max() - train_step.min()) / train_step.median())
    if "measured_seconds_low" in per_ratio:  # records before the timing stage gave the median's interval
        half = (
            (per_ratio["measured_seconds_high"] - per_ratio["measured_seconds_low"]) / 2 / per_ratio["measured_seconds"]
        )
        facts.numbers["median_interval_worst"] = float(half.max())
    facts.numbers["prediction_error_worst"] = error = float(importance["prediction_error"].abs().max())
    measured = float(importance["prediction_error_measured"].abs().max())
    facts.numbers["prediction_error_measured_worst"] = measured
    facts.conclusions["prediction"] = (prediction_rule(error, measured), {})
    if facts.numbers.get("median_interval_worst", 0.0) > PREDICTION_TOLERANCE:  # a loaded machine: no judging
        facts.conclusions["prediction"] = ("prediction_too_noisy", {"interval": facts.numbers["median_interval_worst"]})
    loading = loading_conclusion(importance)
    if loading is not None:
        facts.conclusions["loading"] = loading
    return facts


def loading_conclusion(importance: pd.DataFrame) -> tuple[str, dict] | None:
    """With examples read from disk: whether loading B examples or their forward costs an IS iteration
    more, at the largest ratio; None for data held in memory (nothing loaded)."""
    if "time_data_loading" not in importance or not (importance["time_data_loading"] > 0).any():
        return None
    largest = importance.loc[importance["presample"].idxmax()]
    loading, forward = float(largest["time_data_loading"]), float(largest["time_presample_forward"])
    rule = "loading_dominates" if loading > forward else "forward_dominates"
    return rule, {"loading": 1000 * loading, "forward": 1000 * forward, "p_max": float(largest["presample"])}


def _row(words: dict, r: dict) -> list:
    importance = r["run"] == IMPORTANCE
    label = f"p = {r['presample']:g}" if importance else method_name(words, r["run"])
    if importance and r.get("forward_chunk", 0):
        label += f", chunk {int(r['forward_chunk'])}"
    notebook = NOTEBOOK_A_PER_P.get(int(r["presample"])) if importance else None
    return [
        label,
        milliseconds(r["measured_seconds"]),
        milliseconds(r.get("presample_seconds", math.nan)),
        milliseconds(r["train_step_seconds"]),
        number(r["a"], 3),
        number(r.get("a_per_p", math.nan), 3),
        number(notebook, 3),
        number(r["k"], 2),
        milliseconds(r["predicted_seconds"]),
        percent(r["prediction_error"]),
        milliseconds(r.get("predicted_seconds_measured")),
        percent(r.get("prediction_error_measured")),
        number(r.get("speedup_u", math.nan), 3),
        number(r.get("tau_th", math.nan), 3),
        _share(r["non_model_share"], r["non_model_share_iqr"]),
    ]


def _share(value: float, iqr: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%} ({iqr:.1%})"


def _precision_line(words: dict, per_ratio: pd.DataFrame, numbers: dict) -> str:
    """How far the measurement itself can be trusted: the train step's spread across the rows (the same
    work in each), and the widest interval of a median iteration time."""
    values = {
        "low": 1000 * per_ratio["train_step_seconds"].min(),
        "high": 1000 * per_ratio["train_step_seconds"].max(),
        "spread": numbers["train_step_spread"],
        "interval": numbers.get("median_interval_worst", math.nan),
    }
    line = words["train_step_spread"].format(**values)
    if math.isnan(values["interval"]):  # a record from before the stage gave the interval
        return line
    return f"{line} {words['median_interval'].format(n=int(per_ratio['iterations'].min()), **values)}"


def section(words: dict, timing: dict[str, pd.DataFrame] | None, figures: dict) -> Section:
    facts = timing_facts(timing)
    out = [words["s3"], ""] + missing_lines(words, facts)
    metrics = {}
    if not facts.missing:
        n = facts.numbers
        values = {
            "slope": 1000 * n.get("presample_slope_seconds_per_p", math.nan),
            "intercept": 1000 * n.get("presample_intercept_seconds", math.nan),
            "r2": n.get("presample_r2", math.nan),
            "corr": n.get("presample_train_step_correlation", math.nan),
            "worst": n["non_model_share_worst"],
            "error": n["prediction_error_worst"],
            "measured_error": n["prediction_error_measured_worst"],
        }
        rows = [_row(words, r) for r in facts.tables["per_ratio"].to_dict("records")]
        out += [table(words["cols_timing"], rows), "", words["model_note"], ""]
        out += [_precision_line(words, facts.tables["per_ratio"], n), ""]
        if facts.conclusions["fit"][0] != "fit_one_ratio":
            out += [words["fit"].format(**values), ""]
        if not math.isnan(values["corr"]):
            out += [words["correlation"].format(**values), ""]
        out += [words["conclusion"], ""] + conclude(words, facts, values) + [""]
        metrics["timing"] = {
            key: (None if isinstance(v, float) and math.isnan(v) else float(v))
            for key, v in n.items()
            if isinstance(v, (int, float))
        }
    out += figure_lines(words, figures, ("phases", "presample_fit", "presample_vs_train"))
    return Section(out, metrics, facts.missing)


TEXT = {
    "en": {
        "s3": "## 3. What the sampling costs (notebook experiments 6-8)",
        "cols_timing": [
            "configuration",
            "iteration (ms)",
            "presample (ms)",
            "train step (ms)",
            "a",
            "a / p",
            "notebook a / p",
            "k = T/t",
            "notebook model (ms)",
            "notebook model's error",
            "measured model (ms)",
            "measured model's error",
            "u",
            "tau_th = 1 + a",
            "non-model share (IQR)",
        ],
        "train_step_spread": "The train step, the same b-example forward, backward and optimizer step in every "
        "row, measured {low:.1f}-{high:.1f} ms across the rows: a spread of {spread:.0%} of its median, the "
        "measurement's own noise.",
        "median_interval": "Each row's iteration time is a median over {n} or more iterations, the configurations "
        "measured in turns; its 95% interval is at most ±{interval:.0%} wide.",
        "fit": "Presample time = {slope:.2f} ms x p {intercept:+.2f} ms (R² = {r2:.3f}).",
        "correlation": "Correlation of presample and training-step times across the iterations of a ratio (median "
        "over ratios): r = {corr:.2f}.",
        "model_note": "t and T are the training step's forward and backward time per example, k = T / t; a is the "
        "measured presample time over the training-step time (with loading B when examples come from disk). "
        "Notebook model: (p + 1 + k) b t. Measured model: p b (t_p + t_s) + b (t + T) + optimizer step + "
        "non-model time + (p - 1) b t_l, with t_p, t_s and t_l the presample forward's, the bound's and "
        "loading's own time per example (medians over the ratios; t_l = 0 in memory) and the "
        "rest from the uniform iteration. u = (p + k + 1) / (p (1 + k)) is the speed-up against "
        "full-batch GD.",
        "presample_proportional": "Presample time is proportional to p (R² = {r2:.3f}, intercept {intercept:+.2f} "
        "ms): the notebook's experiment 8 holds; a smaller p makes IS cheaper.",
        "presample_linear_offset": "Presample time is linear in p (R² = {r2:.3f}) with a fixed cost of "
        "{intercept:+.2f} ms per iteration.",
        "presample_not_linear": "Presample time is not linear in p (R² = {r2:.3f}): the measurement is too noisy "
        "or the hardware is not saturated.",
        "fit_one_ratio": "Only one presample ratio was measured (p = {p}): no line is fitted and nothing is said about "
        "how presample time grows with p. Measure several: `dvc exp run -S "
        "'timing.presamples=[2,3,5,7]'`.",
        "non_model_negligible": "Non-model time is at most {worst:.1%} of an IS iteration at every ratio: it can be "
        "ignored (notebook, experiment 7).",
        "non_model_unknown": "The record holds no non-model share, so whether non-model time matters cannot be told.",
        "prediction_unknown": "The record holds no prediction error for one of the cost models, so neither can be "
        "said to fit.",
        "non_model_large": "Non-model time reaches {worst:.1%} of an IS iteration: it is not negligible (notebook, "
        "experiment 6).",
        "passes_correlated": "The presample forward and training-step times move together (r = {corr:.2f}).",
        "passes_not_correlated": "The presample forward and training-step times are not strongly correlated "
        "(r = {corr:.2f}).",
        "passes_no_correlation": "Too few measured iterations per ratio to correlate presample and training-step "
        "times: raise `timing.iterations`.",
        "both_models_fit": "Both cost models predict the iteration time within tolerance at every ratio: the notebook's "
        "(p + 1 + k) b t up to {error:.0%} off, the measured one up to {measured_error:.0%}.",
        "measured_model_fits": "The measured cost model fits: it predicts every ratio within {measured_error:.0%}, "
        "while the notebook's (p + 1 + k) b t misses by up to {error:.0%}, because it prices "
        "the presample forward (no autograd, in chunks) at the training forward's t.",
        "notebook_model_fits": "The notebook's cost model predicts every ratio within {error:.0%}; the measured one "
        "misses by up to {measured_error:.0%}.",
        "prediction_too_noisy": "The iteration times' 95% intervals reach ±{interval:.0%}, wider than the "
        f"{PREDICTION_TOLERANCE:.0%} a cost model is judged by: rerun the timing stage on a quiet machine before judging "
        "either model.",
        "neither_model_fits": "Neither cost model predicts every ratio within tolerance: the notebook's misses by up "
        "to {error:.0%}, the measured one by up to {measured_error:.0%}.",
        "loading_dominates": "Examples come from disk: at p = {p_max:g}, loading them took {loading:.1f} ms of an IS "
        "iteration against {forward:.1f} ms for the presample forward, so loading dominates what IS pays "
        "(more DataLoader workers, `data.workers`, or faster storage lower it).",
        "forward_dominates": "Examples come from disk: at p = {p_max:g}, loading them took {loading:.1f} ms of an IS "
        "iteration against {forward:.1f} ms for the presample forward, so the forward dominates what IS pays.",
    },
    "zh": {
        "s3": "## 3. 采样本身的开销（笔记实验 6-8）",
        "cols_timing": [
            "配置",
            "迭代 (ms)",
            "预采样 (ms)",
            "训练步 (ms)",
            "a",
            "a / p",
            "笔记 a / p",
            "k = T/t",
            "笔记模型 (ms)",
            "笔记模型误差",
            "实测模型 (ms)",
            "实测模型误差",
            "u",
            "tau_th = 1 + a",
            "非模型时间占比 (IQR)",
        ],
        "train_step_spread": "训练步（每行都是同样 b 个样本的前向、反向和优化器步）在各行间测得 {low:.1f}-{high:.1f} ms："
        "相差其中位数的 {spread:.0%}，即测量本身的噪声。",
        "median_interval": "每行的迭代时间是至少 {n} 次迭代的中位数，各配置轮流测量；其 95% 区间至多 ±{interval:.0%}。",
        "fit": "预采样时间 = {slope:.2f} ms x p {intercept:+.2f} ms（R² = {r2:.3f}）。",
        "correlation": "同一比例各迭代中预采样与训练步时间的相关系数（各比例的中位数）：r = {corr:.2f}。",
        "model_note": "t 和 T 是训练步中每个样本的前向和反向时间，k = T / t；a 是测得的预采样时间与训练步时间之比"
        "（样本从磁盘读取时包括读取 B 个样本）。笔记模型：(p + 1 + k) b t。实测模型：p b (t_p + t_s) + b (t + T) + "
        "优化器步 + 非模型时间 + (p - 1) b t_l，其中 t_p、t_s 和 t_l 是预采样前向、上界计算和读取各自的每样本时间"
        "（各比例的中位数；数据在内存中时 t_l = 0），其余取自均匀迭代。"
        "u = (p + k + 1) / (p (1 + k)) 是相对全批量梯度下降的加速比。",
        "presample_proportional": "预采样时间与 p 成正比（R² = {r2:.3f}，截距 {intercept:+.2f} ms）：笔记实验 8 "
        "成立；更小的 p 使重要性采样更便宜。",
        "presample_linear_offset": "预采样时间与 p 成线性关系（R² = {r2:.3f}），每次迭代有 {intercept:+.2f} ms 的固定开销。",
        "presample_not_linear": "预采样时间与 p 不成线性关系（R² = {r2:.3f}）：测量噪声过大或硬件未饱和。",
        "fit_one_ratio": "只测量了一个预采样比例（p = {p}）：不拟合直线，也不判断预采样时间如何随 p 增长。请测量多个："
        "`dvc exp run -S 'timing.presamples=[2,3,5,7]'`。",
        "non_model_negligible": "在每个比例下，非模型时间最多占重要性采样迭代的 {worst:.1%}：可以忽略（笔记实验 7）。",
        "non_model_large": "非模型时间最多占重要性采样迭代的 {worst:.1%}：不可忽略（笔记实验 6）。",
        "non_model_unknown": "记录中没有非模型时间占比，无法判断非模型时间是否重要。",
        "prediction_unknown": "记录中缺少某个代价模型的预测误差，因此无法说哪个模型符合。",
        "passes_correlated": "预采样前向与训练步时间同步变化（r = {corr:.2f}）。",
        "passes_not_correlated": "预采样前向与训练步时间没有强相关（r = {corr:.2f}）。",
        "passes_no_correlation": "每个比例测得的迭代太少，无法计算预采样与训练步时间的相关性：请增加 `timing.iterations`。",
        "both_models_fit": "两个代价模型在每个比例下都在容差内：笔记模型 (p + 1 + k) b t 最多相差 {error:.0%}，"
        "实测模型最多相差 {measured_error:.0%}。",
        "measured_model_fits": "实测代价模型符合：它在每个比例下的预测误差都在 {measured_error:.0%} 以内，而笔记模型 "
        "(p + 1 + k) b t 最多相差 {error:.0%}，因为它按训练前向的 t 计算无梯度、分块的预采样前向。",
        "notebook_model_fits": "笔记代价模型在每个比例下的预测误差都在 {error:.0%} 以内；实测模型最多相差 "
        "{measured_error:.0%}。",
        "prediction_too_noisy": "迭代时间的 95% 区间达到 ±{interval:.0%}，宽于评判代价模型所用的 "
        f"{PREDICTION_TOLERANCE:.0%}：请在空闲的机器上重跑计时阶段后再评判两个模型。",
        "neither_model_fits": "两个代价模型都未能在每个比例下落在容差内：笔记模型最多相差 {error:.0%}，实测模型最多相差 "
        "{measured_error:.0%}。",
        "loading_dominates": "样本从磁盘读取：在 p = {p_max:g} 时，读取样本占一次重要性采样迭代的 {loading:.1f} ms，"
        "预采样前向占 {forward:.1f} ms，因此读取是重要性采样开销的主要部分（增加 DataLoader 进程 `data.workers` "
        "或使用更快的存储可降低它）。",
        "forward_dominates": "样本从磁盘读取：在 p = {p_max:g} 时，读取样本占一次重要性采样迭代的 {loading:.1f} ms，"
        "预采样前向占 {forward:.1f} ms，因此预采样前向是重要性采样开销的主要部分。",
    },
}
RULES = {
    "en": [
        f"Presample time: fitted only over at least {MIN_RATIOS} ratios; linear when R² >= {LINEAR_R2}; "
        f"proportional when also |intercept| <= {PROPORTIONAL_INTERCEPT:.0%} of the time at the largest p.",
        f"Non-model time: negligible when at most {NON_MODEL_NEGLIGIBLE:.0%} of the median IS iteration at "
        "every ratio.",
        f"Cost models: a model fits when it predicts every measured ratio within {PREDICTION_TOLERANCE:.0%}; "
        f"correlation strong at r >= {STRONG_CORRELATION}.",
        "Data from disk: loading dominates when, at the largest ratio, the median loading time of an IS iteration "
        "exceeds its presample forward's.",
    ],
    "zh": [
        f"预采样时间：至少 {MIN_RATIOS} 个比例时才拟合；R² >= {LINEAR_R2} 时为线性；若截距绝对值不超过最大 p 处"
        f"时间的 {PROPORTIONAL_INTERCEPT:.0%}，则为成正比。",
        f"非模型时间：在每个比例下不超过重要性采样迭代中位时间的 {NON_MODEL_NEGLIGIBLE:.0%} 时可忽略。",
        f"代价模型：在每个测得的比例下预测误差都在 {PREDICTION_TOLERANCE:.0%} 以内即为符合；r >= {STRONG_CORRELATION} "
        "为强相关。",
        "从磁盘读取的数据：若在最大比例下一次重要性采样迭代的读取中位时间超过其预采样前向时间，则读取占主导。",
    ],
}
