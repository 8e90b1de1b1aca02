"""The report's seaborn figures; each function returns a matplotlib Figure (the caller saves it) and
takes the words of its labels, `LABELS[lang]` (`labels(lang)` falls back to English on a machine
without a font for Chinese, so no label is drawn as empty boxes)."""

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from isample.names import IMPORTANCE, UNIFORM  # noqa: E402
from isample.report.figure_words import LABELS  # noqa: E402
from isample.report.records import FORCED_ARM, predicted_speedup  # noqa: E402

COLOURS = {
    IMPORTANCE: "tab:red",
    UNIFORM: "tab:blue",
    "reuse": "tab:orange",
    "selective_backprop": "tab:green",
    "infobatch": "tab:purple",
    "rho_loss": "tab:brown",
    FORCED_ARM: "tab:pink",
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


def _name(run, words: dict) -> str:
    """The run's arm in words; IS that never switched on says so (its run was uniform SGD's batches)."""
    if run.arm == IMPORTANCE and not run.scored_share > 0:
        return words["upper_bound_is_off"]
    return words.get(run.arm, run.arm)


def _epochs(runs, words: dict) -> pd.DataFrame:
    frames = [run.epochs.assign(run=_name(run, words), seed=f"{words['seed']} {run.seed}") for run in runs]
    return pd.concat(frames, ignore_index=True)


HEADINGS = ("run", "estimate", "quantity", "seed")  # the columns the figures group by


def _over_seeds(data: pd.DataFrame) -> tuple[pd.DataFrame, tuple | None]:
    """Curves over seeds: each epoch at the seeds' mean time (their epochs end at other seconds), so that
    seaborn draws the mean and its 95% t-interval as a band; one seed, its own line and no band."""
    several = data["seed"].nunique() > 1
    time = data.groupby(["run", "epoch"])["train_seconds"].transform("mean") if several else data["train_seconds"]
    return data.assign(train_seconds=time), ("ci", 95) if several else None


def _legend(ax, **keywords) -> None:
    """The legend of what is drawn, the lr changes included, without seaborn's headings (the names of the
    columns it groups by, entries of their own where it groups by two)."""
    handles, names = ax.get_legend_handles_labels()
    kept = [(handle, name) for handle, name in zip(handles, names, strict=True) if name not in HEADINGS]
    if kept:
        ax.legend(*zip(*kept, strict=True), title=None, **keywords)


def _plain_log_ticks(axis) -> None:
    """Log-scale ticks as plain numbers (0.9, 2), not 9x10^-1."""
    formatter = matplotlib.ticker.FormatStrFormatter("%g")
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(formatter)


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


def _arm_name(run, words: dict) -> str:
    """The run's arm in words, whether or not IS switched on: a line over budgets joins runs of one arm,
    and IS may be kept off at one budget and on at the next."""
    return words.get(run.arm, run.arm)


def _palette(runs, words: dict, label=_name) -> dict:
    """Fixed colours for the known methods, the next free ones for any other; `label` names a run."""
    spare = iter(c for c in sns.color_palette("tab10").as_hex() if c not in COLOURS.values())
    arms = {label(run, words): run.arm for run in runs}
    return {name: COLOURS.get(arm) or next(spare) for name, arm in arms.items()}


def accuracy_and_loss(runs, words: dict) -> plt.Figure:
    data, band = _over_seeds(_epochs(runs, words))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, column in [(axes[0], "test_accuracy"), (axes[1], "test_loss")]:
        label = words[column.replace("_", " ")]
        sns.lineplot(
            data=data, x="train_seconds", y=column, hue="run", errorbar=band, palette=_palette(runs, words), ax=ax
        )
        ax.set(xlabel=words["training time (s)"], ylabel=label, title=words["at equal training time"].format(label))
    _mark(axes, lr_changes(runs), words)
    for ax in axes:
        _legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def all_methods(runs, words: dict) -> plt.Figure:
    """Every method's test accuracy against training time: the mean over seeds and its 95% interval."""
    data, band = _over_seeds(_epochs(runs, words))
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(
        data=data,
        x="train_seconds",
        y="test_accuracy",
        hue="run",
        errorbar=band,
        palette=_palette(runs, words),
        linewidth=1.2,
        ax=ax,
    )
    _mark(ax, lr_changes(runs), words)
    ax.set(xlabel=words["training time (s)"], ylabel=words["test accuracy"], title=words["all methods"])
    _legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_budget(runs, words: dict) -> plt.Figure:
    """Final test accuracy against budget (log axis), the mean over seeds with their spread (sd)."""
    healthy = [r for r in runs if not r.diverged]
    data = pd.DataFrame(
        [{"run": _arm_name(r, words), "budget": r.budget_seconds, "accuracy": r.final_accuracy} for r in healthy]
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        data=data,
        x="budget",
        y="accuracy",
        hue="run",
        marker="o",
        errorbar="sd",
        palette=_palette(healthy, words, _arm_name),
        ax=ax,
    )
    ax.set(
        xscale="log",
        xlabel=words["budget axis"],
        ylabel=words["final test accuracy"],
        title=words["accuracy vs budget"],
    )
    _plain_log_ticks(ax.xaxis)
    _legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def train_loss(runs, words: dict) -> plt.Figure:
    data, band = _over_seeds(_epochs(runs, words))
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
        data=long,
        x="train_seconds",
        y="loss",
        hue="run",
        style="estimate",
        errorbar=band,
        palette=_palette(runs, words),
        ax=ax,
    )
    _mark(ax, lr_changes(runs), words)
    ax.set(xlabel=words["training time (s)"], ylabel=words["train loss"], title=words["two estimates"], yscale="log")
    _plain_log_ticks(ax.yaxis)
    _legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def is_activation(is_runs, words: dict) -> plt.Figure:
    """upper_bound along its run: the share of IS iterations per epoch (a sentence instead where IS never
    switched on); its draw's predicted speed-up s and tau against tau_th = 1 + a (the training forward's
    tau too, where it differs from the deciding one); s / (1 + a) against 1; and, with presample: auto,
    the ratio it trained at. Several seeds: means with 95% intervals."""
    data, band = _over_seeds(_epochs(is_runs, words).assign(run=""))
    data["predicted_speedup"] = predicted_speedup(data)
    on = bool(data["scored_share"].fillna(0).gt(0).any())
    chosen = on and "presample_ratio" in data and data["presample_ratio"].notna().any()
    fig, axes = plt.subplots(2 + on + chosen, 1, figsize=(9, 3.4 * (2 + on + chosen) + 0.4), sharex=True)
    panels = iter(axes)
    if on:
        ax = next(panels)
        sns.lineplot(data=data, x="train_seconds", y="scored_share", errorbar=band, marker="o", ax=ax)
        ax.set(ylabel=words["IS share"], title=words["when on"], ylim=(-0.02, 1.02))
    else:
        fig.suptitle(words["never on"], fontsize=11)
    names = {"speedup": words["speedup"], "tau": words["tau"], "tau_threshold": words["tau_th"]}
    if "tau_training" in data and not np.allclose(data["tau_training"], data["tau"], equal_nan=True):
        names["tau_training"] = words["tau_training"]
    drawn = [column for column in names if column in data]
    tau = data.melt(id_vars=["seed", "train_seconds"], value_vars=drawn, var_name="quantity", value_name="v")
    tau["quantity"] = tau["quantity"].map(names)
    ax = next(panels)
    sns.lineplot(data=tau, x="train_seconds", y="v", hue="quantity", errorbar=band, ax=ax)
    ax.set(ylabel=words["epoch mean"], title=words["tau against threshold"])
    ax = next(panels)
    sns.lineplot(data=data, x="train_seconds", y="predicted_speedup", errorbar=band, marker="o", ax=ax)
    ax.axhline(1.0, color="black", linewidth=1, label=words["pays above"])
    ax.set(xlabel=words["training time (s)"], ylabel=words["predicted speed-up"], title=words["how far"])
    if chosen:
        ax = next(panels)
        sns.lineplot(data=data, x="train_seconds", y="presample_ratio", errorbar=band, marker="o", ax=ax)
        ax.set(xlabel=words["training time (s)"], ylabel=words["presample ratio"], title=words["p chosen"])
    _mark(axes, lr_changes(is_runs), words)
    for ax in axes:
        _legend(ax, fontsize=8)
    fig.tight_layout()
    return fig
