"""The family of selection methods, by name. A method's module is imported on first use (`METHODS[name]`),
so using one method loads no other. Adding one: a module here and an entry in `catalog.CATALOG` (or
`register` from outside the package), its params section `methods.<name>` and its tests."""

import importlib
from collections.abc import Iterator, Mapping

from isample.methods.catalog import CATALOG, Entry, NoOptions, entry

_LAZY = {  # names this package exports, and the module each comes from
    "Context": "base",
    "Examples": "base",
    "Selection": "base",
    "SelectionMethod": "base",
    "InfoBatch": "infobatch",
    "Reuse": "reuse",
    "RhoLoss": "rho_loss",
    "SelectiveBackprop": "selective_backprop",
    "Uniform": "uniform",
    "UpperBound": "upper_bound",
    "InfoBatchOptions": "catalog",
    "ReuseOptions": "catalog",
    "RhoLossOptions": "catalog",
    "SelectiveBackpropOptions": "catalog",
    "UniformOptions": "catalog",
    "UpperBoundOptions": "catalog",
}


class _Methods(Mapping):
    """name -> SelectionMethod subclass, importing the class's module when it is first asked for."""

    def __getitem__(self, name: str):
        implementation = CATALOG[name].implementation
        if isinstance(implementation, str):
            module, _, cls = implementation.partition(":")
            return getattr(importlib.import_module(module), cls)
        return implementation

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOG)

    def __len__(self) -> int:
        return len(CATALOG)

    def pop(self, name: str, *default):
        """Remove a registered method (tests register throwaway ones)."""
        if name in CATALOG:
            return CATALOG.pop(name).implementation
        if default:
            return default[0]
        raise KeyError(name)


METHODS = _Methods()


def register(method):
    """Add a method to the name table (usable as a class decorator); a name is taken only once. Its
    options live in params.yaml under `methods.<name>` and its record files are tagged with its name."""
    if not isinstance(getattr(method, "name", None), str) or not method.name.isidentifier():
        raise ValueError(f"{method.__name__}.name must be an identifier, got {getattr(method, 'name', None)!r}")
    if method.name in CATALOG and METHODS[method.name] is not method:
        raise ValueError(f"a selection method named {method.name!r} is already registered")
    CATALOG[method.name] = Entry(method.name, getattr(method, "Options", NoOptions), method)
    return method


def method_class(name: str):
    entry(name)  # one line naming the known methods when `name` is not one
    return METHODS[name]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"isample.methods.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'isample.methods' has no attribute {name!r}")


__all__ = ["CATALOG", "METHODS", "NoOptions", "method_class", "register", *_LAZY]
