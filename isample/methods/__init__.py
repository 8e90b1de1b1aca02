"""The family of selection methods, by name. Adding one: a module here, an entry in METHODS (or
`register` from outside the package), its params section `methods.<name>` and its tests."""

from isample.methods.base import Context, Examples, NoOptions, Selection, SelectionMethod
from isample.methods.infobatch import InfoBatch, InfoBatchOptions
from isample.methods.reuse import Reuse, ReuseOptions
from isample.methods.selective_backprop import SelectiveBackprop, SelectiveBackpropOptions
from isample.methods.uniform import Uniform, UniformOptions
from isample.methods.upper_bound import UpperBound, UpperBoundOptions

METHODS: dict[str, type[SelectionMethod]] = {
    method.name: method for method in (Uniform, UpperBound, Reuse, SelectiveBackprop, InfoBatch)
}


def register(method: type[SelectionMethod]) -> type[SelectionMethod]:
    """Add a method to the name table (usable as a class decorator); a name is taken only once."""
    if not isinstance(getattr(method, "name", None), str) or not method.name.isidentifier():
        raise ValueError(f"{method.__name__}.name must be an identifier, got {getattr(method, 'name', None)!r}")
    if METHODS.get(method.name, method) is not method:
        raise ValueError(f"a selection method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def method_class(name: str) -> type[SelectionMethod]:
    if name not in METHODS:
        raise ValueError(f"unknown selection method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


__all__ = [
    "METHODS", "Context", "Examples", "InfoBatch", "InfoBatchOptions", "NoOptions", "Reuse", "ReuseOptions",
    "Selection", "SelectionMethod", "SelectiveBackprop", "SelectiveBackpropOptions", "Uniform", "UniformOptions",
    "UpperBound", "UpperBoundOptions", "method_class", "register",
]  # fmt: skip
