"""Where importance sampling pays: IS forced on at stated prices against uniform, at an equal priced budget.

Under the priced clock (`train.clock: priced`, docs/priced-clock.md) every run spends from its budget
the price of the work it did, so its iterations are the same on any machine, and IS's presample can be
given any price: a = 0 (the positive control: choosing costs nothing, so any variance reduction worth
having must show), a small a, and the measured one (`from_prices`). Per regime and seed, from the same
initial weights: uniform (random reshuffling), IS forced on at each price with each draw of --draws
(`sampler.draw`), and IS by its rule (the draw's predicted speed-up s against 1 + a, priced) at each of
--rule-prices.

Per regime, draw and price: IS minus uniform in final test accuracy (whole test set) and in training-set
loss (eval mode), with 95% intervals over the paired seeds; tau and the draw's variance ratio r as
measured along the forced runs, and the speed-up predicted net of the price, by the root,
r^(-1/2) / (1 + a) (the rule's), and by the ratio, 1 / (r (1 + a)). Per regime at zero price: one draw
against the other. The break-even price a* is where the mean accuracy gain, linear between the prices,
crosses zero (its interval: where the interval's bounds cross it), set beside the rule's predicted
break-even s - 1 (and the ratio's). A calibration figure draws the measured gain against the predicted
speed-up, by the root and by the ratio, one point per regime, draw and price. Measured: docs/break-even.md.

Priced points share a machine: --jobs 2 on 2 cores. A priced second is about a wall second of uniform
on the reference machine; IS forced on at a priced a takes about (1 + a_wall) / (1 + a) of it.
"""

import argparse
import math
from pathlib import Path

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.paired import interval_text, loss_text
from benchmarks.regimes import REGIMES, data_of, params_of, run_facts, train_timed
from isample.names import DRAWS
from isample.report.common import confidence_interval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=["default", "memorise", "memorised_1k"], choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=60.0, help="priced seconds per run")
    parser.add_argument("--prices", nargs="+", default=["0", "0.1", "from_prices"], help="IS's presample_a values")
    parser.add_argument("--rule-prices", nargs="*", default=["0.1"], help="the prices IS runs by its rule at")
    parser.add_argument("--draws", nargs="+", default=list(DRAWS), choices=DRAWS, help="IS's draws (sampler.draw)")
    parser.add_argument("--figure", default="docs/figures/break_even.png")


def price_label(text: str) -> str:
    return "from_prices" if text == "from_prices" else f"{float(text):g}"


def grid(args) -> list[dict]:
    variants = [("uniform", "none", "from_prices")]
    variants += [("forced", draw, price_label(price)) for draw in args.draws for price in args.prices]
    variants += [("rule", draw, price_label(price)) for draw in args.draws for price in args.rule_prices]
    return [
        {"regime": regime, "variant": variant, "draw": draw, "price": price, "seed": seed}
        for regime in args.regimes
        for seed in args.seeds
        for variant, draw, price in variants
    ]


def train(point: dict, args) -> dict:
    price = point["price"] if point["price"] == "from_prices" else float(point["price"])
    method = "uniform" if point["variant"] == "uniform" else "upper_bound"
    draw = {"sampler": {"draw": point["draw"]}} if method == "upper_bound" else {}
    raw = params_of(point["regime"], {"train": {"prices": {"presample_a": price}}, **draw})
    forced = {"always_importance": True} if point["variant"] == "forced" else None
    run, spec, seconds = train_timed(
        raw, method, point["seed"], data_of(point["regime"]), clock="priced", budget=args.budget, options=forced
    )
    presample = round(spec.options.presample * spec.batch_size) if method == "upper_bound" else None
    a = spec.prices.presample_share(presample, spec.batch_size) if presample else math.nan
    return {**run_facts(run), "run_seconds": seconds, "a_priced": a}


def crossing(prices: list[float], gains: list[float]) -> float:
    """The price where `gains`, linear between `prices` (increasing), first falls to 0; -inf when it is
    below 0 already at the first, inf when still above at the last."""
    if gains[0] <= 0:
        return -math.inf
    for (a0, g0), (a1, g1) in zip(zip(prices, gains), zip(prices[1:], gains[1:])):
        if g1 <= 0:
            return a0 + (a1 - a0) * g0 / (g0 - g1)
    return math.inf


