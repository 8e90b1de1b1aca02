"""One-shot GPU check: the CUDA-only tests, then notebook experiment 1 in minutes with the GPU
recipe, then the cost at several presample ratios, as one table.

    bash benchmarks/gpu_check.sh                     # on a machine with one NVIDIA GPU: about 6-8 minutes
    python -m benchmarks.gpu_check --device cpu --model resnet8 --budget 5s --train-subset 500 \\
        --presamples 2 3 --timing-iterations 3       # the script itself, end to end, on a CPU

Steps: (1) `pytest tests/test_cuda.py` (skipped without CUDA); (2) the data set from `--data-root`
(torchvision's files or an ImageFolder archive, as `prepare` finds them), decoded in memory; (3)
throughput side by side in one process, taking turns: a plain torch loop (`DataLoader(shuffle=True)`,
pinned memory, the same model, b, augmentation, bf16 autocast and channels-last), isample's uniform
as the pipeline trains it (phases timed by CUDA events), and IS forced on at p = 2; (4)
upper_bound and uniform, each for `--budget` of training time from the same initial weights, with
params.yaml's settings and the recipe (ResNet-18, all of CIFAR-10, augmentation, bf16 autocast,
channels-last, `sampler.forward_chunk: 0`, lr drops at 50% and 75%); (5) the timing stage's
measurement at every ratio of `--presamples` (the measured a at each). It needs torch, torchvision,
numpy, pandas, pyyaml, pillow, tqdm and pydantic, not DVC: `benchmarks/gpu_check.sh` installs
pydantic from wheels in `.whl/` (`make gpu-wheels`) where it is missing. Everything it measured goes
to `--out` (default gpu_check/): `summary.md` (the tables), `summary.json`, `<method>.epochs.csv`,
`timing.iterations.csv`, `timing.per_ratio.csv`, `tests.log`.
"""

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, TensorDataset

import recipes
from isample.examples import stop_workers
from isample.experiment.config import ConfigError, validate
from isample.experiment.data import BatchTransform, DataError, load_dataset, subset
from isample.experiment.runs import run_spec
from isample.experiment.setup import build_setup, resolve_device
from isample.experiment.timing import IMPORTANCE, UNIFORM, measure_params
from isample.experiment.timing_summary import summarize
from isample.experiment.train import train_run
from isample.step import autocast

REPO = Path(__file__).resolve().parents[1]


def recipe(args: argparse.Namespace, cuda: bool) -> dict:
    """params.yaml overridden by the GPU recipe's experiment 1 (recipes/gpu.yaml) and this check's arguments."""
    raw = recipes.apply(yaml.safe_load((REPO / "params.yaml").read_text()), recipes.overrides("1"))
    raw["data"].update(
        name=args.dataset,
        root=args.data_root,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
    )
    raw["model"]["name"] = args.model
    raw["train"].update(
        budgets=[args.budget],
        seeds=[args.seed],
        device=args.device,
        amp=cuda,  # bf16 autocast and channels-last are the GPU recipe; a CPU run keeps fp32
        channels_last=cuda,
        processes=1,
        nodes=1,
    )
    raw["timing"].update(presamples=args.presamples, iterations=args.timing_iterations, forward_chunks=[0])
    return raw


