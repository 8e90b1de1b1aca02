"""The typed schema of params.yaml, checked before any work starts, and what it specifies: one
`RunSpec` per training run, and the keys each stage reads (dvc.yaml lists the same, a test checks).

The sections of the pipeline (data, model, train, ...) have no defaults here: params.yaml holds every
value. The selection methods' options are validated through their own Options dataclasses
(`isample.methods.catalog`, where their rules and library defaults live; params.yaml must hold every
one of them, a test checks it holds the same values).
"""

import dataclasses
import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from isample.experiment.data import DATASETS, IMAGEFOLDER
from isample.experiment.models import NORMS, check_model_name, check_norm
from isample.experiment.spec import LrSchedule, RunSpec
from isample.methods.catalog import CATALOG, entry, rule_problems
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


def _option_problems(params: dict, name: str) -> tuple[Any, list[str]]:
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


def method_options(params: "Params | dict", name: str) -> Any:
    """The Options of selection method `name` from params (ValueError naming the key when they are bad)."""
    raw = params.model_dump() if isinstance(params, BaseModel) else params
    options, problems = _option_problems(raw, name)
    if problems:
        raise ValueError("; ".join(problems))
    return options


def _sections_problems(raw: dict) -> list[str]:
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
        round(importance.presample * params.batch_size),
        params.data.train_subset,
        params.train.world_size,
    )
    problems = []
    if subset and presample > subset:
        problems.append(f"presample * batch_size = {presample} exceeds data.train_subset = {subset}")
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
    problems += _sections_problems(raw)
    for name in CATALOG:
        if CATALOG[name].section is None or name in (raw.get("methods") or {}):
            problems += _option_problems(raw, name)[1]
    if params is not None and not problems:
        problems += _across_problems(params)
    if problems:
        raise ConfigError("\n".join(f"params.yaml: {problem}" for problem in dict.fromkeys(problems)))
    return params


# -- what each stage reads, and what shapes a run ----------------------------------------------------

# Keys that decide which runs happen, how they are kept and how fast data is read, not what a run computes.
TRAIN_OPERATIONAL = (
    "data.workers",
    "train.budget",
    "train.budgets",
    "train.seeds",
    "train.checkpoint_every",
    "train.gpu_wait",
    "train.eval_batch_size",
    "train.rdzv_endpoint",
    "train.rdzv_id",
)
TABLES_READ = (
    "batch_size",
    "data.name",
    "data.augment",
    "data.workers",
    "train.device",
    "train.eval_batch_size",
    "train.amp",
    "irreducible",
)
_TRAINING = ("batch_size", "data.name", "data.augment", "data.workers", "model", "train")
_TIMED = (
    "batch_size",
    "data.name",
    "data.augment",
    "data.workers",
    "model",
    "train.device",
    "train.gpu_wait",
    "train.amp",
    "train.channels_last",
    "train.lr",
    "train.lr_scale",
    "train.momentum",
    "train.weight_decay",
    "timing",
)


def method_keys(name: str) -> list[str]:
    """The params.yaml keys holding a method's options; a section whose every key it reads counts whole."""
    method = entry(name)
    if method.section:
        return [method.section]
    claimed = {key for other in CATALOG.values() for key in other.option_keys().values() if key.startswith("sampler.")}
    keys = list(method.option_keys().values())
    if claimed <= set(keys):
        keys = [key for key in keys if not key.startswith("sampler.")] + ["sampler"]
    return keys


def stage_params(stage: str, method: str | None = None) -> list[str]:
    """The params.yaml keys a stage reads: dvc.yaml's `params:` of it (tests/test_dvc_deps.py checks)."""
    if stage == "train":
        return [*_TRAINING, *method_keys(method)]
    if stage == "timing":  # uniform and upper_bound at every ratio of timing.presamples (not at `presample`)
        return [*_TIMED, *(key for key in method_keys(IMPORTANCE) if key != "presample")]
    if stage == "timing_peer":  # uniform beside one other method
        return [*_TIMED, *method_keys(UNIFORM), *method_keys(method)]
    if stage == "tables":  # the per-example tables one method reads (rho_loss: the IL models' losses)
        return [*TABLES_READ]
    raise ValueError(f"unknown stage {stage!r}")


def _flat(nested: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_values(params: Params, keys: list[str]) -> dict:
    """The values under `keys` (a section stands for all its keys), flat: "train.lr" -> 0.1."""
    return {
        key: value
        for key, value in _flat(params.model_dump()).items()
        if any(key == wanted or key.startswith(wanted + ".") for wanted in keys)
    }


def shaping_values(params: Params, method: str) -> dict:
    """Every params.yaml value that shapes a run of `method` (its run key and its record's parameters):
    what its training stage reads, less what only picks or keeps runs (TRAIN_OPERATIONAL)."""
    values = params_values(params, stage_params("train", method))
    return {key: value for key, value in values.items() if key not in TRAIN_OPERATIONAL}


def run_spec(params: Params, method: str, budget: str, seed: int) -> RunSpec:
    """The specification of one run of `method` for one budget and seed."""
    train = params.train
    constant = train.lr_schedule == "constant"
    shaping = shaping_values(params, method)
    return RunSpec(
        method=method,
        options=method_options(params, method),
        seed=seed,
        budget=budget,
        budget_seconds=parse_duration(budget),
        lr=LrSchedule(train.lr * train.lr_scale, train.lr_gamma, () if constant else tuple(train.lr_milestones)),
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        batch_size=params.batch_size,
        model=params.model.name,
        norm=params.model.norm,
        augment=params.data.augment,
        device=train.device,
        amp=train.amp,
        channels_last=train.channels_last,
        sync_bn=train.sync_bn,
        eval_batch_size=train.eval_batch_size,
        checkpoint_seconds=train.checkpoint_seconds,
        dataset=params.data.name,
        workers=params.data.workers,
        record_tag=entry(method).record_tag,
        shaping=tuple(sorted(shaping.items(), key=lambda item: item[0])),
    )


def run_specs(params: Params, method: str) -> list[RunSpec]:
    """One RunSpec per (budget, seed) pair, budgets shortest first."""
    return [
        run_spec(params, method, budget, seed) for budget in params.train.budget_list for seed in params.train.seeds
    ]
