"""How cheap can the presample forward be? Side by side in one process, on the default CPU model.

Compares, for B = p * b examples: autograd on vs torch.no_grad vs torch.inference_mode, chunk
sizes, and channels-last. Prints seconds per presample (median of repeats) and ratios against
the sampler's choice. Usage: python -m benchmarks.presample_forward [--model resnet8] [--p 7]
"""

import argparse
import statistics
import time

import torch

from isample.experiment.models import build_model


def median_seconds(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def presample_forward(model, x, chunk, context):
    with context():
        for start in range(0, len(x), chunk or len(x)):
            model(x[start : start + (chunk or len(x))])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--p", type=float, nargs="+", default=[2, 7])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model(args.model, 10).eval()
    print(f"model {args.model}, b = {args.batch_size}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for p in args.p:
        B = round(p * args.batch_size)
        x = torch.randn(B, 3, 32, 32)
        results = {}
        for chunk in (0, 512, 256, 128, 64):
            if chunk >= B:
                continue
            results[f"inference_mode, chunk {chunk or 'all'}"] = median_seconds(
                lambda: presample_forward(model, x, chunk, torch.inference_mode), args.repeats)
        best_chunk = min((v, k) for k, v in results.items())[1]
        chunk = int(best_chunk.split()[-1]) if best_chunk.split()[-1] != "all" else 0
        results["no_grad, best chunk"] = median_seconds(lambda: presample_forward(model, x, chunk, torch.no_grad), args.repeats)
        results["autograd on, best chunk"] = median_seconds(
            lambda: presample_forward(model, x, chunk, torch.enable_grad), args.repeats)
        model_cl = build_model(args.model, 10).eval().to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        results["inference_mode, best chunk, channels_last"] = median_seconds(
            lambda: presample_forward(model_cl, x_cl, chunk, torch.inference_mode), args.repeats)
        reference = results[best_chunk]
        print(f"\np = {p:g} (B = {B}); best: {best_chunk}")
        print(f"{'configuration':45s} {'ms':>8s} {'x best':>7s}")
        for name, seconds in results.items():
            print(f"{name:45s} {1000 * seconds:8.1f} {seconds / reference:7.2f}")


if __name__ == "__main__":
    main()
