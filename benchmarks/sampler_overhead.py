"""Non-model time of an IS iteration, and the notebook's a, per presample ratio (issue: sampler core).

Runs real ImportanceSampler iterations (IS forced on) of a CIFAR ResNet on CPU, b = 128, and
reports per p: the median iteration time, the non-model share (everything but the presample
forward and the training step) as median and worst iteration, and a = presample time / training
step time. Usage: python -m benchmarks.sampler_overhead [--model resnet8] [--chunk 64]
"""

import argparse

import torch

from benchmarks.regimes import synthetic_cifar
from isample.experiment.data import BatchTransform
from isample.experiment.models import build_model
from isample.experiment.timing import IMPORTANCE, configurations, measure
from isample.experiment.timing_summary import summarize
from isample.methods.catalog import UpperBoundOptions
from isample.trainer import Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--presamples", type=float, nargs="+", default=[2, 3, 5, 7])
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    data = synthetic_cifar()
    torch.manual_seed(0)
    model = build_model(args.model, 10)
    transform = BatchTransform(data.mean, data.std, augment=args.augment)

    def make_sampler(configuration):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return Trainer(
            configuration.run,
            model,
            optimizer,
            data.train_x,
            data.train_y,
            args.batch_size,
            options=configuration.options,
            transform=transform,
        )

    measured = configurations(UpperBoundOptions(), args.presamples, [args.chunk])
    iterations = measure(make_sampler, measured, warmup=3, iterations=args.iterations, progress=False)
    per_ratio = summarize(iterations, args.batch_size)
    print(
        f"{args.model}, b = {args.batch_size}, chunk {args.chunk}, augment {args.augment}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.iterations} iterations per row"
    )
    print(f"{'config':>8s} {'iter ms':>8s} {'non-model median':>17s} {'non-model worst':>16s} {'a':>6s} {'a/p':>6s}")
    for row in per_ratio.itertuples():
        label = f"p = {row.presample:g}" if row.run == IMPORTANCE else "uniform"
        a = f"{row.a:6.3f}" if row.run == IMPORTANCE else f"{'-':>6s}"
        a_per_p = f"{row.a_per_p:6.3f}" if row.run == IMPORTANCE else f"{'-':>6s}"
        print(
            f"{label:>8s} {1000 * row.measured_seconds:8.1f} {row.non_model_share:17.2%} "
            f"{row.non_model_share_max:16.2%} {a} {a_per_p}"
        )


if __name__ == "__main__":
    main()
