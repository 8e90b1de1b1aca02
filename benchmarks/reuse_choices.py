"""reuse's open choices measured: how an unseen example starts (`unseen`: max | mean of the known scores),
whether scores expire (`max_age` epochs, 0 = never) and the floor eps (`smoothing`), each against
uniform on the same seeds.

The default data, model and schedule of params.yaml; the budget is counted in CPU seconds of this
process (`--cpu-budget`, 200 = about 100 s of wall time on 2 cores), so other load on the machine
shifts no run against another. Per run: final and best test accuracy, and the selection overhead,
(all phases but the training step) / training step, from the record's own phase times.
Usage: python -m benchmarks.reuse_choices [--seeds 0 1] [--cpu-budget 200]
       [--variants max:0:0.2 mean:0:0.2 max:2:0.2 max:0:0.5]   (unseen:max_age:smoothing; ~2 min a run)
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.switch_on import default_data, single_run
from isample.experiment.config import validate
from isample.phases import PHASES, TRAIN_STEP_PHASES


def overhead(epochs: pd.DataFrame) -> float:
    """Seconds outside the training step over seconds in it, over the whole run."""
    train = sum(epochs[f"time_{phase}"].sum() for phase in TRAIN_STEP_PHASES)
    other = sum(epochs[f"time_{phase}"].sum() for phase in PHASES if phase not in TRAIN_STEP_PHASES)
    return other / train


def facts(method: str, variant: str, seed: int, record) -> dict:
    epochs = record.epochs
    return {
        "method": method,
        "variant": variant,
        "seed": seed,
        "final": epochs["test_accuracy"].iloc[-1],
        "best": epochs["test_accuracy"].max(),
        "overhead": overhead(epochs),
        "epochs": len(epochs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cpu-budget", type=float, default=200.0)
    parser.add_argument("--variants", nargs="+", default=["max:0:0.2", "mean:0:0.2", "max:2:0.2", "max:0:0.5"])
    parser.add_argument("--out", default="benchmarks/reuse_choices.csv")
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].pop("budgets", None)
    raw["train"].update(budget=f"{args.cpu_budget:g}s", seeds=args.seeds)
    data = default_data(validate(raw))
    rows = []
    for seed in args.seeds:
        uniform = single_run(validate(raw), data, "uniform", seed, progress=False, clock=time.process_time)
        rows.append(facts("uniform", "-", seed, uniform))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.4f"), flush=True)
        for variant in args.variants:
            unseen, max_age, smoothing = variant.split(":")
            raw["methods"]["reuse"].update(unseen=unseen, max_age=float(max_age), smoothing=float(smoothing))
            record = single_run(validate(raw), data, "reuse", seed, progress=False, clock=time.process_time)
            rows.append(facts("reuse", variant, seed, record))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=False, float_format="%.4f"), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    uniform_final = table[table["method"] == "uniform"].set_index("seed")["final"]
    table["minus_uniform"] = table["final"] - table["seed"].map(uniform_final)
    summary = table.groupby(["method", "variant"], sort=False)[["final", "best", "minus_uniform", "overhead"]].mean()
    print("\nmeans over seeds:\n" + summary.to_string(float_format="%.4f"))


if __name__ == "__main__":
    main()