def run_tests(out: Path) -> str:
    """The CUDA-only tests; their pytest summary line."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    (out / "tests.log").write_text(result.stdout + result.stderr)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else f"pytest exited {result.returncode} with no output"


class PlainLoop:
    """The loop users write: DataLoader(shuffle=True) with pinned memory, the batch augmented on the
    device, bf16 autocast and channels-last as the recipe sets them, SGD; no timing, no selection."""

    def __init__(self, setup, data, batch_size: int):
        self.model, self.device, self.dtype = setup.model, setup.device, setup.autocast_dtype
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        channels_last = next(self.model.parameters()).is_contiguous(memory_format=torch.channels_last)
        self.transform = BatchTransform(data.mean, data.std, True, channels_last, torch.Generator().manual_seed(1))
        self.loader = DataLoader(
            TensorDataset(data.train_x, data.train_y),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
        )
        self.batches = iter(self.loader)

    def step(self) -> None:
        try:
            x, y = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            x, y = next(self.batches)
        x = self.transform(x.to(self.device, non_blocking=True))
        with autocast(self.device, self.dtype):
            loss = F.cross_entropy(self.model(x), y.to(self.device, non_blocking=True))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def close(self) -> None:
        stop_workers(self.loader)


def throughput(params, data, iterations: int, rounds: int = 3, warmup: int = 10) -> dict[str, float]:
    """Images per second of the plain loop, isample's uniform and IS forced on at p = 2, each on its own
    copy of the same initial weights, taking turns `rounds` times; the device is synchronised only
    around each turn."""
    budget, seed = params.train.budget_list[0], params.train.seeds[0]
    uniform = build_setup(run_spec(params, UNIFORM, budget, seed), data)
    forced = run_spec(params, IMPORTANCE, budget, seed)
    forced = dataclasses.replace(
        forced, options=dataclasses.replace(forced.options, presample=2.0, always_importance=True)
    )
    importance = build_setup(forced, data)
    loops = {
        "plain torch loop": PlainLoop(
            build_setup(run_spec(params, UNIFORM, budget, seed), data), data, params.batch_size
        ),
        "isample uniform": uniform.sampler,
        "isample IS forced on, p = 2": importance.sampler,
    }
    seconds = dict.fromkeys(loops, 0.0)
    try:
        for loop in loops.values():
            for _ in range(warmup):
                loop.step()
        for _ in range(rounds):
            for name, loop in loops.items():
                _synchronize(uniform.device)
                started = time.perf_counter()
                for _ in range(iterations):
                    loop.step()
                _synchronize(uniform.device)
                seconds[name] += time.perf_counter() - started
    finally:
        for loop in loops.values():
            loop.close()
    return {name: rounds * iterations * params.batch_size / total for name, total in seconds.items()}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput_table(images_per_second: dict[str, float]) -> str:
    plain = images_per_second["plain torch loop"]
    lines = ["| loop (taking turns, one process) | images/s | / plain loop |", "|---|---|---|"]
    lines += [f"| {name} | {rate:.0f} | {rate / plain:.3f}x |" for name, rate in images_per_second.items()]
    return "\n".join(lines) + "\n"


def train_both(params, data, out: Path) -> dict:
    """upper_bound and uniform for the budget from the same initial weights; what each reached."""
    trained = {}
    for method in (IMPORTANCE, UNIFORM):
        spec = run_spec(params, method, params.train.budget_list[0], params.train.seeds[0])
        run = train_run(spec, data, progress=sys.stderr.isatty())
        run.epochs.to_csv(out / f"{method}.epochs.csv", index=False)
        last = run.epochs.iloc[-1]
        trained[method] = {
            "status": run.status,
            "epochs": int(last["epoch"]),
            "iterations": int(last["total_iterations"]),
            "train_seconds": float(last["train_seconds"]),
            "images_per_second": int(last["total_iterations"]) * params.batch_size / float(last["train_seconds"]),
            "final_test_accuracy": run.final_accuracy,
            "scored_share": float(run.scored_share),
        }
    return trained


def table(device_name: str, tests: str, trained: dict, per_ratio, args, batch_size: int) -> str:
    """The check's one table, as markdown."""
    lines = [
        f"GPU check on {device_name}, torch {torch.__version__}: {args.model}, {args.dataset}, "
        f"budget {args.budget} each",
        f"CUDA tests: {tests}",
        "",
        "| run | images/s | final test accuracy | epochs | IS share | a | a / p | non-model share "
        "| notebook model's error | measured model's error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, facts in trained.items():
        lines.append(
            f"| {method} (trained) | {facts['images_per_second']:.0f} | {facts['final_test_accuracy']:.4f} | "
            f"{facts['epochs']} | {facts['scored_share']:.2f} | | | | | |"
        )
    for row in per_ratio.itertuples():
        label = f"{row.run} p={row.presample:g}" if not math.isnan(row.presample) else row.run
        images = batch_size / row.measured_seconds  # trained images per second of a whole iteration
        lines.append(
            f"| {label} (timed) | {images:.0f} | | | | {row.a:.3f} | {_cell(row, 'a_per_p')} | "
            f"{row.non_model_share:.3f} | {_cell(row, 'prediction_error')} | "
            f"{_cell(row, 'prediction_error_measured')} |"
        )
    return "\n".join(lines) + "\n"


def _cell(row, name: str) -> str:
    value = getattr(row, name, math.nan)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "gpu_check", help="folder for what it measured")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu", "auto"])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-root", default="data/raw")
    parser.add_argument("--train-subset", type=int, default=0, help="0: all training images")
    parser.add_argument("--test-subset", type=int, default=0, help="test images per epoch's curve, 0: all")
    parser.add_argument("--budget", default="2m", help="training time of each method")
    parser.add_argument("--presamples", type=float, nargs="+", default=[2, 3, 5, 7])
    parser.add_argument("--timing-iterations", type=int, default=20)
    parser.add_argument("--throughput-iterations", type=int, default=50, help="per turn, 3 turns per loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tests", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    try:
        device = resolve_device(args.device)
        params = validate(recipe(args, device.type == "cuda"))
        data = subset(load_dataset(args.dataset, args.data_root), params.data.train_subset, params.data.test_subset)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    tests = "not run (--skip-tests)" if args.skip_tests else run_tests(out)
    print(f"CUDA tests: {tests}", flush=True)
    rates = throughput(params, data, args.throughput_iterations)
    print(throughput_table(rates), flush=True)
    trained = train_both(params, data, out)
    iterations = measure_params(params, data, progress=sys.stderr.isatty())
    per_ratio = summarize(iterations, params.batch_size)
    iterations.to_csv(out / "timing.iterations.csv", index=False)
    per_ratio.to_csv(out / "timing.per_ratio.csv", index=False)
    summary = throughput_table(rates) + "\n" + table(device_name, tests, trained, per_ratio, args, params.batch_size)
    (out / "summary.md").write_text(summary)
    facts = {
        "device": device_name,
        "torch": torch.__version__,
        "arguments": {key: str(value) for key, value in vars(args).items()},
        "tests": tests,
        "throughput_images_per_second": rates,
        "trained": trained,
        "per_ratio": json.loads(per_ratio.to_json(orient="records")),
        "seconds": time.perf_counter() - started,
    }
    (out / "summary.json").write_text(json.dumps(facts, indent=2))
    print(summary + f"\nwrote {out} in {facts['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
