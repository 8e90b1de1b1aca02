"""presample: auto against fixed presample ratios, at an equal priced and an equal wall budget.

Per regime, clock and seed, from the same initial weights: uniform; upper_bound with IS forced on at
p = 2, 3, 5 and 7 (the notebook's exp. 8); IS forced on at the ratio `presample: auto` chooses (bound 7,
the grid's largest); and, with the priced clock, auto and p = 2 each by their own rule. IS is forced on
so that the comparison is of the ratio, not of whether IS runs: at this CPU's prices (a = 0.25 per unit
of p) the rules keep IS off in both regimes, and every variant would be uniform.

The priced clock prices a scored example so that a(2) = --a2 of a training step (default 0.1: a GPU
whose presample is cheap), every ratio in proportion; the wall clock pays what this machine measures.
The priced points run anywhere and side by side (--jobs 2 on 2 cores: deterministic); the wall-clock
ones one at a time on a quiet machine (--jobs 1).

Per regime, clock and variant: final test accuracy minus uniform's, minus the best fixed p's and minus
the median fixed p's (paired by seed, 95% intervals), the share of IS iterations at each ratio and the
ratio's mean, and two speed-ups from the measured tau and a: the 2018 one auto chooses by, and the
two-stage one, which counts the presample's own variance. The issue's goal: auto never worse than the
best fixed p beyond the resolution, and better than the median fixed p. Measured: docs/presample-auto.md.

"""

import argparse
import math
import statistics
from pathlib import Path

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.paired import interval_text, paired
from benchmarks.regimes import REGIMES, data_of, params_of, run_facts, train_timed
from isample.methods.presample_ratio import candidate_ratios
from isample.report.common import confidence_interval

