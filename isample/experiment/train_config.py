"""The train section of params.yaml: the budget (one or a sweep) and the durations it is written in, the
clock it counts and the priced clock's prices, the learning-rate schedule, and the processes and nodes a
run is spread over (with the sync_bn rule, checked again on the device `auto` resolves to). The largest
section, with rules of its own, apart from the others (`isample.experiment.sections`) and from the whole
file's checks (`isample.experiment.config`) so that a change to how runs are budgeted, clocked or
distributed touches this module alone.
"""

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from isample.experiment.sections import Section

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


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


class PricesConfig(Section):
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


class TrainConfig(Section):
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


def sync_bn_problem(train: TrainConfig, device: str) -> str | None:
    """The sync_bn rule, checked on the configured device and again on the one `auto` resolves to:
    SyncBatchNorm joins several processes' batches (one process: nothing to sync) on GPUs only."""
    if train.sync_bn and train.world_size > 1 and not device.startswith("cuda"):
        return "train.sync_bn = true needs CUDA (torch's SyncBatchNorm runs on GPUs only)"
    return None
