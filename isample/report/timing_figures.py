"""The timing stage's figures (section 3 of the report): where an iteration's time goes, the presample's
time against p with the cost model's fit, and the presample's forward against the training step. Apart
from the training curves of `isample.report.figures` because they change with the timing stage and the
cost model; their labels are that module's `LABELS`."""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from isample.names import IMPORTANCE
from isample.report import figures  # noqa: F401  (the Agg backend and the fonts, set up once there)
from isample.report.records import train_step_seconds

SLIVER = 0.04  # of an iteration's time


def timing_phases(per_ratio: pd.DataFrame, words: dict) -> plt.Figure:
    frame = per_ratio.copy()
    importance = frame[frame["run"] == IMPORTANCE]
    if "forward_chunk" in frame and len(importance):  # one chunk size per ratio: the first measured
        chunk = importance["forward_chunk"].iloc[0]
        frame = frame[(frame["run"] != IMPORTANCE) | (frame["forward_chunk"] == chunk)]
    frame["configuration"] = [
        words["IS at p"].format(p) if run == IMPORTANCE else words.get(run, run)
        for run, p in zip(frame["run"], frame["presample"], strict=True)
    ]
    phases = [c.removeprefix("time_") for c in frame.columns if c.startswith("time_")]  # in the record's order
    milliseconds = frame.set_index("configuration")[[f"time_{p}" for p in phases]] * 1000
    milliseconds.columns = [p.replace("_", " ") for p in phases]
    # Phases under SLIVER of every bar are too thin to see: one "other" segment holds them, named in the legend.
    thin = [p for p in milliseconds.columns if (milliseconds[p] < SLIVER * milliseconds.sum(axis=1)).all()]
    if len(thin) > 1:
        other = textwrap.fill(words["other phases"].format(", ".join(thin)), 28)
        milliseconds = milliseconds.drop(columns=thin).assign(**{other: milliseconds[thin].sum(axis=1)})
    fig, ax = plt.subplots(figsize=(9, 5))
    colours = sns.color_palette("tab10", len(milliseconds.columns))
    milliseconds.plot.bar(stacked=True, ax=ax, color=colours, rot=25)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set(xlabel="", ylabel=words["median per iteration"], title=words["where time goes"])
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def presample_fit(per_ratio: pd.DataFrame, slope: float, intercept: float, r2: float, words: dict) -> plt.Figure:
    frame = per_ratio[per_ratio["run"] == IMPORTANCE]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(x=frame["presample"], y=frame["presample_seconds"] * 1000, s=70, ax=ax, label=words["measured"])
    p = np.linspace(0, frame["presample"].max() * 1.05, 50)
    ax.plot(
        p,
        (slope * p + intercept) * 1000,
        color="tab:red",
        label=words["fit"].format(slope * 1000, intercept * 1000, r2),
    )
    ax.set(
        xlabel=words["presample ratio"],
        ylabel=words["presample time"],
        title=words["presample against p"],
        xlim=(0, None),
        ylim=(0, None),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def presample_vs_train(iterations: pd.DataFrame, words: dict) -> plt.Figure:
    frame = iterations[iterations["run"] == IMPORTANCE].copy()
    forward, step = words["presample forward"], words["training step"]
    frame[forward] = frame["time_presample_forward"] * 1000
    frame[step] = train_step_seconds(frame) * 1000
    frame["p"] = frame["presample"].map(lambda p: f"{p:g}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=frame, x=step, y=forward, hue="p", ax=ax)
    ax.set(title=words["forward against step"])
    fig.tight_layout()
    return fig
