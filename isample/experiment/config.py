"""The typed schema of params.yaml, checked before any work starts (`validate`): one line per problem,
naming its key. What it specifies, the keys each stage reads and one `RunSpec` per run, is in
`isample.experiment.runs`.

This module holds the whole: `Params` (which sections there are), the rules across sections and how a
problem is worded. Each section's own keys and rules are in `isample.experiment.train_config` (train)
and `isample.experiment.sections` (the others). The sections of the pipeline (data, model, train, ...)
have no defaults there: params.yaml holds every value. The selection methods' options are validated
through their own Options dataclasses (`isample.methods.catalog`, where their rules and library
defaults live; params.yaml must hold every one of them, a test checks it holds the same values).
"""

from typing import Any

from pydantic import Field, ValidationError, model_validator

from isample.experiment.method_params import method_options, option_problems, sections_problems
from isample.experiment.sections import (
    ALWAYS_RUN,
    CompareConfig,
    DataConfig,
    IrreducibleConfig,
    ModelConfig,
    ReportConfig,
    Section,
    TimingConfig,
)
from isample.experiment.train_config import TrainConfig, sync_bn_problem
from isample.methods.catalog import CATALOG
from isample.names import IMPORTANCE


class ConfigError(ValueError):
    """One line naming the parameter, the bad value and what is allowed."""


class Params(Section):
    # presample, sampler and methods hold the selection methods' options: checked by `method_options`.
    presample: Any
    batch_size: int = Field(ge=1)
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    sampler: dict[str, Any]
    timing: TimingConfig
    compare: CompareConfig
    irreducible: IrreducibleConfig
    report: ReportConfig
    methods: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _batches_split_over_processes(self):
        if self.batch_size % self.train.world_size:
            raise ValueError(
                f"batch_size = {self.batch_size} is not divisible by {_ranks(self.train)} "
                "(b is the global batch; each process trains b / N examples)"
            )
        if self.train.device != "auto" and (problem := sync_bn_problem(self.train, self.train.device)):
            raise ValueError(problem)
        return self

    @property
    def compared_methods(self) -> list[str]:
        """Every method a training stage runs: the two of the notebook, then the listed peers."""
        return [*ALWAYS_RUN, *self.compare.methods]


def _ranks(train: TrainConfig) -> str:
    """How the processes of a run are counted, as the user set them."""
    if train.nodes == 1:
        return f"train.processes = {train.processes}"
    return f"train.nodes x train.processes = {train.nodes} x {train.processes} = {train.world_size}"


def _across_problems(params: Params) -> list[str]:
    """Rules across sections that need the methods' options."""
    importance = method_options(params, IMPORTANCE)
    presample, subset, n = (
        round(importance.largest_presample * params.batch_size),
        params.data.train_subset,
        params.train.world_size,
    )
    problems = []
    if importance.presample == "auto" and params.train.prices.presample_a != "from_prices":
        problems.append(
            f"train.prices.presample_a = {params.train.prices.presample_a!r}: must be from_prices with presample: "
            "auto (a stated a prices one presample size; auto prices every ratio by train.prices.score)"
        )
    if subset and presample > subset:
        ratio = "sampler.presample_max" if importance.presample == "auto" else "presample"
        problems.append(f"{ratio} * batch_size = {presample} exceeds data.train_subset = {subset}")
    elif subset and params.batch_size > subset:  # (implied by the line above when that one is said)
        problems.append(f"batch_size = {params.batch_size} exceeds data.train_subset = {subset}")
    if presample % n:
        problems.append(
            f"the presample B = presample * batch_size = {presample} is not divisible by {_ranks(params.train)} "
            f"(each process scores B / N examples)"
        )
    modes = [importance.score_mode] + [
        getattr(method_options(params, name), "score_mode", None) for name in params.compare.methods
    ]
    if params.train.sync_bn and "batch" in modes:  # a scoring forward would then wait on the other ranks' forwards
        problems.append(
            "train.sync_bn = true cannot be combined with score_mode = batch (the scoring forwards would "
            "synchronise across processes); use score_mode eval"
        )
    return problems


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if not key:  # a rule across sections
        return message
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown parameter"
    if error["type"] == "missing":
        return f"{key}: missing"
    if isinstance(error["input"], dict):  # a rule across the keys of one section
        return f"{key}: {message}"
    return f"{key} = {error['input']!r}: {message}"


def validate(raw: dict | None) -> Params:
    """Params from the parsed params.yaml, or ConfigError with one line per problem, every one listed."""
    raw = raw or {}
    problems: list[str] = []
    params = None
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        problems += [_describe(e) for e in error.errors()]
    problems += sections_problems(raw)
    for name in CATALOG:
        if CATALOG[name].section is None or name in (raw.get("methods") or {}):
            problems += option_problems(raw, name)[1]
    if params is not None and not problems:
        problems += _across_problems(params)
    if problems:
        raise ConfigError("\n".join(f"params.yaml: {problem}" for problem in dict.fromkeys(problems)))
    return params
