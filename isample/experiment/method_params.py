"""The selection methods' options as params.yaml holds them (`presample`, `sampler.*`, `methods.<name>.*`):
each method's Options dataclass (`isample.methods.catalog`) checked key by key, for types, unknown and
missing keys and its own rules, every problem naming its params.yaml key."""

import dataclasses
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from isample.methods.catalog import CATALOG, entry, rule_problems


def _lookup(raw: dict, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(raw, dict) or part not in raw:
            raise KeyError(key)
        raw = raw[part]
    return raw


@functools.cache
def _options_model(options_type: type, fields: tuple[str, ...]) -> type[BaseModel]:
    """A strict pydantic model of the Options fields params.yaml holds (types, unknown and missing keys);
    the ranges stay the dataclass's own rules, applied when it is built."""
    types = {field.name: (field.type, ...) for field in dataclasses.fields(options_type) if field.name in fields}
    config = ConfigDict(strict=True, extra="forbid")
    return create_model(f"{options_type.__name__}Params", __config__=config, **types)


def option_problems(params: dict, name: str) -> tuple[Any, list[str]]:
    """The Options of method `name` from the raw params, or the problems with them, each naming its key."""
    method = entry(name)
    keys = method.option_keys()
    values, problems = {}, []
    for field, key in keys.items():
        try:
            values[field] = _lookup(params, key)
        except KeyError:
            problems.append(f"{key}: missing")
    if method.section:  # a section of its own: every key in it must be an option
        section = (params.get("methods") or {}).get(name) or {}
        problems += [f"methods.{name}.{key}: unknown parameter" for key in section if key not in keys]
    if problems:
        return None, problems
    try:
        _options_model(method.options, tuple(keys)).model_validate(values)
        typed = set()
    except ValidationError as error:
        by_field: dict[str, list[dict]] = {}
        for problem in error.errors():
            by_field.setdefault(problem["loc"][0], []).append(problem)
        typed = set(by_field)
        for field, errors in by_field.items():  # a union ("auto" or a number) fails once per branch
            problems.append(f"{keys[field]} = {errors[0]['input']!r}: {' or '.join(e['msg'] for e in errors)}")
    rules = getattr(method.options, "RULES", {})
    problems += [
        f"{keys[line.split(' ', 1)[0]]} {line.split(' ', 1)[1]}"
        for line in rule_problems({f: v for f, v in values.items() if f not in typed}, rules)
    ]
    if problems:
        return None, problems
    try:
        return method.options(**values), []  # the values as written, so a rule's message quotes them
    except ValueError as error:  # a rule of a method registered from outside, without RULES
        field, _, rest = str(error).partition(" ")
        return None, [f"{keys.get(field, field)} {rest}"]


def method_options(params: BaseModel | dict, name: str) -> Any:
    """The Options of selection method `name` from params (ValueError naming the key when they are bad)."""
    raw = params.model_dump() if isinstance(params, BaseModel) else params
    options, problems = option_problems(raw, name)
    if problems:
        raise ValueError("; ".join(problems))
    return options


def sections_problems(raw: dict) -> list[str]:
    """Keys of `sampler` no method reads, and `methods.<name>` sections of no known method."""
    claimed = {key for method in CATALOG.values() for key in method.option_keys().values()}
    problems = [
        f"sampler.{key}: unknown parameter" for key in raw.get("sampler") or {} if f"sampler.{key}" not in claimed
    ]
    known = ", ".join(CATALOG)
    problems += [
        f"methods.{name}: unknown selection method; known: {known}"
        for name in raw.get("methods") or {}
        if name not in CATALOG
    ]
    for name in (raw.get("compare") or {}).get("methods") or []:
        if name in CATALOG and CATALOG[name].section and name not in (raw.get("methods") or {}):
            problems.append(f"compare.methods lists {name!r} but params.yaml has no methods.{name} section")
    return problems
