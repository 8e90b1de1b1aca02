"""Where importance sampling pays: IS forced on at stated prices against uniform, at an equal priced budget.

Under the priced clock (`train.clock: priced`, docs/priced-clock.md) every run spends from its budget
the price of the work it did, so its iterations are the same on any machine, and IS's presample can be
given any price: a = 0 (the positive control: choosing costs nothing, so any variance reduction worth
having must show), a small a, and the measured one (`from_prices`). Per regime and seed, from the same
initial weights: uniform (random reshuffling), IS forced on at each price, and IS by its rule
(tau_th = 1 + a, priced) at each price where it could switch on.

Per regime and price: IS minus uniform in final test accuracy (whole test set) and in training-set
loss (eval mode), with 95% intervals over the paired seeds; tau as measured along the forced runs and
the speed-up the rule predicts, tau / (1 + a). The break-even price a* is where the mean accuracy gain,
linear between the prices, crosses zero (its interval: where the interval's bounds cross it), set
beside the rule's own break-even tau - 1. A calibration figure draws the measured gain against
tau / (1 + a), one point per regime and price.

Usage: python -m benchmarks.break_even [--regimes default memorise] [--seeds 0 1 2] [--budget 200]
       [--prices 0 0.1 from_prices] [--out benchmarks/break_even.csv] [--figure docs/figures/break_even.png]
Each regime and seed trains 1 + 2 x (prices) runs; a priced second is about a wall second of uniform
on the reference machine, and IS forced on at a priced a takes about (1 + a_wall) / (1 + a) of it.
"""

import argparse
import dataclasses
import math
import time
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.switching_rule import interval_text, merged, run_facts, weighted_mean
from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run
from isample.report.common import confidence_interval

# name -> params.yaml overrides. Budgets are priced seconds (--budget).
# The per-epoch curves use smaller evaluation subsets than params.yaml's, to save time; the final accuracy
# of every run is on the whole test set.
EVALUATED = {"test_subset": 1000, "train_eval_subset": 2000}
REGIMES = {
    "default": {"data": EVALUATED},  # 10,000 images with augmentation: still learning
    "memorise": {"data": {"train_subset": 4000, "augment": False, **EVALUATED}},  # fits its data
    # Chosen where tau stays high: 1,000 images without augmentation, memorised within the budget (at 60 priced
    # seconds, 72 epochs), so that most examples are fitted and a few are not (tau measured first, uniform).
    "memorised_1k": {"data": {"train_subset": 1000, "augment": False, **EVALUATED}},
}


# Changing one thing at zero price, when IS loses there: name -> (method, forced, params.yaml overrides,
# the method's option overrides). `lr_tau` scales the lr by --tau (the effective batch tau b);
# `presample_flat` keeps IS's draw (b of B = p b, with replacement) but all but drops its scores
# (smoothing 0.999: every weight within 0.1% of 1), so only the presample's repeats differ from uniform.
CAUSES = {
    "no_smoothing": ("upper_bound", True, {"sampler": {"smoothing": 0.0}}, {}),
    "presample_flat": ("upper_bound", True, {"sampler": {"smoothing": 0.999}}, {}),
    "from_first_drop": ("upper_bound", True, {}, {"importance_from": "first_milestone"}),
    "lr_tau": ("upper_bound", True, {"train": {"lr_scale": "tau"}}, {}),
    "uniform_with_replacement": ("uniform", False, {}, {"with_replacement": True}),
    "layer_norm_uniform": ("uniform", False, {"model": {"norm": "layer"}}, {}),
    "layer_norm_forced": ("upper_bound", True, {"model": {"norm": "layer"}}, {}),
}
WEIGHTS = ("weight_max", "effective_share", "distinct_share")


def _price(text: str):
    return text if text == "from_prices" else float(text)


def price_label(price) -> str:
    return "from_prices" if price == "from_prices" else f"{float(price):g}"


def train_variant(raw: dict, method: str, forced: bool, seed: int, data, budget: float, price, options=None):
    raw = merged(raw, {"train": {"clock": "priced", "budget": f"{budget:g}s", "prices": {"presample_a": price}}})
    spec = run_spec(validate(raw), method, f"{budget:g}s", seed)
    changed = {"always_importance": True} if forced else {}
    spec = dataclasses.replace(spec, options=dataclasses.replace(spec.options, **changed, **(options or {})))
    started = time.perf_counter()
    run = train_run(spec, data, progress=False)
    epochs = run.epochs
    return {
        **run_facts(run),
        "train_set_loss": float(epochs["train_set_loss"].iloc[-1]),
        "train_set_accuracy": float(epochs["train_set_accuracy"].iloc[-1]),
        **{name: weighted_mean(epochs, name) for name in WEIGHTS},
        "priced_seconds": float(epochs["priced_seconds"].iloc[-1]),
        "wall_seconds": float(epochs["wall_seconds"].iloc[-1]),
        "run_seconds": time.perf_counter() - started,
        "a_priced": spec.prices.presample_share(round(spec.options.presample * spec.batch_size), spec.batch_size)
        if method == "upper_bound"
        else math.nan,
    }


def loss_text(differences: list[float]) -> str:
    """The mean of paired loss differences with its 95% interval (Student t)."""
    if not differences:
        return ""
    low, high = confidence_interval(differences)
    return f"{sum(differences) / len(differences):+.3f} [{low:+.3f}, {high:+.3f}]"


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


BASELINES = {"layer_norm_forced": "layer_norm_uniform"}  # a cause's uniform run when it is not plain uniform's


