"""The GPU recipe (recipes/gpu.yaml): the notebook's experiments as `dvc exp run -S` overrides of params.yaml,
read by the docs' commands (`python -m recipes`), by benchmarks/gpu_check.py and by the test that runs
each of them for a few iterations on the CPU."""

from pathlib import Path

import yaml

RECIPE = Path(__file__).with_name("gpu.yaml")


def load(path: Path = RECIPE) -> dict:
    return yaml.safe_load(path.read_text())


def overrides(experiment: str, recipe: dict | None = None) -> dict:
    """The recipe's common overrides, then the experiment's (KeyError naming the known ones)."""
    recipe = recipe or load()
    if experiment not in recipe["experiments"]:
        raise KeyError(f"experiment {experiment!r}: the recipe holds {', '.join(recipe['experiments'])}")
    return {**recipe["overrides"], **recipe["experiments"][experiment]["overrides"]}


def set_arguments(values: dict) -> list[str]:
    """`-S key=value` arguments for `dvc exp run`, each value in YAML's flow style ([0.5, 0.75], 3h)."""
    arguments = []
    for key, value in values.items():
        # A scalar's document ends with "...": the value is what comes before it.
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("...\n").strip()
        arguments += ["-S", f"{key}={text}"]
    return arguments


def apply(params: dict, values: dict) -> dict:
    """params (params.yaml's dict) with `values` set, dotted keys as `-S` sets them (a copy)."""
    params = yaml.safe_load(yaml.safe_dump(params))
    for key, value in values.items():
        *parents, leaf = key.split(".")
        section = params
        for parent in parents:
            section = section[parent]
        if leaf not in section:
            raise KeyError(f"{key}: not a key of params.yaml")
        section[leaf] = value
    return params
