"""Deprecated: `isample.loop` is now `isample.selector` (BatchSelector keeps its name)."""

import warnings

from isample.selector import BatchSelector  # noqa: F401

warnings.warn("isample.loop is now isample.selector", DeprecationWarning, stacklevel=2)
