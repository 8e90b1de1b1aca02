"""How cheap can the presample forward be? Options side by side in one process, on the default CPU model.

For B = p * b examples of the prepared default data, with a resnet8 trained for a few dozen steps
(so that scores are not uniform), each option's presample time (forward + bound, median of
repeats), its a / p against the training step measured in the same run, and the max abs
difference of its scores against the fp32 eval-mode scores and against fp32 scores of its own
BatchNorm mode. Options: BatchNorm mode (eval / batch), chunk sizes, inference_mode vs no_grad,
channels-last for the presample only, bf16 autocast, torch.compile (compile time apart), threads.
Usage: python -m benchmarks.presample_forward [--p 2 3 5 7] [--repeats 7] [--compile]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from isample.experiment.data import BatchTransform, load_dataset, subset
from isample.experiment.models import build_model
from isample.experiment.prepared import load_prepared
from isample.methods.base import scoring_mode
from isample.scores import gnorm_upper_bound


def median_seconds(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scores_of(forward, model, x, y, mode, chunk, grad_context=torch.inference_mode, autocast=False):
    with scoring_mode(model, mode), grad_context():
        parts = []
        for start in range(0, len(x), chunk or len(x)):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = forward(x[start : start + (chunk or len(x))])
            parts.append(gnorm_upper_bound(logits, y[start : start + (chunk or len(x))]))
        return torch.cat(parts)


def trained_model(name, x, y, b, steps=40):
    torch.manual_seed(0)
    model = build_model(name, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        index = torch.randint(len(x), (b,))
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--p", type=float, nargs="+", default=[2, 7])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (slow to compile)")
    args = parser.parse_args()
    prepared = Path("data/prepared/cifar10.pt")
    data = load_prepared(prepared) if prepared.is_file() else subset(load_dataset("cifar10", "data/raw"), 4000, 2000)
    transform = BatchTransform(data.mean, data.std)
    x_all, y_all = transform(data.train_x), data.train_y
    b = args.batch_size
    model, optimizer = trained_model(args.model, x_all, y_all, b)
    threads = torch.get_num_threads()
    print(f"model {args.model} (40 training steps), b = {b}, torch {torch.__version__}, {threads} threads")

    def train_step():
        index = torch.randint(len(x_all), (b,))
        loss = F.cross_entropy(model(x_all[index]), y_all[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for p in args.p:
        B = round(p * b)
        x, y = x_all[:B], y_all[:B]
        train_seconds = median_seconds(train_step, args.repeats)
        reference = {mode: scores_of(model, model, x, y, mode, b) for mode in ("eval", "batch")}
        options = {}
        for mode in ("eval", "batch"):
            chunks = (0, 256, 128, 64) if mode == "eval" else (b,)
            for chunk in chunks:
                if chunk < B:
                    options[f"{mode}, chunk {chunk or 'all'}"] = (mode, chunk, dict())
        for mode in ("eval", "batch"):
            chunk = 64 if mode == "eval" else b
            options[f"{mode}, chunk {chunk}, no_grad"] = (mode, chunk, dict(grad_context=torch.no_grad))
            options[f"{mode}, chunk {chunk}, bf16 autocast"] = (mode, chunk, dict(autocast=True))
            options[f"{mode}, chunk {chunk}, channels-last input"] = (mode, chunk, dict(channels_last="input"))
            options[f"{mode}, chunk {chunk}, channels-last model copy"] = (mode, chunk, dict(channels_last="model"))
            options[f"{mode}, chunk {chunk}, 1 thread"] = (mode, chunk, dict(threads=1))
            if args.compile:
                options[f"{mode}, chunk {chunk}, torch.compile"] = (mode, chunk, dict(compiled=True))
        print(f"\np = {p:g} (B = {B}); training step {1000 * train_seconds:.1f} ms (median of {args.repeats})")
        print(f"{'option':42s} {'ms':>7s} {'a/p':>6s} {'x batch':>8s} {'|d| vs eval':>11s} {'|d| own mode':>12s}")
        rows = []
        for name, (mode, chunk, extra) in options.items():
            forward, inputs, note = model, x, ""
            if extra.get("channels_last") == "input":
                inputs = x.contiguous(memory_format=torch.channels_last)
            elif extra.get("channels_last") == "model":
                copy = build_model(args.model, 10)
                copy.load_state_dict(model.state_dict())
                forward = model_copy = copy.to(memory_format=torch.channels_last)
                inputs = x.contiguous(memory_format=torch.channels_last)
            if extra.get("compiled"):
                started = time.perf_counter()
                forward = torch.compile(model)
                scores_of(forward, model, inputs, y, mode, chunk)
                note = f" (compile {time.perf_counter() - started:.1f} s)"
            if extra.get("threads"):
                torch.set_num_threads(extra["threads"])
            kwargs = {k: v for k, v in extra.items() if k in ("grad_context", "autocast")}
            target = model_copy if extra.get("channels_last") == "model" else model
            seconds = median_seconds(lambda: scores_of(forward, target, inputs, y, mode, chunk, **kwargs), args.repeats)
            scores = scores_of(forward, target, inputs, y, mode, chunk, **kwargs)
            torch.set_num_threads(threads)
            rows.append(
                (
                    name + note,
                    seconds,
                    (scores - reference["eval"]).abs().max().item(),
                    (scores - reference[mode]).abs().max().item(),
                )
            )
        batch_default = next(seconds for name, seconds, *_ in rows if name == f"batch, chunk {b}")
        for name, seconds, versus_eval, versus_own in rows:
            print(
                f"{name:42s} {1000 * seconds:7.1f} {seconds / train_seconds / p:6.3f} {seconds / batch_default:8.2f} "
                f"{versus_eval:11.2e} {versus_own:12.2e}"
            )


if __name__ == "__main__":
    main()
