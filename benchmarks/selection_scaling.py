"""Each selection method's own work per iteration, without a model, as the data set grows.

    python -m benchmarks.selection_scaling --baseline 2f4894c     # about 3 minutes on 2 cores

For N = 50 k, 1.28 M (ImageNet) and 10 M examples and b = 256, every method of the family selects
and observes as it does in training, with the model's part made negligible: inputs of one feature,
a linear model for the forwards of upper_bound (IS on at p = 2) and Selective-Backprop (after its
priming pass), whose time (the `presample_forward` phase) is taken out, and the training forward's
logits and losses supplied at random. Score tables start
full (reuse: every example scored; InfoBatch: every loss known, so it prunes). One thread, as a data
loader's main process would give it.

Per method and N: `steady`, the median milliseconds of an iteration's select + observe; `per pass`,
what a pass's start costs beyond that (a permutation of N, InfoBatch's pruning), once per pass;
`amortised` = steady + per pass / iterations per pass. With `--baseline REV`, the same measurement of
the code at git revision REV (a temporary worktree) is printed beside it, each N measured in a fresh
process of each code, one right after the other.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from isample.examples import Examples
from isample.methods import method_class
from isample.methods.base import Context
from isample.phases import MODEL_PHASES, PhaseTimer
from isample.step import StepResult

METHODS = ("uniform", "upper_bound", "reuse", "selective_backprop", "infobatch")
SIZES = (50_000, 1_280_000, 10_000_000)
CLASSES = 10


def options_for(name: str):
    """Each method as it runs in training, past any warm-up: IS on, no priming pass."""
    options = method_class(name).Options()
    if name == "upper_bound":
        options = type(options)(**{**vars(options), "always_importance": True, "presample": 2.0})
    if name == "selective_backprop":
        options = type(options)(**{**vars(options), "prime_passes": 0})
    return options


def method_over(name: str, size: int, batch_size: int):
    generator = torch.Generator().manual_seed(0)
    examples = Examples(
        torch.zeros(size, 1), torch.randint(CLASSES, (size,), generator=generator), torch.device("cpu"), None, generator
    )
    model = torch.nn.Linear(1, CLASSES)
    timer = PhaseTimer(True, torch.device("cpu"))  # to take the model's forwards out
    method = method_class(name)(Context(model, examples, batch_size, timer), options_for(name))
    if name == "reuse":  # a full table: every example scored
        scored = torch.rand(size, generator=generator)
        method.load_state_dict(
            {"tau": 1.0, "scores": scored, "scored_at": torch.zeros(size, dtype=torch.int64), "iterations": 1}
        )
    if name == "infobatch":  # every loss known, so the epoch prunes
        method.losses = torch.rand(size, generator=generator)
    return method, generator


def measure(name: str, size: int, batch_size: int, iterations: int) -> dict:
    """The method's own seconds per iteration: select + observe, less its model forwards' phase."""
    method, generator = method_over(name, size, batch_size)
    timer = method.context.timer
    seconds = []
    per_pass = None
    for index in range(iterations + 1):
        logits = torch.randn(batch_size, CLASSES, generator=generator)
        timer.reset()
        started = time.perf_counter()
        if index == 0:
            per_pass = method.start_epoch()  # iterations in this pass
        selection = method.select()
        losses = torch.rand(len(selection.indices), generator=generator)
        method.observe(selection, StepResult(logits[: len(losses)], losses, losses.mean(), losses.mean(), 0, 0))
        seconds.append(time.perf_counter() - started - sum(timer.snapshot()[phase] for phase in MODEL_PHASES))
    steady = statistics.median(seconds[1:])
    pass_start = max(0.0, seconds[0] - steady)
    return {
        "method": name,
        "size": size,
        "steady_ms": steady * 1e3,
        "per_pass_ms": pass_start * 1e3,
        "amortised_ms": (steady + pass_start / per_pass) * 1e3,
    }


def run(sizes, batch_size: int, iterations: int) -> list[dict]:
    torch.set_num_threads(1)
    rows = []
    for size in sizes:
        for name in METHODS:
            rows.append(measure(name, size, batch_size, iterations))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def measured_in(folder: Path, arguments: list[str]) -> list[dict]:
    """The rows of this benchmark run in a fresh process on the code in `folder`."""
    command = [sys.executable, "-m", "benchmarks.selection_scaling", "--json", *arguments]
    return json.loads(subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout)


def side_by_side(revision: str, sizes, arguments: list[str]) -> tuple[list[dict], list[dict]]:
    """Today's rows and those of the code at `revision` (a temporary git worktree), each size measured
    in a fresh process of each, one right after the other, so both see the machine alike."""
    repository = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="isample-baseline-"))
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(folder), revision], cwd=repository, check=True)
    try:
        shutil.copy2(__file__, folder / "benchmarks" / "selection_scaling.py")
        now, before = [], []
        for size in sizes:
            before += measured_in(folder, ["--sizes", str(size), *arguments])
            now += measured_in(repository, ["--sizes", str(size), *arguments])
        return now, before
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=repository, check=True)


def table(rows: list[dict], before: list[dict] | None) -> str:
    earlier = {(row["method"], row["size"]): row for row in before or []}
    header = "| method | N | steady ms | per pass ms | amortised ms/iteration |"
    if before is not None:
        header += " baseline amortised ms/iteration | baseline / now |"
    lines = [header, "|" + "---|" * header.count(" |")]
    for row in rows:
        line = (
            f"| {row['method']} | {row['size']:,} | {row['steady_ms']:.3f} | {row['per_pass_ms']:.1f} | "
            f"{row['amortised_ms']:.3f} |"
        )
        if before is not None:
            then = earlier[(row["method"], row["size"])]["amortised_ms"]
            line += f" {then:.3f} | {then / row['amortised_ms']:.1f}x |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--baseline", metavar="REV", help="measure the code at this git revision beside today's")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    args = parser.parse_args()
    passed = ["--batch-size", str(args.batch_size), "--iterations", str(args.iterations)]
    if args.baseline:
        rows, before = side_by_side(args.baseline, args.sizes, passed)
    else:
        rows, before = run(args.sizes, args.batch_size, args.iterations), None
    if args.json:
        print(json.dumps(rows))
        return
    print(f"b = {args.batch_size}, one thread, torch {torch.__version__}")
    print(table(rows, before))


if __name__ == "__main__":
    main()
