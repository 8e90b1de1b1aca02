"""Reading images from disk: isample's methods against the loop torchvision's references write.

The plain loop is `DataLoader(ImageFolder-like, shuffle=True, num_workers=w, pin_memory,
persistent_workers=True, drop_last=True)`, augmenting in its workers, which decode the next batches
while the current one trains. isample's examples (`LoadedExamples`) are measured without loading
ahead (`read_ahead` 0: each request waits for its images, as before) and with it (the default).
Each training step is the real model on this CPU, or a GPU stand-in: a step that waits a fixed time
with the CPU free, as a process does while its GPU computes; with the stand-in, isample's batch
augmentation runs in the loading thread, as it does on a GPU (on the CPU it stays in the main
thread: two threads of tensor work would slow each other down). Rows interleave every loop in one
process, in rounds, so machine noise hits them alike; figures are medians over the measured
iterations. Then the same for upper_bound with IS always on (B = p b images per iteration) and
Selective-Backprop (several candidate batches per step): how long each iteration waited for images.

Usage: python -m benchmarks.loader_throughput [--images 3000] [--iterations 60] [--rounds 3]
(needs ../shared/data/cifar10-jpeg.tar.gz or data.path's archive; about 6 minutes on 2 cores).
"""

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from isample.examples import stop_workers
from isample.experiment.data import BatchTransform
from isample.experiment.models import build_model
from isample.experiment.streamed import ImageFiles, _split_files, _tree_root, _unpacked, channel_statistics
from isample.methods.catalog import SelectiveBackpropOptions, UpperBoundOptions
from isample.trainer import Trainer

ARCHIVE = Path("../shared/data/cifar10-jpeg.tar.gz")
UNPACKED = Path("data/benchmarks/cifar10-jpeg")
WORKERS = 2


class StandIn(torch.nn.Module):
    """A GPU's training step as the CPU sees it: the forward waits `seconds` (CPU free), the rest is tiny."""

    def __init__(self, seconds: float, classes: int = 10):
        super().__init__()
        self.seconds, self.linear = seconds, torch.nn.Linear(3, classes)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.linear(x.float().mean(dim=(2, 3)))


class Augmented(Dataset):
    """The plain loop's data set: each image decoded, cropped, flipped and normalised in the workers."""

    def __init__(self, images: ImageFiles, mean, std):
        from torchvision.transforms import v2

        self.images = images
        self.transform = v2.Compose(
            [
                v2.RandomCrop(images.image_size or 32, padding=4),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean.tolist(), std.tolist()),
            ]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        pixels, label = self.images[index]
        return self.transform(pixels), label


def image_files(count: int, size: int) -> ImageFiles:
    """`count` training images of CIFAR-10's JPEG archive, every class alike, at `size` pixels."""
    root = _tree_root(_unpacked(ARCHIVE, UNPACKED))
    by_class = _split_files(root, "train")
    per_class = count // len(by_class)
    files, labels = [], []
    for label, name in enumerate(sorted(by_class)):
        files += by_class[name][:per_class]
        labels += [label] * per_class
    return ImageFiles(root, files, torch.tensor(labels), size if size != 32 else 0)


def model_for(step: str) -> torch.nn.Module:
    return build_model("resnet8", 10) if step == "cpu" else StandIn(float(step.removeprefix("standin")) / 1000)


class PlainLoop:
    def __init__(self, images, mean, std, step, batch_size):
        self.model = model_for(step)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(
            Augmented(images, mean, std),
            batch_size=batch_size,
            shuffle=True,
            num_workers=WORKERS,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=True,
            drop_last=True,
        )
        self.loader, self.batches = loader, iter(loader)

    def step(self) -> float:
        started = time.perf_counter()
        try:
            x, y = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            x, y = next(self.batches)
        loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - started

    def close(self) -> None:
        stop_workers(self.loader)


