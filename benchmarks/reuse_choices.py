"""reuse's open choices measured: how an unseen example starts (`unseen`: max | mean of the known scores),
whether scores expire (`max_age` epochs, 0 = never) and the floor eps (`smoothing`), each against
uniform on the same seeds.

The default data, model and schedule of params.yaml; the budget is counted in CPU seconds of this
process (`--cpu-budget`, 200 = about 100 s of wall time on 2 cores), so other load on the machine
shifts no run against another: --jobs 1. Per run: final and best test accuracy, and the selection
overhead, (all phases but the training step) / training step, from the record's own phase times.
Variants are unseen:max_age:smoothing; about 2 minutes a run. Measured: docs/methods.md.
"""

import argparse

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.regimes import data_of, params_of, train_timed
from isample.phases import PHASES, TRAIN_STEP_PHASES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cpu-budget", type=float, default=200.0)
    parser.add_argument("--variants", nargs="+", default=["max:0:0.2", "mean:0:0.2", "max:2:0.2", "max:0:0.5"])


def grid(args) -> list[dict]:
    return [
        {"method": method, "variant": variant, "seed": seed}
        for seed in args.seeds
        for method, variant in [("uniform", "-"), *(("reuse", variant) for variant in args.variants)]
    ]


def overhead(epochs: pd.DataFrame) -> float:
    """Seconds outside the training step over seconds in it, over the whole run."""
    train = sum(epochs[f"time_{phase}"].sum() for phase in TRAIN_STEP_PHASES)
    other = sum(epochs[f"time_{phase}"].sum() for phase in PHASES if phase not in TRAIN_STEP_PHASES)
    return other / train


def train(point: dict, args) -> dict:
    changes = {}
    if point["method"] == "reuse":
        unseen, max_age, smoothing = point["variant"].split(":")
        changes = {"methods": {"reuse": {"unseen": unseen, "max_age": float(max_age), "smoothing": float(smoothing)}}}
    run, _, seconds = train_timed(
        params_of("params", changes),
        point["method"],
        point["seed"],
        data_of("params"),
        clock="cpu",
        budget=args.cpu_budget,
    )
    epochs = run.epochs
    return {
        "run_status": run.status,
        "final": epochs["test_accuracy"].iloc[-1],
        "best": epochs["test_accuracy"].max(),
        "overhead": overhead(epochs),
        "epochs": len(epochs),
        "run_seconds": seconds,
    }


def summarize(facts: pd.DataFrame, args) -> list:
    uniform_final = facts[facts["method"] == "uniform"].set_index("seed")["final"]
    facts = facts.assign(minus_uniform=facts["final"] - facts["seed"].map(uniform_final))
    means = facts.groupby(["method", "variant"], sort=False)[["final", "best", "minus_uniform", "overhead"]].mean()
    return [("means over seeds:", means.reset_index())]


STUDY = Study(
    name="reuse_choices",
    doc=__doc__,
    keys=("method", "variant", "seed"),
    grid=grid,
    train=train,
    summarize=summarize,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"cpu_budget": args.cpu_budget},
    estimate_seconds=lambda point, args: args.cpu_budget / 2 + 20,
    floatfmt=".4f",
)

if __name__ == "__main__":
    main(STUDY)
