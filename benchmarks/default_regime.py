"""Which default regime answers something: uniform and upper_bound on a few candidate data regimes.

Per candidate (training-set size, augmentation; the default model, schedule and budget otherwise),
one uniform and one upper_bound run of seed 0. Reported: epochs, uniform's final train accuracy (on
its batches: still below 0.99 means the model is still learning what the data teaches), both final
test accuracies (the per-epoch test subset), when IS first switched on and the share of upper_bound's
iterations with IS on, and tau against tau_th at the end. While IS is off upper_bound trains the
uniform run's own batches, so its epochs match uniform's until it switches on.

The budget is counted in CPU seconds of this process (`--cpu-budget`, 400 = about 200 s of wall time
on 2 cores), so that other load on the machine shifts no run against another: --jobs 1. About 7 minutes
per candidate on 2 CPU cores. Measured: docs/default-regime.md.
"""

import argparse
import math

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.regimes import data_of, params_of, train_timed

CANDIDATES = ("4k", "4k-aug", "10k", "10k-aug", "20k-aug", "50k-aug")  # regimes of benchmarks/regimes.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu-budget", type=float, default=400.0)
    parser.add_argument("--candidates", nargs="+", default=["4k", "4k-aug", "10k", "10k-aug", "50k-aug"])


def grid(args) -> list[dict]:
    unknown = set(args.candidates) - set(CANDIDATES)
    if unknown:
        raise SystemExit(f"error: --candidates {' '.join(sorted(unknown))}: expected {', '.join(CANDIDATES)}")
    return [{"regime": name, "method": method} for name in args.candidates for method in ("uniform", "upper_bound")]


def train(point: dict, args) -> dict:
    data = data_of(point["regime"])
    run, _, seconds = train_timed(
        params_of(point["regime"]), point["method"], 0, data, clock="cpu", budget=args.cpu_budget
    )
    epochs = run.epochs
    facts = {
        "run_status": run.status,
        "train_examples": len(data.train_x),
        "augment": params_of(point["regime"])["data"]["augment"],
        "epochs": len(epochs),
        "test_accuracy": epochs["test_accuracy"].iloc[-1],
        "run_seconds": seconds,
    }
    if point["method"] == "uniform":
        last = epochs.iloc[-1]
        return {
            **facts,
            "train_accuracy": last["train_accuracy"],
            "tau_end": last["tau"],
            "tau_max": epochs["tau"].max(),
        }
    on = epochs.index[epochs["scored_share"] > 0]
    iterations = epochs["iterations"]
    return {
        **facts,
        "tau_th_end": epochs["tau_threshold"].iloc[-1],
        "is_on_at_s": epochs.loc[on[0], "train_seconds"] if len(on) else math.nan,
        "is_share": float((epochs["scored_share"] * iterations).sum() / iterations.sum()),
    }


def summarize(facts: pd.DataFrame, args) -> list:
    """One row per candidate: uniform's and upper_bound's facts side by side."""
    rows = []
    for name, runs in facts.groupby("regime", sort=False):
        if set(runs["method"]) != {"uniform", "upper_bound"}:
            continue  # a candidate with a method still to train (or failed): nothing to set side by side
        uniform = runs[runs["method"] == "uniform"].iloc[0]
        importance = runs[runs["method"] == "upper_bound"].iloc[0]
        rows.append(
            {
                "candidate": name,
                "train_examples": uniform["train_examples"],
                "augment": uniform["augment"],
                "epochs_uniform": uniform["epochs"],
                "epochs_upper_bound": importance["epochs"],
                "train_acc_uniform": uniform["train_accuracy"],
                "test_acc_uniform": uniform["test_accuracy"],
                "test_acc_upper_bound": importance["test_accuracy"],
                "tau_end": uniform["tau_end"],
                "tau_max": uniform["tau_max"],
                "tau_th_end": importance["tau_th_end"],
                "is_on_at_s": importance["is_on_at_s"],
                "is_share": importance["is_share"],
            }
        )
    return [("", pd.DataFrame(rows))]


STUDY = Study(
    name="default_regime",
    doc=__doc__,
    keys=("regime", "method"),
    grid=grid,
    train=train,
    summarize=summarize,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"cpu_budget": args.cpu_budget},
    estimate_seconds=lambda point, args: args.cpu_budget / 2 + 20,
)

if __name__ == "__main__":
    main(STUDY)