def summarize_causes(causes: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Each cause's final accuracy against its baseline of the same regime and seed (uniform, or the
    uniform run with the same change), beside IS forced on at zero price against uniform."""
    runs = pd.concat(
        [
            facts[facts["variant"].isin(["uniform", "forced"]) & (facts["price"].astype(str) == "0")],
            facts[facts["variant"] == "uniform"],
            causes,
        ]
    ).drop_duplicates(["regime", "variant", "seed"])
    rows = []
    for (regime, variant), group in runs.groupby(["regime", "variant"], sort=False):
        if variant == "uniform" or variant == "layer_norm_uniform":
            continue
        baseline = runs[(runs["regime"] == regime) & (runs["variant"] == BASELINES.get(variant, "uniform"))]
        paired = group.set_index("seed")["final_accuracy"] - baseline.set_index("seed")["final_accuracy"]
        loss = group.set_index("seed")["train_set_loss"] - baseline.set_index("seed")["train_set_loss"]
        rows.append(
            {
                "regime": regime,
                "variant": variant,
                "against": BASELINES.get(variant, "uniform"),
                "seeds": int(paired.notna().sum()),
                "gain_points": interval_text(paired.dropna().tolist()),
                "train_set_loss_difference": loss_text(loss.dropna().tolist()),
                "tau": group["tau"].mean(),
                **{name: group[name].mean() for name in WEIGHTS if name in group},
            }
        )
    return pd.DataFrame(rows)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=200.0, help="priced seconds per run")
    parser.add_argument("--prices", nargs="+", default=["0", "0.1", "from_prices"], help="IS's presample_a values")
    parser.add_argument("--rule-prices", nargs="*", help="the prices IS runs by its rule at (default: --prices)")
    parser.add_argument("--out", default="benchmarks/break_even.csv", help="every run's facts")
    parser.add_argument("--figure", default="docs/figures/break_even.png")
    parser.add_argument("--summary-only", action="store_true", help="summarize --out without training")
    parser.add_argument("--causes", nargs="+", choices=list(CAUSES), help="train these at zero price instead")
    parser.add_argument("--tau", type=float, default=1.0, help="the lr scale of the lr_tau cause")
    parser.add_argument("--causes-facts", help="with --summary-only: the causes' facts, set against --out's")
    args = parser.parse_args()
    if args.causes:
        return _train_causes(args)
    prices = [_price(price) for price in args.prices]
    facts = pd.read_csv(args.out) if args.summary_only else _train_all(args, prices)
    table, verdicts = summarize(facts)
    shown = [c for c in table.columns if c not in ("gain", "gain_low", "gain_high")]
    print("\n" + table[shown].to_markdown(index=False, floatfmt=".3f"))
    print("\n" + verdicts.to_markdown(index=False, floatfmt=".3f"))
    calibration_figure(table, Path(args.figure))
    if args.causes_facts:
        print("\n" + summarize_causes(pd.read_csv(args.causes_facts), facts).to_markdown(index=False, floatfmt=".3f"))


def _train_all(args, prices) -> pd.DataFrame:
    base = yaml.safe_load(Path("params.yaml").read_text())
    base["train"].pop("budgets", None)
    full = load_dataset(base["data"]["name"], base["data"]["root"], base["data"]["download"])
    rule_prices = prices if args.rule_prices is None else [_price(price) for price in args.rule_prices]
    # Runs already in --out are kept, not trained again (a priced run's record is the same every time).
    facts = pd.read_csv(args.out).to_dict("records") if Path(args.out).is_file() else []
    done = {(row["regime"], row["variant"], str(row["price"]), int(row["seed"])) for row in facts}
    for regime in args.regimes:
        raw = merged(base, REGIMES[regime])
        data = subset(full, raw["data"]["train_subset"], raw["data"]["test_subset"])
        for seed in args.seeds:
            variants = [("uniform", "uniform", False, "from_prices")]
            variants += [("forced", "upper_bound", True, price) for price in prices]
            variants += [("rule", "upper_bound", False, price) for price in rule_prices]
            for variant, method, forced, price in variants:
                if (regime, variant, price_label(price), seed) in done:
                    continue
                run = train_variant(raw, method, forced, seed, data, args.budget, price)
                facts.append({"regime": regime, "variant": variant, "price": price_label(price), "seed": seed, **run})
                print(pd.DataFrame([facts[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
                pd.DataFrame(facts).to_csv(args.out, index=False)
    return pd.DataFrame(facts)


def _train_causes(args) -> None:
    """Each cause at zero price, one change from IS forced on, per regime and seed; its gain against the
    uniform run of the same regime and seed in --out (the layer-norm pair against each other)."""
    base = yaml.safe_load(Path("params.yaml").read_text())
    base["train"].pop("budgets", None)
    full = load_dataset(base["data"]["name"], base["data"]["root"], base["data"]["download"])
    facts = []
    for regime in args.regimes:
        raw = merged(base, REGIMES[regime])
        data = subset(full, raw["data"]["train_subset"], raw["data"]["test_subset"])
        for seed in args.seeds:
            for cause in args.causes:
                method, forced, overrides, options = CAUSES[cause]
                if overrides.get("train", {}).get("lr_scale") == "tau":
                    overrides = {"train": {"lr_scale": raw["train"]["lr_scale"] * args.tau}}
                if options.get("importance_from") == "first_milestone":
                    options = {"importance_from": raw["train"]["lr_milestones"][0]}
                run = train_variant(merged(raw, overrides), method, forced, seed, data, args.budget, 0.0, options)
                facts.append({"regime": regime, "variant": cause, "price": "0", "seed": seed, **run})
                print(pd.DataFrame([facts[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
                pd.DataFrame(facts).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
