"""The report's seaborn figures; each function returns a matplotlib Figure (the caller saves it)."""

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from isample.report.records import train_step_seconds  # noqa: E402

METHOD_LABELS = {"upper_bound": "importance sampling", "uniform": "uniform SGD", "reuse": "score reuse",
                 "selective_backprop": "Selective-Backprop", "infobatch": "InfoBatch"}  # fmt: skip
PALETTE = {"importance sampling": "tab:red", "uniform SGD": "tab:blue", "score reuse": "tab:orange",
           "Selective-Backprop": "tab:green", "InfoBatch": "tab:purple"}  # fmt: skip
sns.set_theme(style="whitegrid", context="notebook")


def _epochs(runs) -> pd.DataFrame:
    frames = [run.epochs.assign(run=METHOD_LABELS.get(run.method, run.method), seed=f"seed {run.seed}") for run in runs]
    return pd.concat(frames, ignore_index=True)


def lr_changes(runs) -> list[float]:
    """Training seconds where the lr of the first run changed."""
    if not runs:
        return []
    epochs = runs[0].epochs
    changed = epochs["lr"] != epochs["lr"].shift(1)
    return epochs.loc[changed, "train_seconds"].iloc[1:].tolist()


def _mark(axes, seconds):
    for ax in np.atleast_1d(axes):
        for i, x in enumerate(seconds):
            ax.axvline(x, color="grey", linestyle=":", linewidth=1.2, label="lr change" if i == 0 else None)


