"""The typed schema of params.yaml, checked before any work starts (`validate`): one line per problem,
naming its key. What it specifies, the keys each stage reads and one `RunSpec` per run, is in
`isample.experiment.runs`.

The sections of the pipeline (data, model, train, ...) have no defaults here: params.yaml holds every
value. The selection methods' options are validated through their own Options dataclasses
(`isample.methods.catalog`, where their rules and library defaults live; params.yaml must hold every
one of them, a test checks it holds the same values).
"""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from isample.experiment.data import DATASETS, IMAGEFOLDER
from isample.experiment.method_params import method_options, option_problems, sections_problems
from isample.experiment.models import NORMS, check_model_name, check_norm
from isample.methods.catalog import CATALOG
from isample.names import IMPORTANCE, UNIFORM

ALWAYS_RUN = (IMPORTANCE, UNIFORM)  # the notebook's two runs, train_is and train_uniform
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
    name: Literal[(*DATASETS, IMAGEFOLDER)]  # type: ignore[valid-type]
    root: str
    download: bool
    path: str  # imagefolder: a tree train/<class>/*, test/<class>/*, or a .tar(.gz) archive of one
    image_size: int = Field(ge=0)  # imagefolder: the side images are resized and cropped to (0: as stored)
    workers: int = Field(ge=0)  # imagefolder: DataLoader worker processes reading the images
    train_subset: int = Field(ge=0)
    test_subset: int = Field(ge=0)
    train_eval_subset: int = Field(ge=0)  # training examples evaluated after every epoch, 0 = all
    augment: bool

    @model_validator(mode="after")
    def _a_folder_for_imagefolder(self):
        if self.name == IMAGEFOLDER and not self.path:
            raise ValueError(
                "data.name = 'imagefolder' needs data.path: a folder train/<class>/*, test/<class>/* "
                "or an archive of one"
            )
        return self


class ModelConfig(_Section):
    name: str  # a CIFAR ResNet or Wide ResNet of isample.experiment.models, or torchvision:<name>
    norm: Literal[NORMS]  # type: ignore[valid-type]  # the normalisation of this project's own models

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return check_model_name(value)

    @model_validator(mode="after")
    def _norm_fits(self):
        check_norm(self.name, self.norm)
        return self


class PricesConfig(_Section):
    """The priced clock's seconds (`isample.pricing.Prices`), and IS's presample priced by them or stated."""

    forward: float = Field(gt=0)  # per example, training forward
    backward: float = Field(gt=0)  # per example
    iteration: float = Field(gt=0)  # per iteration: the optimizer step and the loop around it
    score: float = Field(gt=0)  # per example scored without gradients (presample, candidates)
    presample_a: Any  # IS's presample of B: "from_prices" (B x score), or a number a of training steps

    @field_validator("presample_a")
    @classmethod
    def _share(cls, value):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value != "from_prices" and not (number and value >= 0):
            raise ValueError("must be 'from_prices' or a share of a training step >= 0 (0: a free presample)")
        return value


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
    gpu_wait: str  # device auto on GPUs: how long a stage waits for a GPU no other stage holds
    processes: int = Field(ge=1)  # DDP processes (GPUs) one run is spread over; 1 = a single process
    sync_bn: bool  # under DDP: BatchNorm statistics over every rank's batch (SyncBatchNorm, CUDA only)
    nodes: int = Field(ge=1)  # machines one run is spread over, `processes` each (torchrun's --nnodes)
    rdzv_endpoint: str  # host:port of the c10d rendezvous every node joins (nodes > 1); '' with one node
    rdzv_id: str = Field(min_length=1)  # the run's rendezvous id, alike on every node
    clock: Literal["wall", "priced"]  # what the budget counts: wall-clock seconds or the price of the work done
    prices: PricesConfig

    @field_validator("rdzv_endpoint")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{value!r} is not host:port (for instance node0.cluster:29400)")
        return value

    @model_validator(mode="after")
    def _nodes_meet(self):
        if self.nodes > 1 and not self.rdzv_endpoint:
            raise ValueError(
                f"train.nodes = {self.nodes} needs train.rdzv_endpoint, the host:port every node meets at "
                "(one node's address and a free port)"
            )
        return self

    @property
    def world_size(self) -> int:
        """Processes over all nodes: the ranks one run is split over."""
        return self.nodes * self.processes

    @field_validator("budget", "checkpoint_every", "gpu_wait")
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
    def checkpoint_seconds(self) -> float:
        return parse_duration(self.checkpoint_every)

    @property
    def gpu_wait_seconds(self) -> float:
        return parse_duration(self.gpu_wait)


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
            if name not in CATALOG:
                raise ValueError(f"unknown selection method {name!r}; known: {', '.join(CATALOG)}")
            if name in ALWAYS_RUN:
                raise ValueError(f"{name!r} always runs (its own stage): list only the other methods")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a method")
        return value


class IrreducibleConfig(_Section):
    """The irreducible-loss (IL) models of rho_loss (stage tables@rho_loss): two, each trained on one
    class-stratified half of the training set and scoring the other half (the authors' twin variant)."""

    model: str  # as model.name; the authors' default is ResNet-18 (a small CNN also works, they note)
    epochs: int = Field(ge=1)  # epochs over its half; the epoch of lowest loss on the other half is kept
    lr: float = Field(gt=0)  # AdamW, constant (the authors': 1e-3)
    weight_decay: float = Field(ge=0)  # AdamW's (the authors' leave torch's default, 0.01)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return check_model_name(value)


class ReportConfig(_Section):
    lang: Literal["en", "zh"]


class Params(_Section):
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


def sync_bn_problem(train: TrainConfig, device: str) -> str | None:
    """The sync_bn rule, checked on the configured device and again on the one `auto` resolves to:
    SyncBatchNorm joins several processes' batches (one process: nothing to sync) on GPUs only."""
    if train.sync_bn and train.world_size > 1 and not device.startswith("cuda"):
        return "train.sync_bn = true needs CUDA (torch's SyncBatchNorm runs on GPUs only)"
    return None


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
