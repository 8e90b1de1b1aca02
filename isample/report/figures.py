"""The report's seaborn figures; each function returns a matplotlib Figure (the caller saves it) and
takes the words of its labels, `LABELS[lang]` (`labels(lang)` falls back to English on a machine
without a font for Chinese, so no label is drawn as empty boxes)."""

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from isample.names import IMPORTANCE, UNIFORM  # noqa: E402
from isample.report.records import predicted_speedup  # noqa: E402

COLOURS = {
    IMPORTANCE: "tab:red",
    UNIFORM: "tab:blue",
    "reuse": "tab:orange",
    "selective_backprop": "tab:green",
    "infobatch": "tab:purple",
    "rho_loss": "tab:brown",
}
LABELS = {
    "en": {
        IMPORTANCE: "importance sampling",
        UNIFORM: "uniform SGD",
        "reuse": "score reuse",
        "upper_bound_is_off": "IS, kept off",
        "selective_backprop": "Selective-Backprop",
        "infobatch": "InfoBatch",
        "rho_loss": "RHO-LOSS",
        "seed": "seed",
        "lr change": "lr change",
        "training time (s)": "training time (s)",
        "test accuracy": "test accuracy",
        "test loss": "test loss",
        "at equal training time": "{} at equal training time",
        "all methods": "All methods at equal training time",
        "budget axis": "budget: training time per run (s, log scale)",
        "final test accuracy": "final test accuracy",
        "accuracy vs budget": "Final test accuracy against budget (each budget its own schedule)",
        "on trained batches": "on trained batches (biased for IS)",
        "weighted": "importance-weighted (unbiased)",
        "train loss": "train loss (cross-entropy)",
        "two estimates": "Train loss: on the batches trained, and of the training set",
        "training set": "training set, eval mode (the notebook's)",
        "IS share": "share of iterations with IS",
        "when on": "When importance sampling was on",
        "tau": "tau (variance reduction)",
        "tau_th": "tau_th (threshold)",
        "epoch mean": "epoch mean",
        "tau against threshold": "The draw's speed-up s (the rule's), and tau, against the threshold 1 + a",
        "speedup": "s (the draw's predicted speed-up)",
        "tau_training": "tau of the training forward",
        "predicted speed-up": "s / (1 + a)",
        "how far": "The speed-up IS would bring by the rule (above 1: IS pays)",
        "p chosen": "The presample ratio presample: auto trained at",
        "median per iteration": "median time per iteration (ms)",
        "where time goes": "Where an iteration's time goes",
        "measured": "measured (median)",
        "fit": "fit: {:.1f} ms x p {:+.1f} ms, R² = {:.3f}",
        "presample ratio": "presample ratio p = B / b",
        "presample time": "presample time per iteration (ms)",
        "presample against p": "Presample time against the presample ratio",
        "presample forward": "presample forward (ms)",
        "training step": "training step (ms)",
        "forward against step": "Presample forward against training step, per iteration",
    },
    "zh": {
        IMPORTANCE: "重要性采样",
        UNIFORM: "均匀 SGD",
        "reuse": "分数复用",
        "upper_bound_is_off": "重要性采样（关闭）",
        "selective_backprop": "Selective-Backprop",
        "infobatch": "InfoBatch",
        "rho_loss": "RHO-LOSS",
        "seed": "种子",
        "lr change": "学习率变化",
        "training time (s)": "训练时间 (s)",
        "test accuracy": "测试准确率",
        "test loss": "测试损失",
        "at equal training time": "等训练时间下的{}",
        "all methods": "等训练时间下的所有方法",
        "budget axis": "预算：每次运行的训练时间（秒，对数坐标）",
        "final test accuracy": "最终测试准确率",
        "accuracy vs budget": "最终测试准确率与预算（每个预算各自的学习率计划）",
        "on trained batches": "在训练批次上（对重要性采样有偏）",
        "weighted": "重要性加权（无偏）",
        "train loss": "训练损失（交叉熵）",
        "two estimates": "训练损失：训练批次上与训练集上",
        "training set": "训练集，评估模式（笔记中的量）",
        "IS share": "重要性采样迭代占比",
        "when on": "重要性采样何时启用",
        "tau": "tau（方差缩减）",
        "tau_th": "tau_th（阈值）",
        "epoch mean": "每轮平均",
        "tau against threshold": "抽取方式的预测加速 s（规则所用）与 tau 对比阈值 1 + a",
        "speedup": "s（抽取方式的预测加速）",
        "tau_training": "训练前向的 tau",
        "predicted speed-up": "s / (1 + a)",
        "how far": "按规则重要性采样带来的加速（大于 1：重要性采样划算）",
        "p chosen": "presample: auto 训练时选用的预采样比例",
        "median per iteration": "每次迭代的中位时间 (ms)",
        "where time goes": "一次迭代的时间分布",
        "measured": "实测（中位数）",
        "fit": "拟合：{:.1f} ms x p {:+.1f} ms，R² = {:.3f}",
        "presample ratio": "预采样比 p = B / b",
        "presample time": "每次迭代的预采样时间 (ms)",
        "presample against p": "预采样时间与预采样比",
        "presample forward": "预采样前向 (ms)",
        "training step": "训练步 (ms)",
        "forward against step": "每次迭代的预采样前向与训练步",
    },
}
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
)
sns.set_theme(style="whitegrid", context="notebook")


