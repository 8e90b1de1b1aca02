"""Helpers shared by the tests. Imports of pipeline packages stay inside the helpers, so the core's
tests run in an environment that has torch and pytest only (`make test-core`)."""

import copy
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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


@pytest.fixture
def tiny_data():
    return synthetic_data()
