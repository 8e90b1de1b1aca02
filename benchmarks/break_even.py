"""Where importance sampling pays: IS forced on at stated prices against uniform, at an equal priced budget.

Under the priced clock (`train.clock: priced`, docs/priced-clock.md) every run spends from its budget
the price of the work it did, so its iterations are the same on any machine, and IS's presample can be
given any price: a = 0 (the positive control: choosing costs nothing, so any variance reduction worth
having must show), a small a, and the measured one (`from_prices`). Per regime and seed, from the same
initial weights: uniform (random reshuffling), IS forced on at each price, and IS by its rule
(tau_th = 1 + a, priced) at each of --rule-prices.

Per regime and price: IS minus uniform in final test accuracy (whole test set) and in training-set
loss (eval mode), with 95% intervals over the paired seeds; tau as measured along the forced runs and
the speed-up the rule predicts, tau / (1 + a). The break-even price a* is where the mean accuracy gain,
linear between the prices, crosses zero (its interval: where the interval's bounds cross it), set
beside the rule's own break-even tau - 1. A calibration figure draws the measured gain against
tau / (1 + a), one point per regime and price. Measured: docs/break-even.md.

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
from isample.report.common import confidence_interval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=["default", "memorise", "memorised_1k"], choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=60.0, help="priced seconds per run")
    parser.add_argument("--prices", nargs="+", default=["0", "0.1", "from_prices"], help="IS's presample_a values")
    parser.add_argument("--rule-prices", nargs="*", default=["0.1"], help="the prices IS runs by its rule at")
    parser.add_argument("--figure", default="docs/figures/break_even.png")


def price_label(text: str) -> str:
    return "from_prices" if text == "from_prices" else f"{float(text):g}"


def grid(args) -> list[dict]:
    variants = [("uniform", "from_prices")]
    variants += [("forced", price_label(price)) for price in args.prices]
    variants += [("rule", price_label(price)) for price in args.rule_prices]
    return [
        {"regime": regime, "variant": variant, "price": price, "seed": seed}
        for regime in args.regimes
        for seed in args.seeds
        for variant, price in variants
    ]


def train(point: dict, args) -> dict:
    price = point["price"] if point["price"] == "from_prices" else float(point["price"])
    raw = params_of(point["regime"], {"train": {"prices": {"presample_a": price}}})
    method = "uniform" if point["variant"] == "uniform" else "upper_bound"
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


def summarize(facts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per regime and price: the forced and rule runs against uniform; per regime: a* and tau - 1."""
    rows, verdicts = [], []
    for regime, runs in facts.groupby("regime", sort=False):
        uniform = runs[runs["variant"] == "uniform"].set_index("seed")
        forced = runs[runs["variant"] == "forced"]
        by_price = []
        for variant in ("forced", "rule"):
            for price, group in runs[runs["variant"] == variant].groupby("price", sort=False):
                group = group.set_index("seed")
                seeds = group.index.intersection(uniform.index)
                gain = (group.loc[seeds, "final_accuracy"] - uniform.loc[seeds, "final_accuracy"]).tolist()
                loss = (group.loc[seeds, "train_set_loss"] - uniform.loc[seeds, "train_set_loss"]).tolist()
                low, high = confidence_interval(gain)
                row = {
                    "regime": regime,
                    "variant": variant,
                    "price": price,
                    "a": group["a_priced"].mean(),
                    "seeds": len(seeds),
                    "gain_points": interval_text(gain) if len(gain) > 1 else f"{100 * sum(gain):+.2f}",
                    "train_set_loss_difference": loss_text(loss),
                    "is_share": group["is_share"].mean(),
                    "tau": group["tau"].mean(),
                    "predicted_speedup": group["tau"].mean() / (1 + group["a_priced"].mean()),
                    "iterations": group["iterations"].mean(),
                    "gain": sum(gain) / len(gain) if gain else math.nan,
                    "gain_low": low,
                    "gain_high": high,
                }
                rows.append(row)
                if variant == "forced":
                    by_price.append(row)
        by_price.sort(key=lambda row: row["a"])
        a = [row["a"] for row in by_price]
        tau = forced["tau"].mean()
        verdicts.append(
            {
                "regime": regime,
                "a_star": crossing(a, [row["gain"] for row in by_price]),
                "a_star_low": crossing(a, [row["gain_low"] for row in by_price]),
                "a_star_high": crossing(a, [row["gain_high"] for row in by_price]),
                "rule_break_even_tau_minus_1": tau - 1,
                "uniform_accuracy": uniform["final_accuracy"].mean(),
                "uniform_train_set_loss": uniform["train_set_loss"].mean(),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(verdicts)


def calibration_figure(table: pd.DataFrame, path: Path) -> None:
    """The measured gain of IS forced on against the speed-up tau / (1 + a) the rule predicts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    forced = table[table["variant"] == "forced"].copy()
    forced["gain (points)"] = 100 * forced["gain"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=forced, x="predicted_speedup", y="gain (points)", hue="regime", style="price", s=80, ax=ax)
    for _, row in forced.iterrows():
        if math.isfinite(row["gain_low"]):
            ax.plot([row["predicted_speedup"]] * 2, [100 * row["gain_low"], 100 * row["gain_high"]], color="grey")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(1, color="black", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel="predicted speed-up tau / (1 + a) (above 1: the rule says IS pays)",
        ylabel="IS forced on minus uniform, test accuracy (points)",
        title="The rule's prediction against the measured gain, at equal priced time",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def summarize_tables(facts: pd.DataFrame, args) -> list:
    table, verdicts = summarize(facts)
    calibration_figure(table, Path(args.figure))
    shown = [c for c in table.columns if c not in ("gain", "gain_low", "gain_high")]
    return [("", table[shown]), ("", verdicts)]


STUDY = Study(
    name="break_even",
    doc=__doc__,
    keys=("regime", "variant", "price", "seed"),
    grid=grid,
    train=train,
    summarize=summarize_tables,
    add_arguments=add_arguments,
    settings=lambda args: {"budget": args.budget},
    estimate_seconds=lambda point, args: 3.5 * args.budget,
)

if __name__ == "__main__":
    main(STUDY)