def labels(lang: str) -> dict:
    """The figure words of `lang`; Chinese only where matplotlib has a font that draws it (then used)."""
    if lang == "en":
        return LABELS["en"]
    installed = {font.name for font in font_manager.fontManager.ttflist}
    font = next((name for name in CJK_FONTS if name in installed), None)
    if font is None:
        return LABELS["en"]
    plt.rcParams["font.sans-serif"] = [font, *plt.rcParams["font.sans-serif"]]
    return LABELS[lang]


def _epochs(runs, words: dict) -> pd.DataFrame:
    frames = [
        run.epochs.assign(run=words.get(run.method, run.method), seed=f"{words['seed']} {run.seed}") for run in runs
    ]
    return pd.concat(frames, ignore_index=True)


def lr_changes(runs) -> list[float]:
    """Training seconds where the lr of the first run changed."""
    if not runs:
        return []
    epochs = runs[0].epochs
    changed = epochs["lr"] != epochs["lr"].shift(1)
    return epochs.loc[changed, "train_seconds"].iloc[1:].tolist()


def _mark(axes, seconds, words: dict):
    for ax in np.atleast_1d(axes):
        for i, x in enumerate(seconds):
            ax.axvline(x, color="grey", linestyle=":", linewidth=1.2, label=words["lr change"] if i == 0 else None)


def _palette(runs, words: dict) -> dict:
    """Fixed colours for the known methods, the next free ones for any other."""
    spare = iter(c for c in sns.color_palette("tab10").as_hex() if c not in COLOURS.values())
    methods = dict.fromkeys(run.method for run in runs)
    return {words.get(m, m): COLOURS.get(m) or next(spare) for m in methods}


def accuracy_and_loss(runs, words: dict) -> plt.Figure:
    data = _epochs(runs, words)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    style = "seed" if data["seed"].nunique() > 1 else None
    for ax, column in [(axes[0], "test_accuracy"), (axes[1], "test_loss")]:
        label = words[column.replace("_", " ")]
        sns.lineplot(
            data=data, x="train_seconds", y=column, hue="run", style=style, palette=_palette(runs, words), ax=ax
        )
        ax.set(xlabel=words["training time (s)"], ylabel=label, title=words["at equal training time"].format(label))
    _mark(axes, lr_changes(runs), words)
    axes[1].legend()
    fig.tight_layout()
    return fig


