"""Which default regime answers something: uniform and upper_bound on a few candidate data regimes.

Per candidate (training-set size, augmentation; the default model, schedule and budget otherwise),
one uniform and one upper_bound run of seed 0. Reported: epochs, uniform's final train accuracy (on
its batches: still below 0.99 means the model is still learning what the data teaches), both final
test accuracies (the per-epoch test subset), when IS first switched on and the share of upper_bound's
iterations with IS on, and tau against tau_th at the end. While IS is off upper_bound trains the
uniform run's own batches, so its epochs match uniform's until it switches on.

The budget is counted in CPU seconds of this process (`--cpu-budget`, 400 = about 200 s of wall time
on 2 cores), so that other load on the machine shifts no run against another.
Usage: python -m benchmarks.default_regime [--cpu-budget 400] [--candidates 4k 4k-aug 10k 10k-aug 50k-aug]
       (about 7 minutes per candidate on 2 CPU cores)
"""

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import yaml

from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.train import train_run

CANDIDATES = {  # name -> (train_subset, augment)
    "4k": (4000, False),
    "4k-aug": (4000, True),
    "10k": (10000, False),
    "10k-aug": (10000, True),
    "20k-aug": (20000, True),
    "50k-aug": (0, True),
}


def candidate_facts(uniform: pd.DataFrame, importance: pd.DataFrame) -> dict:
    on = importance.index[importance["scored_share"] > 0]
    iterations = importance["iterations"]
    return {
        "epochs_uniform": len(uniform),
        "epochs_upper_bound": len(importance),
        "train_acc_uniform": uniform["train_accuracy"].iloc[-1],
        "test_acc_uniform": uniform["test_accuracy"].iloc[-1],
        "test_acc_upper_bound": importance["test_accuracy"].iloc[-1],
        "tau_end": uniform["tau"].iloc[-1],
        "tau_max": uniform["tau"].max(),
        "tau_th_end": importance["tau_threshold"].iloc[-1],
        "is_on_at_s": importance.loc[on[0], "train_seconds"] if len(on) else math.nan,
        "is_share": float((importance["scored_share"] * iterations).sum() / iterations.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-budget", type=float, default=400.0)
    parser.add_argument("--candidates", nargs="+", default=["4k", "4k-aug", "10k", "10k-aug", "50k-aug"])
    parser.add_argument("--out", default="benchmarks/default_regime.csv")
    parser.add_argument("--epochs-dir", default=None, help="also write every run's epochs there as CSV")
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].pop("budgets", None)
    raw["train"].update(budget=f"{args.cpu_budget:g}s", seeds=[0])
    full = load_dataset(raw["data"]["name"], raw["data"]["root"], raw["data"]["download"])
    rows = []
    for name in args.candidates:
        size, augment = CANDIDATES[name]
        raw["data"].update(train_subset=size, augment=augment)
        params = validate(raw)
        data = subset(full, size, params.data.test_subset)
        epochs = {}
        for method in ("uniform", "upper_bound"):
            spec = run_spec(params, method, params.train.budget_list[0], 0)
            epochs[method] = train_run(spec, data, progress=False, clock=time.process_time).epochs
            if args.epochs_dir:
                Path(args.epochs_dir).mkdir(parents=True, exist_ok=True)
                epochs[method].to_csv(Path(args.epochs_dir) / f"{name}.{method}.csv", index=False)
        rows.append({"candidate": name, "train_examples": len(data.train_x), "augment": augment})
        rows[-1].update(candidate_facts(epochs["uniform"], epochs["upper_bound"]))
        print(pd.DataFrame([rows[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    print("\n" + table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
