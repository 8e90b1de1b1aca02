"""Deprecated: `isample.sampler` is now `isample.trainer`, and its `Sampler` is `Trainer`."""

import warnings

from isample.trainer import ImportanceSampler, Iteration, Trainer, UniformSampler  # noqa: F401

warnings.warn("isample.sampler is now isample.trainer (Sampler is Trainer)", DeprecationWarning, stacklevel=2)


class Sampler(Trainer):
    """Deprecated name of `isample.trainer.Trainer`."""

    def __init__(self, *args, **keywords):
        warnings.warn("isample.Sampler is now isample.Trainer", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **keywords)