def all_methods(runs, words: dict) -> plt.Figure:
    """Every method's test accuracy against training time: one line per method, each seed drawn thin."""
    data = _epochs(runs, words)
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(
        data=data,
        x="train_seconds",
        y="test_accuracy",
        hue="run",
        units="seed",
        estimator=None,
        palette=_palette(runs, words),
        linewidth=1.2,
        ax=ax,
    )
    _mark(ax, lr_changes(runs), words)
    ax.set(xlabel=words["training time (s)"], ylabel=words["test accuracy"], title=words["all methods"])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_budget(runs, words: dict) -> plt.Figure:
    """Final test accuracy against budget (log axis), the mean over seeds with their spread (sd)."""
    healthy = [r for r in runs if not r.diverged]
    data = pd.DataFrame(
        [
            {"run": words.get(r.method, r.method), "budget": r.budget_seconds, "accuracy": r.final_accuracy}
            for r in healthy
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        data=data,
        x="budget",
        y="accuracy",
        hue="run",
        marker="o",
        errorbar="sd",
        palette=_palette(healthy, words),
        ax=ax,
    )
    ax.set(
        xscale="log",
        xlabel=words["budget axis"],
        ylabel=words["final test accuracy"],
        title=words["accuracy vs budget"],
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def train_loss(runs, words: dict) -> plt.Figure:
    data = _epochs(runs, words)
    long = data.melt(
        id_vars=["run", "seed", "train_seconds"],
        value_vars=[column for column in ("train_loss", "train_loss_weighted", "train_set_loss") if column in data],
        var_name="estimate",
        value_name="loss",
    )
    long["estimate"] = long["estimate"].map(
        {
            "train_loss": words["on trained batches"],
            "train_loss_weighted": words["weighted"],
            "train_set_loss": words["training set"],
        }
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        data=long, x="train_seconds", y="loss", hue="run", style="estimate", palette=_palette(runs, words), ax=ax
    )
    _mark(ax, lr_changes(runs), words)
    ax.set(xlabel=words["training time (s)"], ylabel=words["train loss"], title=words["two estimates"], yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def is_activation(is_runs, words: dict) -> plt.Figure:
    """upper_bound's share of IS iterations per epoch; its draw's predicted speed-up s, tau and the
    training forward's tau against tau_th; the speed-up IS would bring by the rule, s / (1 + a), against 1 (its own metrics); and,
    with presample: auto, the ratio it trained at."""
    data = _epochs(is_runs, words)
    data["predicted_speedup"] = predicted_speedup(data)
    chosen = "presample_ratio" in data and data["presample_ratio"].notna().any()
    fig, axes = plt.subplots(4 if chosen else 3, 1, figsize=(9, 13 if chosen else 10), sharex=True)
    sns.lineplot(data=data, x="train_seconds", y="scored_share", hue="seed", marker="o", ax=axes[0])
    axes[0].set(ylabel=words["IS share"], title=words["when on"])
    names = {"speedup": words["speedup"], "tau": words["tau"], "tau_threshold": words["tau_th"]}
    names["tau_training"] = words["tau_training"]
    tau = data.melt(
        id_vars=["seed", "train_seconds"],
        value_vars=[column for column in names if column in data],
        var_name="quantity",
        value_name="value",
    )
    tau["quantity"] = tau["quantity"].map(names)
    sns.lineplot(data=tau, x="train_seconds", y="value", hue="quantity", style="seed", ax=axes[1])
    axes[1].set(ylabel=words["epoch mean"], title=words["tau against threshold"])
    axes[1].legend(fontsize=8)
    sns.lineplot(data=data, x="train_seconds", y="predicted_speedup", hue="seed", marker="o", ax=axes[2])
    axes[2].axhline(1.0, color="black", linewidth=1)
    axes[2].set(xlabel=words["training time (s)"], ylabel=words["predicted speed-up"], title=words["how far"])
    if chosen:
        sns.lineplot(data=data, x="train_seconds", y="presample_ratio", hue="seed", marker="o", ax=axes[3])
        axes[3].set(xlabel=words["training time (s)"], ylabel=words["presample ratio"], title=words["p chosen"])
    _mark(axes, lr_changes(is_runs), words)
    fig.tight_layout()
    return fig