def accuracy_and_loss(runs) -> plt.Figure:
    data = _epochs(runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    multiple_seeds = data["seed"].nunique() > 1
    for ax, column, label in [(axes[0], "test_accuracy", "test accuracy"), (axes[1], "test_loss", "test loss")]:
        sns.lineplot(data=data, x="train_seconds", y=column, hue="run", style="seed" if multiple_seeds else None,
                     palette=PALETTE, ax=ax)  # fmt: skip
        ax.set(xlabel="training time (s)", ylabel=label, title=f"{label.capitalize()} at equal training time")
    _mark(axes, lr_changes(runs))
    axes[1].legend()
    fig.tight_layout()
    return fig


def _palette(data: pd.DataFrame) -> dict:
    """Fixed colours for the known methods, the next free ones for any other."""
    spare = iter(c for c in sns.color_palette("tab10").as_hex() if c not in PALETTE.values())
    return {name: PALETTE.get(name) or next(spare) for name in data["run"].unique()}


def all_methods(runs) -> plt.Figure:
    """Every method's test accuracy against training time: one line per method, each seed drawn thin."""
    data = _epochs(runs)
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(data=data, x="train_seconds", y="test_accuracy", hue="run", units="seed", estimator=None,
                 palette=_palette(data), linewidth=1.2, ax=ax)  # fmt: skip
    _mark(ax, lr_changes(runs))
    ax.set(xlabel="training time (s)", ylabel="test accuracy", title="All methods at equal training time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_budget(runs) -> plt.Figure:
    """Final test accuracy against budget (log axis), the mean over seeds with their spread (sd)."""
    data = pd.DataFrame([{"run": METHOD_LABELS.get(r.method, r.method), "budget": r.budget_seconds,
                          "accuracy": r.epochs["test_accuracy"].iloc[-1]} for r in runs if not r.diverged])  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(data=data, x="budget", y="accuracy", hue="run", marker="o", errorbar="sd", palette=_palette(data), ax=ax)
    ax.set(xscale="log", xlabel="budget: training time per run (s, log scale)", ylabel="final test accuracy",
           title="Final test accuracy against budget (each budget its own schedule)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def train_loss(runs) -> plt.Figure:
    data = _epochs(runs)
    long = data.melt(
        id_vars=["run", "seed", "train_seconds"], value_vars=["train_loss", "train_loss_weighted"],
        var_name="estimate", value_name="loss",
    )  # fmt: skip
    long["estimate"] = long["estimate"].map(
        {"train_loss": "on trained batches (biased for IS)", "train_loss_weighted": "importance-weighted (unbiased)"}
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(data=long, x="train_seconds", y="loss", hue="run", style="estimate", palette=PALETTE, ax=ax)
    _mark(ax, lr_changes(runs))
    ax.set(xlabel="training time (s)", ylabel="train loss (cross-entropy)", title="Train loss: two estimates",
           yscale="log")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def is_activation(is_runs) -> plt.Figure:
    data = _epochs(is_runs)
    fig, axes = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    sns.lineplot(data=data, x="train_seconds", y="is_iterations", hue="seed", marker="o", ax=axes[0])
    axes[0].set(ylabel="IS iterations per epoch", title="When importance sampling was on")
    tau = data.melt(id_vars=["seed", "train_seconds"], value_vars=["tau_mean", "tau_th_mean"],
                    var_name="quantity", value_name="value")  # fmt: skip
    tau["quantity"] = tau["quantity"].map({"tau_mean": "tau (variance reduction)", "tau_th_mean": "tau_th (threshold)"})
    sns.lineplot(data=tau, x="train_seconds", y="value", hue="quantity", style="seed", ax=axes[1])
    axes[1].set(xlabel="training time (s)", ylabel="epoch mean", title="tau against its threshold")
    _mark(axes, lr_changes(is_runs))
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ratio_label(row) -> str:
    return "uniform" if row["run"] == "uniform" else f"p = {row['presample']:g}"


def timing_phases(per_ratio: pd.DataFrame) -> plt.Figure:
    frame = per_ratio.copy()
    importance = frame[frame["run"] == "upper_bound"]
    if "forward_chunk" in frame and len(importance):  # one chunk size per ratio: the first measured
        frame = frame[(frame["run"] == "uniform") | (frame["forward_chunk"] == importance["forward_chunk"].iloc[0])]
    frame["configuration"] = frame.apply(_ratio_label, axis=1)
    phases = [c.removeprefix("time_") for c in frame.columns if c.startswith("time_")]  # in the record's order
    milliseconds = frame.set_index("configuration")[[f"time_{p}" for p in phases]] * 1000
    milliseconds.columns = [p.replace("_", " ") for p in phases]
    fig, ax = plt.subplots(figsize=(9, 5))
    colours = sns.color_palette("tab10", len(phases))
    milliseconds.plot.bar(stacked=True, ax=ax, color=colours, rot=0)
    ax.set(xlabel="", ylabel="median time per iteration (ms)", title="Where an iteration's time goes")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def presample_fit(per_ratio: pd.DataFrame, slope: float, intercept: float, r2: float) -> plt.Figure:
    frame = per_ratio[per_ratio["run"] == "upper_bound"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(x=frame["presample"], y=frame["presample_seconds"] * 1000, s=70, ax=ax, label="measured (median)")
    p = np.linspace(0, frame["presample"].max() * 1.05, 50)
    ax.plot(p, (slope * p + intercept) * 1000, color="tab:red", label=f"fit: {slope * 1000:.1f} ms x p "
            f"{intercept * 1000:+.1f} ms, R² = {r2:.3f}")  # fmt: skip
    ax.set(xlabel="presample ratio p = B / b", ylabel="presample time per iteration (ms)",
           title="Presample time against the presample ratio", xlim=(0, None), ylim=(0, None))  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def presample_vs_train(iterations: pd.DataFrame) -> plt.Figure:
    frame = iterations[iterations["run"] == "upper_bound"].copy()
    frame["presample forward (ms)"] = frame["time_presample_forward"] * 1000
    frame["training step (ms)"] = train_step_seconds(frame) * 1000
    frame["p"] = frame["presample"].map(lambda p: f"{p:g}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=frame, x="training step (ms)", y="presample forward (ms)", hue="p", ax=ax)
    ax.set(title="Presample forward against training step, per iteration")
    fig.tight_layout()
    return fig
