"""What upper_bound pays while IS is off, beside uniform, step by step in one process.

Builds both from params.yaml through the training set-up (same seed: the same batches, the same
augmentation draws), with `tau_th: auto` so its probes are included, keeps IS off by holding tau at
0, and alternates their steps so that other load on the machine hits both alike. Reports the median
and mean step time of each and their ratio (target: at most 1.03).
Usage: python -m benchmarks.is_off_cost [--steps 300] [--train-subset 10000] [--augment]
"""

import argparse
import statistics
import time
from pathlib import Path

import yaml

from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.setup import build_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train-subset", type=int, default=None, help="default: params.yaml's")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    if args.train_subset is not None:
        raw["data"]["train_subset"] = args.train_subset
    if args.augment is not None:
        raw["data"]["augment"] = args.augment
    params = validate(raw)
    data = subset(load_dataset(params.data.name, params.data.root), params.data.train_subset, params.data.test_subset)
    budget = params.train.budget_list[0]
    samplers = {
        method: build_setup(run_spec(params, method, budget, 0), data).sampler for method in ("uniform", "upper_bound")
    }
    seconds = {method: [] for method in samplers}
    for step in range(args.steps + 5):
        for method, sampler in samplers.items():
            started = time.perf_counter()
            it = sampler.step()
            if step >= 5:  # the first steps pay one-off costs
                seconds[method].append(time.perf_counter() - started)
            if method == "upper_bound":
                assert not it.used_importance
                sampler.method.tau = 0.0
    medians = {method: statistics.median(values) for method, values in seconds.items()}
    means = {method: statistics.fmean(values) for method, values in seconds.items()}
    print(f"{len(data.train_x)} training images, augment {params.data.augment}, {args.steps} steps each, interleaved")
    for method in samplers:
        print(f"{method:12s} median {1000 * medians[method]:.1f} ms, mean {1000 * means[method]:.1f} ms")
    print(
        f"upper_bound with IS off / uniform: median x{medians['upper_bound'] / medians['uniform']:.3f}, "
        f"mean x{means['upper_bound'] / means['uniform']:.3f}"
    )


if __name__ == "__main__":
    main()