class Ours:
    def __init__(self, images, mean, std, step, batch_size, method="uniform", options=None, read_ahead=2):
        self.model = model_for(step)
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        transform = BatchTransform(mean, std, True, generator=torch.Generator().manual_seed(1))
        self.trainer = Trainer(
            method,
            self.model,
            optimizer,
            images,
            None,
            batch_size,
            options=options,
            workers=WORKERS,
            seed=0,
            transform=transform,
        )
        self.trainer.examples.read_ahead = read_ahead
        # With a stand-in, augment where a GPU run does, out of the main thread (there, on the GPU).
        self.trainer.examples.transform_ahead = step != "cpu" and read_ahead > 0
        self.waits: list[float] = []

    def step(self) -> float:
        started = time.perf_counter()
        iteration = self.trainer.step()
        self.waits.append(iteration.phases["data_loading"])
        return time.perf_counter() - started

    def close(self) -> None:
        self.trainer.close()


def interleaved(loops: dict, iterations: int, rounds: int, warmup: int = 5) -> dict[str, list[float]]:
    """Each loop's step times, the loops taking turns; their workers are stopped afterwards."""
    with contextlib.ExitStack() as stack:
        for loop in loops.values():
            stack.callback(loop.close)
        return _take_turns(loops, iterations, rounds, warmup)


def _take_turns(loops: dict, iterations: int, rounds: int, warmup: int) -> dict[str, list[float]]:
    for loop in loops.values():
        for _ in range(warmup):
            loop.step()
        if isinstance(loop, Ours):
            loop.waits.clear()
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            times[name] += [loop.step() for _ in range(iterations // rounds)]
    return times


def ms(values) -> float:
    return 1000 * statistics.median(values)


def throughput_rows(args, mean, std) -> None:
    print("| training step | image size | plain loop (ms/it) | isample uniform, before | after | after / plain speed |")
    print("|---|---|---|---|---|---|")
    for step, size in (("cpu", 32), ("standin60", 32), ("standin60", 64), ("standin100", 128)):
        images = image_files(args.images, size)
        loops = {
            "plain": PlainLoop(images, mean, std, step, args.batch_size),
            "before": Ours(images, mean, std, step, args.batch_size, read_ahead=0),
            "after": Ours(images, mean, std, step, args.batch_size),
        }
        times = interleaved(loops, args.iterations, args.rounds)
        plain, before, after = (ms(times[name]) for name in ("plain", "before", "after"))
        label = "resnet8 on this CPU" if step == "cpu" else f"GPU stand-in: {step.removeprefix('standin')} ms"
        print(f"| {label} | {size} | {plain:.1f} | {before:.1f} | {after:.1f} | {plain / after:.2f}x |")


def wait_rows(args, mean, std) -> None:
    print()
    print(
        "| method (GPU stand-in 60 ms, 32 px) | ms/it before | ms/it after | waited for images before (ms/it) | after |"
    )
    print("|---|---|---|---|---|")
    images = image_files(args.images, 32)
    cases = {
        "upper_bound, IS always on, p = 3": ("upper_bound", UpperBoundOptions(presample=3, always_importance=True)),
        "selective_backprop": ("selective_backprop", SelectiveBackpropOptions()),
    }
    for label, (method, options) in cases.items():
        loops = {
            "before": Ours(images, mean, std, "standin60", args.batch_size, method, options, read_ahead=0),
            "after": Ours(images, mean, std, "standin60", args.batch_size, method, options),
        }
        if method == "selective_backprop":  # past its first pass, which trains every example unselected
            for loop in loops.values():
                loop.trainer.method.priming = 0
        times = interleaved(loops, args.iterations, args.rounds)
        waits = {name: ms(loop.waits) for name, loop in loops.items()}
        print(
            f"| {label} | {ms(times['before']):.1f} | {ms(times['after']):.1f} | "
            f"{waits['before']:.1f} | {waits['after']:.1f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mean, std = channel_statistics(image_files(args.images, 32))
    print(
        f"{args.images} CIFAR-10 JPEG images, b = {args.batch_size}, {WORKERS} workers each, "
        f"{torch.get_num_threads()} threads; median of {args.iterations} iterations, {args.rounds} rounds"
    )
    throughput_rows(args, mean, std)
    wait_rows(args, mean, std)


if __name__ == "__main__":
    main()
