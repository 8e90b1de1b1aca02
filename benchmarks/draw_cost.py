"""What the draw of b from the presample costs, for each draw, beside the IS iteration it is part of.

resnet8 on random CIFAR-shaped data (the time does not depend on the pixels), b = 128, IS forced on at
p = 2 (params.yaml's) and at B = 10,000 (p = 78.125), each draw in turn, iteration by iteration in one
process, so that other load on the machine hits them alike. Per draw and presample: the median
seconds of the iteration's `draw_batch` phase (the draw, its weights and the gather of the b trained
examples), of the predicted speed-up's moments (`draw_moments`, timed apart on the same scores), and
their share of the median IS iteration.
Usage: python -m benchmarks.draw_cost [--iterations 30]
"""

import argparse
import statistics
import time

import torch

from isample.experiment.models import build_model
from isample.methods.catalog import UpperBoundOptions
from isample.methods.speedup import draw_moments
from isample.names import DRAWS
from isample.trainer import Trainer

B_LARGE = 10_000


def sampler_for(draw: str, ratio: float, x: torch.Tensor, y: torch.Tensor, b: int) -> Trainer:
    model = build_model("resnet8", 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    options = UpperBoundOptions(presample=ratio, always_importance=True, draw=draw)
    return Trainer("upper_bound", model, optimizer, x, y, b, options=options, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    b = args.batch_size
    generator = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(2 * B_LARGE, 3, 32, 32, generator=generator),
        torch.randint(10, (2 * B_LARGE,), generator=generator),
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, b = {b}")
    print("| presample B | draw | IS iteration (ms) | draw_batch (ms) | moments (ms) | draw + moments share |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in (2 * b, B_LARGE):
        samplers = {draw: sampler_for(draw, size / b, x, y, b) for draw in DRAWS}
        totals, draws, moments = ({draw: [] for draw in DRAWS} for _ in range(3))
        for sampler in samplers.values():
            sampler.start_epoch()
            sampler.step()  # one-off costs
        for _ in range(args.iterations):
            for draw, sampler in samplers.items():
                started = time.perf_counter()
                it = sampler.step()
                totals[draw].append(time.perf_counter() - started)
                draws[draw].append(it.phases["draw_batch"])
                scores = torch.rand(size, generator=generator)
                started = time.perf_counter()
                draw_moments(scores, b, draw, 0.1)
                moments[draw].append(time.perf_counter() - started)
        for draw in DRAWS:
            total, drawn, moment = (statistics.median(v[draw]) for v in (totals, draws, moments))
            share = (drawn + moment) / total
            print(f"| {size} | {draw} | {1e3 * total:.1f} | {1e3 * drawn:.2f} | {1e3 * moment:.2f} | {share:.2%} |")
        for sampler in samplers.values():
            sampler.close()


if __name__ == "__main__":
    main()
