"""What the priced clock adds to an iteration's wall time.

Its per-iteration work: the counts (`Work.reset`, `train_step`, `copy`, and `score` where a method
scores) and the clock's `charge`. Measured two ways in one process:
- those calls alone, a million times: their cost per iteration in microseconds;
- side by side, blocks of uniform iterations (resnet8, b = 128, CIFAR-sized inputs) taking turns:
  the training loop's iteration with the clock's charge, and without it.
Usage: python -m benchmarks.priced_clock_overhead [--blocks 20] [--per-block 10]
"""

import argparse
import statistics
import time

import torch

from isample.experiment.clock import BudgetClock
from isample.experiment.models import build_model
from isample.pricing import Prices, Work
from isample.trainer import Trainer

PRICES = Prices(forward=0.000297, backward=0.000488, iteration=0.0054, score=0.00021)


def calls_alone(repeats: int = 1_000_000) -> float:
    """Seconds per iteration of the priced clock's own calls."""
    work, clock = Work(), BudgetClock(1e9, prices=PRICES, priced=True)
    started = time.perf_counter()
    for _ in range(repeats):
        work.reset()
        work.score(256)
        work.train_step(128)
        clock.charge(work.copy())
    return (time.perf_counter() - started) / repeats


def side_by_side(blocks: int, per_block: int) -> tuple[float, float]:
    """Median seconds per iteration of uniform training with and without the charge, in alternating blocks."""
    torch.manual_seed(0)
    model = build_model("resnet8", 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(2048, 3, 32, 32), torch.randint(10, (2048,))
    clock = BudgetClock(1e9, prices=PRICES, priced=True)
    times = {True: [], False: []}
    with Trainer("uniform", model, optimizer, x, y, 128, seed=0) as trainer:
        trainer.start_epoch()
        for _ in range(3):  # warm-up
            trainer.step()
        for block in range(2 * blocks):
            charged = block % 2 == 0
            started = time.perf_counter()
            for _ in range(per_block):
                iteration = trainer.step()
                if charged:
                    clock.charge(iteration.work)
            times[charged].append((time.perf_counter() - started) / per_block)
    return statistics.median(times[True]), statistics.median(times[False])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--per-block", type=int, default=10)
    args = parser.parse_args()
    alone = calls_alone()
    charged, plain = side_by_side(args.blocks, args.per_block)
    print(f"the priced clock's calls alone: {1e6 * alone:.2f} us per iteration")
    print(f"uniform iteration, median of {args.blocks} blocks each: {1e3 * plain:.1f} ms without the charge, ")
    print(f"  {1e3 * charged:.1f} ms with it: ratio {charged / plain:.4f}")
    print(f"the calls alone are {100 * alone / plain:.4f}% of an iteration")


if __name__ == "__main__":
    main()
