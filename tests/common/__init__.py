"""Helpers shared by the tests (as Composer's tests/common): toy problems for the core, params and
data for the pipeline, records for the report. Pipeline and report imports stay inside the helpers
(or in tests.common.records), so the core's tests run where only torch and pytest are installed."""

import copy
import itertools
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


# -- the core ---------------------------------------------------------------------------------------


def toy_problem(seed=0, n=2000):
    torch.manual_seed(seed)
    x = torch.randn(n, 20)
    y = (x @ torch.randn(20, 5)).argmax(1)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer, x, y


def toy_tables(method, n):
    """The per-example tables a method reads (rho_loss's irreducible losses: made-up ones, in [0, 0.5))."""
    name = method if isinstance(method, str) else method.name
    if name != "rho_loss":
        return None
    return {"irreducible_loss": 0.5 * torch.rand(n, generator=torch.Generator().manual_seed(7))}


def toy_sampler(method, options=None, n=2000, batch_size=32, seed=0, timing=True):
    """Any method of the family on the toy problem, with its own seeded generator."""
    from isample.trainer import Trainer

    model, optimizer, x, y = toy_problem(n=n)
    generator = torch.Generator().manual_seed(seed)
    return Trainer(
        method,
        model,
        optimizer,
        x,
        y,
        batch_size,
        options=options,
        generator=generator,
        timing=timing,
        tables=toy_tables(method, n),
    )


class Killed(Exception):
    """Where a killed process would die: raised from a run's epoch callback."""


def kill_at_epoch(epoch: int):
    """An `on_epoch` callback that kills the run once epoch `epoch` is recorded."""

    def on_epoch(row: dict) -> None:
        if row["epoch"] == epoch:
            raise Killed

    return on_epoch


def stopped_at_budget(epochs, budget: float) -> bool:
    """A wall-clock run ended at its budget: the clock is read before each iteration, so the last one
    ends past the budget by an iteration's time (a few mean ones allowed: on a loaded machine one can
    take several times the mean), never by a further epoch."""
    seconds = float(epochs["train_seconds"].iloc[-1])
    per_iteration = seconds / float(epochs["total_iterations"].iloc[-1])
    return seconds < budget + 4 * per_iteration + 0.5


class FakeClock:
    """Advances a fixed step per reading, so budget accounting is exact and repeatable."""

    def __init__(self, step=0.01):
        self._ticks = itertools.count()
        self.step = step

    def __call__(self):
        return next(self._ticks) * self.step


# -- the pipeline -----------------------------------------------------------------------------------


def merge(base: dict, override: dict) -> dict:
    """base with override's keys replaced, section by section (in place; returns base)."""
    for key, value in override.items():
        base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return base


def raw_params(override: dict | None = None) -> dict:
    """params.yaml as a dict, with `override` merged in."""
    import yaml

    base = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    if "budget" in (override or {}).get("train", {}):  # one budget in place of the default's list
        base["train"].pop("budgets")
    return merge(base, override or {})


def make_params(override: dict | None = None):
    from isample.experiment.config import validate

    return validate(raw_params(override))


def tiny_params(sampler=None, presample=2, **train):
    """resnet8 on the synthetic data, b = 32, p = 2, on the CPU, augmentation on, 64 training examples
    evaluated per epoch; `train` keys override."""
    return make_params(
        {
            "presample": presample,
            "batch_size": 32,
            "model": {"name": "resnet8"},
            "train": {"budget": "2s", "eval_batch_size": 200, "device": "cpu", **train},
            "data": {"augment": True, "train_subset": 0, "test_subset": 0, "train_eval_subset": 64},
            "sampler": sampler or {},
        }
    )


def tiny_spec(method="uniform", seed=0, sampler=None, presample=2, **train):
    """The RunSpec of one run of tiny_params."""
    from isample.experiment.runs import run_spec

    params = tiny_params(sampler, presample, **train)
    return run_spec(params, method, params.train.budget_list[0], seed)


def synthetic_data(n_train=320, n_test=120, classes=4, seed=0):
    """Tiny learnable images: each class has its own mean colour, plus noise."""
    from isample.experiment.data import PreparedData

    generator = torch.Generator().manual_seed(seed)
    colours = torch.rand(classes, 3, 1, 1, generator=generator) * 200

    def split(n):
        y = torch.arange(n) % classes
        noise = torch.randn(n, 3, 32, 32, generator=generator) * 40
        x = (colours[y] + noise).clamp(0, 255).to(torch.uint8)
        return x, y

    train_x, train_y = split(n_train)
    test_x, test_y = split(n_test)
    return PreparedData(train_x, train_y, test_x, test_y, [f"class{i}" for i in range(classes)], "synthetic")


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def image_bytes(colour):
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), colour, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_archive(path, classes, per_class=(3, 2), prefix=""):
    """A .tar.gz ImageFolder tree: train/<class>/*.png and test/<class>/*.png, one colour per image."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as archive:
        for split, count in zip(("train", "test"), per_class, strict=True):
            for label, name in enumerate(classes):
                for i in range(count):
                    data = image_bytes((10 * label + i) % 256)
                    info = tarfile.TarInfo(f"{prefix}{split}/{name}/{i:04d}.png")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
