"""Selection methods for SGD, with upper-bound importance sampling (Katharopoulos & Fleuret, ICML 2018).

The core (this package's top-level modules and `isample.methods`) needs torch only;
`isample.experiment` runs the pipeline's training and timing, `isample.report` turns records into
conclusions and needs no torch. Names are imported on first use, so `import isample.report`
does not load torch.
"""

import importlib

_EXPORTS = {
    "BatchSelector": "isample.selector",
    "ImportanceSampler": "isample.trainer",
    "Iteration": "isample.trainer",
    "Sampler": "isample.sampler",  # deprecated: Trainer
    "Trainer": "isample.trainer",
    "UniformSampler": "isample.trainer",
    "METHODS": "isample.methods",
    "register": "isample.methods",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'isample' has no attribute {name!r}")
