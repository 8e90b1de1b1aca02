"""Training throughput (images/s) of one run in 1 and in 2 processes (DDP, gloo on CPU, the threads split
between the processes), on the default data and model of params.yaml, uniform and upper_bound alike.

Informative only on a CPU: two processes share the same cores, so the figure shows DDP's overhead
rather than a speed-up; on N GPUs each process has its own device.
Usage: python -m benchmarks.ddp_scaling [--processes 1 2] [--iterations 40] [--methods uniform upper_bound]
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch
import yaml

from benchmarks.regimes import data_of
from isample.distributed import SINGLE, end_process, exit_code, leave
from isample.experiment import launch
from isample.experiment.config import validate
from isample.experiment.runs import run_spec
from isample.experiment.setup import build_setup

WARMUP = 5


def worker(method: str, iterations: int) -> None:
    """One rank: time `iterations` sampler steps after a warm-up; rank 0 prints images/s as JSON."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"]["processes"] = int(os.environ.get("WORLD_SIZE", 1))
    params = validate(raw)
    group = launch.join(torch.device("cpu")) if launch.under_torchrun() else SINGLE
    spec = run_spec(params, method, params.train.budget_list[0], seed=0)
    with build_setup(spec, data_of("params"), group) as setup:
        for _ in range(WARMUP):
            setup.sampler.step()
        group.mean([0.0])  # start together
        started = time.perf_counter()
        for _ in range(iterations):
            setup.sampler.step()
        group.mean([0.0])
        seconds = time.perf_counter() - started
    if group.is_main:
        print(
            json.dumps(
                {
                    "method": method,
                    "processes": group.world_size,
                    "threads": torch.get_num_threads(),
                    "images_per_second": iterations * params.batch_size / seconds,
                }
            )
        )
    leave()  # under torchrun: all ranks done (one process: nothing to leave)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--methods", nargs="+", default=["uniform", "upper_bound"])
    parser.add_argument("--worker", metavar="METHOD", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # a torchrun process: it ends without finalization (isample.distributed.end_process)
        end_process(exit_code(lambda: worker(args.worker, args.iterations)))
    results = []
    for method in args.methods:
        for n in args.processes:
            command = launch.torchrun_command(
                "benchmarks.ddp_scaling", ["--worker", method, "--iterations", str(args.iterations)], n
            )
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // n))}
            output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(next(line for line in output.splitlines() if line.startswith("{"))))
            print(results[-1], flush=True)
    for method in args.methods:
        rows = {r["processes"]: r["images_per_second"] for r in results if r["method"] == method}
        if 1 in rows:
            print(
                f"{method}: "
                + ", ".join(f"{n} process(es) {v:.0f} images/s ({v / rows[1]:.2f}x)" for n, v in rows.items())
            )


if __name__ == "__main__":
    main()
