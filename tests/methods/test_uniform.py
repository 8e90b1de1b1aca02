"""uniform drawn with replacement: the draw tau's variance reduction is stated against."""

import math

import pytest
import torch

from isample.methods.catalog import UniformOptions
from tests.common import toy_sampler


def test_uniform_with_replacement_draws_every_example_alike_and_repeats_some():
    n, b, iterations = 200, 32, 3000
    with toy_sampler("uniform", UniformOptions(with_replacement=True), n=n, batch_size=b) as trainer:
        trainer.start_epoch()
        counts = torch.zeros(n)
        repeats = 0
        for _ in range(iterations):
            indices = trainer.method.select().indices
            counts += torch.bincount(indices, minlength=n)
            repeats += b - len(torch.unique(indices))
    expected = iterations * b / n  # 480 per example
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 199 + 5 * math.sqrt(2 * 199)  # chi-square with n - 1 degrees of freedom, 5 sigma
    expected_repeats = b - n * (1 - (1 - 1 / n) ** b)  # per batch, drawing b of n with replacement
    assert repeats / iterations == pytest.approx(expected_repeats, rel=0.05)
