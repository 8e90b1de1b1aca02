"""The typed schema of params.yaml: every parameter is checked here before any work starts.

No parameter has a default here: params.yaml is the one place where default values live.
"""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from isample.experiment.data import DATASETS
from isample.experiment.models import MODELS
from isample.methods import METHODS

ALWAYS_RUN = ("upper_bound", "uniform")  # the notebook's two runs, train_is and train_uniform
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


class ConfigError(ValueError):
    """One line naming the parameter, the bad value and what is allowed."""


def parse_duration(text: str | int | float) -> float:
    """'90s', '4m', '3h', '1h30m' or a number of seconds -> seconds (> 0)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match or not any(match.groups()):
            raise ValueError("must be a duration such as 90s, 4m, 3h or 1h30m")
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    if seconds <= 0:
        raise ValueError("must be a duration > 0")
    return seconds


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataConfig(_Section):
    name: Literal[tuple(DATASETS)]  # type: ignore[valid-type]
    root: str
    download: bool
    train_subset: int = Field(ge=0)
    test_subset: int = Field(ge=0)
    augment: bool


class ModelConfig(_Section):
    name: Literal[tuple(MODELS)]  # type: ignore[valid-type]


class TrainConfig(_Section):
    # One budget, or a list of them (a budget sweep); exactly one of the two keys is given.
    budget: str | None = None
    budgets: list[str] | None = None
    seeds: list[int] = Field(min_length=1)
    lr: float = Field(gt=0)
    lr_scale: float = Field(gt=0)
    lr_schedule: Literal["step", "constant"]
    lr_gamma: float = Field(gt=0)
    lr_milestones: list[float]
    momentum: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0)
    device: Literal["auto", "cpu", "cuda"]
    amp: bool
    channels_last: bool
    eval_batch_size: int = Field(ge=1)
    checkpoint_every: str
    processes: int = Field(ge=1)  # DDP processes (GPUs) one run is spread over; 1 = a single process
    sync_bn: bool  # under DDP: BatchNorm statistics over every rank's batch (SyncBatchNorm, CUDA only)

    @field_validator("budget", "checkpoint_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("budgets")
    @classmethod
    def _durations(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must list at least one budget")
        for budget in value:
            try:
                parse_duration(budget)
            except ValueError as error:
                raise ValueError(f"{budget!r} {error}") from None
        seconds = [parse_duration(budget) for budget in value]
        if len(set(seconds)) != len(seconds):
            raise ValueError("must not repeat a budget")
        return value

    @model_validator(mode="after")
    def _one_budget_key(self):
        if (self.budget is None) == (self.budgets is None):
            raise ValueError("give train.budget (one budget) or train.budgets (a list), exactly one of them")
        return self

    @property
    def budget_list(self) -> list[str]:
        """Every budget to run, shortest first, as written ('200s', '3h')."""
        return sorted(self.budgets or [self.budget], key=parse_duration)

    @field_validator("lr_milestones")
    @classmethod
    def _milestones(cls, value: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in value) or value != sorted(value):
            raise ValueError("must be increasing fractions of the budget, each between 0 and 1")
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a seed")
        return value

    @property
    def run_budget(self) -> str:
        """The budget of one run (params made by `with_budget`, or a single budget)."""
        if len(self.budget_list) != 1:
            raise ValueError(f"several budgets ({', '.join(self.budget_list)}): pick one with with_budget()")
        return self.budget_list[0]

    @property
    def budget_seconds(self) -> float:
        return parse_duration(self.run_budget)

    @property
    def checkpoint_seconds(self) -> float:
        return parse_duration(self.checkpoint_every)


class SamplerConfig(_Section):
    tau_th: Literal["auto"] | float
    score: Literal["gnorm", "loss"]
    score_mode: Literal["eval", "batch"]
    smoothing: float = Field(ge=0, lt=1)
    presample_bf16: bool
    forward_chunk: int = Field(ge=0)
    tau_momentum: float = Field(ge=0, lt=1)

    @field_validator("tau_th", mode="before")
    @classmethod
    def _threshold(cls, value):
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("must be 'auto' or a number >= 0")
        return float(value)


class TimingConfig(_Section):
    presamples: list[float] = Field(min_length=1)
    warmup: int = Field(ge=0)
    iterations: int = Field(ge=2)
    forward_chunks: list[int]

    @field_validator("presamples", mode="before")
    @classmethod
    def _ratios(cls, value):
        if not isinstance(value, list) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in value):
            raise ValueError("must be a list of presample ratios")
        if any(p < 1 for p in value):
            raise ValueError("every presample ratio must be >= 1")
        return [float(p) for p in value]


class CompareConfig(_Section):
    methods: list[str]  # selection methods run beside upper_bound (train_is) and uniform (train_uniform)

    @field_validator("methods")
    @classmethod
    def _known_peers(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in METHODS:
                raise ValueError(f"unknown selection method {name!r}; known: {', '.join(METHODS)}")
            if name in ALWAYS_RUN:
                raise ValueError(f"{name!r} always runs (its own stage): list only the other methods")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a method")
        return value


class ReportConfig(_Section):
    lang: Literal["en", "zh"]


class Params(_Section):
    presample: float
    batch_size: int = Field(ge=1)
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    sampler: SamplerConfig
    timing: TimingConfig
    compare: CompareConfig
    report: ReportConfig
    methods: dict[str, dict]  # methods.<name>: the options of each selection method of the family

    @field_validator("presample", mode="before")
    @classmethod
    def _presample(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
            raise ValueError("must be a number >= 1 (B = presample * batch_size)")
        return float(value)

    @model_validator(mode="after")
    def _subset_holds_presample(self):
        subset = self.data.train_subset
        if subset and round(self.presample * self.batch_size) > subset:
            raise ValueError(
                f"presample * batch_size = {round(self.presample * self.batch_size)} exceeds "
                f"data.train_subset = {subset}"
            )
        return self

    @model_validator(mode="after")
    def _batches_split_over_processes(self):
        n = self.train.processes
        if self.batch_size % n:
            raise ValueError(f"batch_size = {self.batch_size} is not divisible by train.processes = {n} (b is the "
                             "global batch; each process trains b / N examples)")
        presample = round(self.presample * self.batch_size)
        if presample % n:
            raise ValueError(f"the presample B = presample * batch_size = {presample} is not divisible by "
                             f"train.processes = {n} (each process scores B / N examples)")
        if self.train.sync_bn and self.train.device == "cpu":
            raise ValueError("train.sync_bn = true needs CUDA (torch's SyncBatchNorm runs on GPUs only)")
        batch_mode = self.sampler.score_mode == "batch" or any(
            (self.methods.get(name) or {}).get("score_mode") == "batch" for name in self.compare.methods)
        if self.train.sync_bn and batch_mode:  # a scoring forward would then wait on the other ranks' forwards
            raise ValueError("train.sync_bn = true cannot be combined with score_mode = batch (the scoring forwards "
                             "would synchronise across processes); use score_mode eval")
        return self

    @model_validator(mode="after")
    def _batch_fits_data(self):
        subset = self.data.train_subset
        if subset and self.batch_size > subset:
            raise ValueError(f"batch_size = {self.batch_size} exceeds data.train_subset = {subset}")
        return self

    @model_validator(mode="after")
    def _method_sections(self):
        for name in self.compare.methods:
            if name not in self.methods:
                raise ValueError(f"compare.methods lists {name!r} but params.yaml has no methods.{name} section")
        for name in self.methods:
            method_options(self, name)  # raises ValueError naming methods.<name>.<key>
        return self

    @property
    def compared_methods(self) -> list[str]:
        """Every method a training stage runs: the two of the notebook, then the listed peers."""
        return [*ALWAYS_RUN, *self.compare.methods]


def with_budget(params: Params, budget: str) -> Params:
    """params for one run of a sweep: train.budgets = [budget], so its run key and record name are
    those of a single-budget run with the same budget."""
    train = params.train.model_copy(update={"budget": None, "budgets": [budget]})
    return params.model_copy(update={"train": train})


def method_options(params: "Params", name: str):
    """The Options of selection method `name` from params (its section, or the keys it declares)."""
    if name not in METHODS:
        raise ValueError(f"methods.{name}: unknown selection method; known: {', '.join(METHODS)}")
    method = METHODS[name]
    try:
        return method.options_from_params(params.model_dump())
    except TypeError as error:  # an unexpected keyword: a key the method does not have
        unknown = str(error).rsplit(" ", 1)[-1].strip("'")
        raise ValueError(f"{method.keys()[0]}.{unknown}: unknown parameter") from None
    except ValueError as error:
        raise ValueError(f"{method.keys()[0]}.{error}") from None


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
    try:
        return Params.model_validate(raw or {})
    except ValidationError as error:
        raise ConfigError("\n".join(f"params.yaml: {_describe(e)}" for e in error.errors())) from None
