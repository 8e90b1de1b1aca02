"""Images per second of the uniform training run against a bare hand-written PyTorch loop.

Same model, data, batch size, optimiser and batch transform, in one process, alternating rounds
so machine noise hits both alike. Target: ours >= 0.95 of the bare loop.
Usage: python -m benchmarks.train_throughput [--seconds 20] [--rounds 2] [--model resnet8]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from benchmarks.regimes import point_spec, synthetic_cifar, train_point
from isample.experiment.data import BatchTransform
from isample.experiment.models import build_model
from isample.experiment.prepared import load_prepared

PREPARED = Path("data/prepared/cifar10.pt")


def bare_loop(data, model_name, batch_size, seconds, augment, seed=0):
    """What a researcher would write by hand: draw, transform, forward, backward, step."""
    torch.manual_seed(seed)
    model = build_model(model_name, len(data.classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    transform = BatchTransform(data.mean, data.std, augment)
    generator = torch.Generator().manual_seed(seed)
    images = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        index = torch.randperm(len(data.train_x), generator=generator)[:batch_size]
        loss = F.cross_entropy(model(transform(data.train_x[index])), data.train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        images += batch_size
    return images / (time.perf_counter() - started)


def ours(data, model_name, batch_size, seconds, augment):
    raw = yaml.safe_load(Path("params.yaml").read_text())  # the defaults live there
    raw.update(batch_size=batch_size)
    raw["model"]["name"] = model_name
    raw["data"]["augment"] = augment
    raw["train"].pop("budgets", None)
    raw["train"]["device"] = "cpu"
    record = train_point(point_spec(raw, "uniform", 0, clock="wall", budget=seconds), data, "wall")
    epochs = record.epochs
    return epochs["iterations"].sum() * batch_size / epochs["train_seconds"].iloc[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--augment", action="store_true")
    args = parser.parse_args()
    data = load_prepared(PREPARED) if PREPARED.is_file() else synthetic_cifar()
    print(
        f"{args.model}, b = {args.batch_size}, {len(data.train_x)} images ({data.source}), augment {args.augment}, "
        f"{args.rounds} rounds of {args.seconds:g} s each, {torch.get_num_threads()} threads"
    )
    bare, mine = [], []
    for round_index in range(args.rounds):
        bare.append(bare_loop(data, args.model, args.batch_size, args.seconds, args.augment))
        mine.append(ours(data, args.model, args.batch_size, args.seconds, args.augment))
        print(
            f"round {round_index + 1}: bare {bare[-1]:.0f} img/s, ours {mine[-1]:.0f} img/s, "
            f"ratio {mine[-1] / bare[-1]:.3f}"
        )
    ratio = statistics.median(m / b for m, b in zip(mine, bare))
    print(f"median ratio ours / bare: {ratio:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