FIXED = (2.0, 3.0, 5.0, 7.0)
CLOCKS = {"priced": "priced clock", "wall": "wall clock"}  # in the figure's words
BOUND = 7.0
# name -> (method, presample, IS forced on); the rule's variants run under the priced clock only.
VARIANTS = {
    "uniform": ("uniform", 2.0, False),
    **{f"p{p:g}": ("upper_bound", p, True) for p in FIXED},
    "auto": ("upper_bound", "auto", True),
    "rule_p2": ("upper_bound", 2.0, False),
    "rule_auto": ("upper_bound", "auto", False),
}
RULE_VARIANTS = ("rule_p2", "rule_auto")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=["default", "memorised_1k"], choices=list(REGIMES))
    parser.add_argument("--clocks", nargs="+", default=["priced", "wall"], choices=["priced", "wall"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants", nargs="+", default=["uniform", "p2", "p3", "p5", "p7", "auto"], choices=list(VARIANTS)
    )
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run, priced or wall")
    parser.add_argument("--a2", type=float, default=0.1, help="priced clock: a presample of 2b in training steps")
    parser.add_argument("--figure", default="docs/figures/presample_auto.png", help="accuracy by p, per regime")


def grid(args) -> list[dict]:
    return [
        {"regime": regime, "clock": clock, "variant": variant, "seed": seed}
        for regime in args.regimes
        for clock in args.clocks
        for seed in args.seeds
        for variant in args.variants
        if not (clock == "wall" and variant in RULE_VARIANTS)
    ]


def score_price(raw: dict, a2: float) -> float:
    """The price per scored example at which a presample of 2b costs a2 training steps."""
    prices, b = raw["train"]["prices"], raw["batch_size"]
    train_step = b * (prices["forward"] + prices["backward"]) + prices["iteration"]
    return a2 * train_step / (2 * b)


def train(point: dict, args) -> dict:
    method, presample, forced = VARIANTS[point["variant"]]
    raw = params_of(point["regime"])
    changes = {"presample": presample, "sampler": {"presample_max": BOUND}}
    if point["clock"] == "priced":
        changes["train"] = {"prices": {"score": score_price(raw, args.a2)}}
    run, _, seconds = train_timed(
        params_of(point["regime"], changes),
        method,
        point["seed"],
        data_of(point["regime"]),
        clock=point["clock"],
        budget=args.budget,
        options={"always_importance": True} if forced else None,
    )
    epochs = run.epochs
    facts = {**run_facts(run), "run_seconds": seconds}
    if method == "uniform":
        return facts
    scored = epochs["iterations"] * epochs.get("scored_share", 0.0)  # IS iterations per epoch
    if presample == "auto":  # its records have a share column per ratio; a fixed ratio's run is all at one
        ratios = {p: (epochs[f"presample_share_{p:g}"].fillna(0) * scored).sum() for p in candidate_ratios(BOUND)}
    else:
        ratios = {p: float(p == presample) * scored.sum() for p in candidate_ratios(BOUND)}
    total = sum(ratios.values())
    return {
        **facts,
        "mean_ratio": sum(p * n for p, n in ratios.items()) / total if total else math.nan,
        **{f"share_p{p:g}": n / total if total else math.nan for p, n in ratios.items()},
    }


def two_stage_speedup(tau: float, ratio: float, a: float) -> float:
    """IS's batch against a uniform batch of b by the variance of their gradient estimates, per unit of
    price. IS's estimate varies twice: its presample is a uniform sample of p b (1 / p of a uniform batch's
    variance), and b are drawn from it with replacement (1 / tau^2 of a uniform draw's from the same
    presample, where the scores are the gradient norms and their mean is small against them). The 2018
    speed-up, tau / (1 + a), leaves out the first, which is largest at small p."""
    return 1.0 / ((1.0 / ratio + 1.0 / tau**2) * (1.0 + a))


def summarize(facts: pd.DataFrame) -> pd.DataFrame:
    """Per regime, clock and variant: against uniform, the best and the median fixed p, seed by seed."""
    rows = []
    for (regime, clock), runs in facts.groupby(["regime", "clock"], sort=False):
        accuracy = runs.pivot(index="seed", columns="variant", values="final_accuracy")
        fixed = [f"p{p:g}" for p in FIXED if f"p{p:g}" in accuracy]
        best = max(fixed, key=lambda v: accuracy[v].mean()) if fixed else None
        median = accuracy[fixed].median(axis=1) if fixed else pd.Series(dtype=float)
        for variant, group in runs.groupby("variant", sort=False):
            against = {"uniform": accuracy.get("uniform"), "best_fixed": accuracy.get(best), "median_fixed": median}
            row = {"regime": regime, "clock": clock, "variant": variant, "seeds": len(group)}
            row["final_accuracy"] = group["final_accuracy"].mean()
            row["iterations"] = group["iterations"].mean()
            for name, reference in against.items():
                differences = [] if reference is None or variant == name else paired(runs, variant, reference)
                row[f"minus_{name}"] = interval_text(differences) if len(differences) > 1 else ""
                row[f"minus_{name}_mean"] = statistics.fmean(differences) if differences else math.nan
                low, high = confidence_interval(differences) if len(differences) > 1 else (math.nan, math.nan)
                row[f"minus_{name}_low"], row[f"minus_{name}_high"] = low, high
            row["best_fixed"] = best
            shares = (c for c in runs if c.startswith("share_p"))
            for column in ("mean_ratio", *shares, "is_share", "tau", "a", "predicted_speedup"):
                row[column] = group[column].mean() if column in group else math.nan
            row["two_stage_speedup"] = two_stage_speedup(row["tau"], row["mean_ratio"], row["a"])
            rows.append(row)
    return pd.DataFrame(rows)


def goals(table: pd.DataFrame) -> pd.DataFrame:
    """Per regime and clock: is auto (forced) within resolution of the best fixed p, and above the median?"""
    auto = table[table["variant"] == "auto"]
    return pd.DataFrame(
        {
            "regime": auto["regime"],
            "clock": auto["clock"],
            "best_fixed": auto["best_fixed"],
            "auto_minus_best": auto["minus_best_fixed"],
            "never_worse_than_best": auto["minus_best_fixed_high"] >= 0,
            "auto_minus_median": auto["minus_median_fixed"],
            "above_median": auto["minus_median_fixed_low"] > 0,
            "above_median_by_the_mean": auto["minus_median_fixed_mean"] > 0,
        }
    )


def ratio_figure(table: pd.DataFrame, path: Path) -> None:
    """Per regime, IS forced on minus uniform in final test accuracy at each fixed p and with auto (at the
    mean ratio it trained at), one line per clock, the bars 95% t-intervals over the paired seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    forced = table[(table["variant"] != "uniform") & ~table["variant"].isin(RULE_VARIANTS)].copy()
    forced["p"] = [float(v[1:]) if v != "auto" else ratio for v, ratio in zip(forced["variant"], forced["mean_ratio"])]
    regimes = list(dict.fromkeys(forced["regime"]))
    fig, axes = plt.subplots(1, len(regimes), figsize=(6 * len(regimes), 4.3), sharey=True, squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        for offset, (clock, rows) in zip((-0.06, 0.06), forced[forced["regime"] == regime].groupby("clock")):
            fixed = rows[rows["variant"] != "auto"].sort_values("p")
            mean, low, high = (100 * fixed[f"minus_uniform{end}"] for end in ("_mean", "_low", "_high"))
            bars = [mean - low, high - mean]
            line = ax.errorbar(
                fixed["p"] + offset, mean, yerr=bars, marker="o", capsize=3, label=f"fixed p, {CLOCKS[clock]}"
            )
            auto = rows[rows["variant"] == "auto"]
            for _, row in auto.iterrows():
                a_mean, a_low, a_high = (100 * row[f"minus_uniform{end}"] for end in ("_mean", "_low", "_high"))
                ax.errorbar(
                    [row["p"] + offset],
                    [a_mean],
                    yerr=[[a_mean - a_low], [a_high - a_mean]],
                    marker="*",
                    markersize=12,
                    capsize=3,
                    color=line[0].get_color(),
                    linestyle="",
                    label=f"auto, {CLOCKS[clock]}",
                )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set(title=regime, xlabel="presample ratio p = B / b (auto: the mean it trained at)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("IS forced on minus uniform (points)")
    fig.suptitle("Final test accuracy by presample ratio, IS forced on against uniform")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)  # a summary run draws one per call: none kept open


def tables(facts: pd.DataFrame, args) -> list:
    table = summarize(facts)
    ratio_figure(table, Path(args.figure))
    shown = [c for c in table.columns if not c.endswith(("_low", "_high", "_mean"))]
    shown = [c for c in shown if not (c.startswith("share_p") and table[c].fillna(0).eq(0).all())]  # never chosen
    return [("", table[shown]), ("", goals(table))]


STUDY = Study(
    name="presample_auto",
    doc=__doc__,
    keys=("regime", "clock", "variant", "seed"),
    grid=grid,
    train=train,
    summarize=tables,
    add_arguments=add_arguments,
    exclusive=lambda point: point["clock"] != "priced",
    settings=lambda args: {"budget": args.budget, "a2": args.a2},
    estimate_seconds=lambda point, args: (4.0 if point["clock"] == "priced" else 1.5) * args.budget,
)

if __name__ == "__main__":
    main(STUDY)