def compared(group: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """`group`'s runs minus `reference`'s (both indexed by seed), paired by seed: accuracy (points) and
    training-set loss, each with its 95% interval."""
    seeds = group.index.intersection(reference.index)
    gain = (group.loc[seeds, "final_accuracy"] - reference.loc[seeds, "final_accuracy"]).tolist()
    loss = (group.loc[seeds, "train_set_loss"] - reference.loc[seeds, "train_set_loss"]).tolist()
    low, high = confidence_interval(gain)
    return {
        "seeds": len(seeds),
        "gain_points": interval_text(gain) if len(gain) > 1 else f"{100 * sum(gain):+.2f}",
        "train_set_loss_difference": loss_text(loss),
        "gain": sum(gain) / len(gain) if gain else math.nan,
        "gain_low": low,
        "gain_high": high,
    }


def column_mean(group: pd.DataFrame, column: str) -> float:
    return group[column].mean() if column in group else math.nan


def summarize(facts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per regime, draw and price: each variant against uniform; forced without replacement against forced
    with, per regime and price; per regime and draw: a* and the predicted break-evens."""
    facts = facts.assign(draw=facts["draw"] if "draw" in facts else "with_replacement")
    order = {name: index for index, name in enumerate(REGIMES)}  # the regimes' order, whatever trained first
    facts = facts.sort_values("regime", key=lambda regimes: regimes.map(order), kind="stable")
    rows, draws, verdicts = [], [], []
    for regime, runs in facts.groupby("regime", sort=False):
        uniform = runs[runs["variant"] == "uniform"].set_index("seed")
        for (variant, draw, price), group in runs[runs["variant"] != "uniform"].groupby(
            ["variant", "draw", "price"], sort=False
        ):
            group = group.set_index("seed")
            a, speedup = group["a_priced"].mean(), column_mean(group, "speedup")
            rows.append(
                {
                    "regime": regime,
                    "variant": variant,
                    "draw": draw,
                    "price": price,
                    "a": a,
                    **compared(group, uniform),
                    "is_share": group["is_share"].mean(),
                    "tau": group["tau"].mean(),
                    "variance_ratio": column_mean(group, "variance_ratio"),
                    # The rule's prediction: the speed-up net of the price, the root's (the rule) and the ratio's.
                    "predicted_speedup": speedup / (1 + a) if "speedup" in group else group["tau"].mean() / (1 + a),
                    "predicted_by_ratio": speedup**2 / (1 + a),
                    "iterations": group["iterations"].mean(),
                }
            )
        forced = runs[runs["variant"] == "forced"]
        for price, group in forced.groupby("price", sort=False):
            by_draw = {draw: runs_of.set_index("seed") for draw, runs_of in group.groupby("draw")}
            if set(by_draw) >= {"with_replacement", "without_replacement"}:
                versus = compared(by_draw["without_replacement"], by_draw["with_replacement"])
                draws.append({"regime": regime, "price": price, "a": group["a_priced"].mean(), **versus})
        for draw, group in forced.groupby("draw", sort=False):
            by_price = sorted(
                (row for row in rows if row["regime"] == regime and row["variant"] == "forced" and row["draw"] == draw),
                key=lambda row: row["a"],
            )
            a = [row["a"] for row in by_price]
            speedup = column_mean(group, "speedup")
            verdicts.append(
                {
                    "regime": regime,
                    "draw": draw,
                    "a_star": crossing(a, [row["gain"] for row in by_price]),
                    "a_star_low": crossing(a, [row["gain_low"] for row in by_price]),
                    "a_star_high": crossing(a, [row["gain_high"] for row in by_price]),
                    # Where the rule (speed-up / (1 + a) > 1) turns: speed-up - 1; by the ratio: 1 / r - 1.
                    "predicted_a_star": speedup - 1 if "speedup" in group else group["tau"].mean() - 1,
                    "predicted_a_star_by_ratio": speedup**2 - 1,
                    "uniform_accuracy": uniform["final_accuracy"].mean(),
                    "uniform_train_set_loss": uniform["train_set_loss"].mean(),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(draws), pd.DataFrame(verdicts)


def calibration_figure(table: pd.DataFrame, path: Path) -> None:
    """The measured gain of IS forced on against the speed-up predicted net of the price: by the rule's
    root, r^(-1/2) / (1 + a), and by the ratio, 1 / (r (1 + a))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    forced = table[table["variant"] == "forced"].copy()
    forced["gain (points)"] = 100 * forced["gain"]
    panels = [("predicted_speedup", "r^(-1/2) / (1 + a): the rule")]
    if forced["predicted_by_ratio"].notna().any():
        panels.append(("predicted_by_ratio", "1 / (r (1 + a)): the ratio"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), sharey=True, squeeze=False)
    for ax, (column, label) in zip(axes[0], panels):
        sns.scatterplot(data=forced, x=column, y="gain (points)", hue="regime", style="draw", s=80, ax=ax)
        for _, row in forced.iterrows():
            if math.isfinite(row["gain_low"]):
                ax.plot([row[column]] * 2, [100 * row["gain_low"], 100 * row["gain_high"]], color="grey", lw=0.8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axvline(1, color="black", linewidth=0.8, linestyle=":")
        ax.set(xlabel=f"predicted speed-up {label} (above 1: IS pays)", ylabel="IS forced on minus uniform (points)")
    fig.suptitle("Predicted speed-up against the measured gain in test accuracy, at equal priced time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)  # a summary run draws one per call: none kept open


def summarize_tables(facts: pd.DataFrame, args) -> list:
    table, draws, verdicts = summarize(facts)
    calibration_figure(table, Path(args.figure))
    hidden = ("gain", "gain_low", "gain_high")
    shown = [c for c in table.columns if c not in hidden and table[c].notna().any()]
    tables = [("", table[shown])]
    if not draws.empty:
        tables.append(("", draws[[c for c in draws.columns if c not in hidden]]))
    return [*tables, ("", verdicts[[c for c in verdicts.columns if verdicts[c].notna().any()]])]


STUDY = Study(
    name="break_even",
    doc=__doc__,
    keys=("regime", "variant", "draw", "price", "seed"),
    grid=grid,
    train=train,
    summarize=summarize_tables,
    add_arguments=add_arguments,
    settings=lambda args: {"budget": args.budget},
    estimate_seconds=lambda point, args: 3.5 * args.budget,
)

if __name__ == "__main__":
    main(STUDY)
