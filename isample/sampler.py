"""Deprecated: `isample.sampler` is now `isample.trainer`, and its `Sampler` is `Trainer`."""

import warnings

from isample.trainer import ImportanceSampler, Iteration, Trainer, UniformSampler  # noqa: F401

Sampler = Trainer
warnings.warn("isample.sampler is now isample.trainer (Sampler is Trainer)", DeprecationWarning, stacklevel=2)
