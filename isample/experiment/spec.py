"""One training run, specified once: what `isample.experiment.config` makes of params.yaml for one
method, budget and seed, and all the training loop reads. Plain values, frozen; no params here."""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from isample.pricing import Prices


@dataclass(frozen=True)
class LrSchedule:
    """lr as a function of the budget's progress in [0, 1]: base, times gamma at every milestone passed."""

    base: float
    gamma: float = 1.0
    milestones: tuple[float, ...] = ()

    def __call__(self, progress: float) -> float:
        return self.base * self.gamma ** sum(progress >= milestone for milestone in self.milestones)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run of one selection method needs, and what its record says about it."""

    method: str
    options: Any  # the method's Options (isample.methods.catalog)
    seed: int
    budget: str  # as written in params.yaml: "200s", "3h"
    budget_seconds: float
    lr: LrSchedule
    momentum: float
    weight_decay: float
    batch_size: int  # the global b (each of N processes trains b / N)
    model: str
    augment: bool
    device: str  # auto | cpu | cuda
    amp: bool
    channels_last: bool
    sync_bn: bool
    eval_batch_size: int
    checkpoint_seconds: float
    dataset: str
    record_tag: str  # the tag in its record's file name (`is` and `un` for the notebook's two runs)
    shaping: tuple[tuple[str, Any], ...]  # (params.yaml key, value) pairs that shape the run's result
    workers: int = 0  # DataLoader workers reading a data set from disk (none for data in memory)
    norm: str = "batch"  # the normalisation of this project's own models (isample.experiment.models.NORMS)
    # Of the budget, the seconds spent before training (rho_loss's IL models, charged to a user training
    # once): budget_seconds is what is left to train; `budget` stays the budget as written.
    charged_seconds: float = 0.0
    clock: str = "wall"  # the clock the budget counts: wall | priced (`isample.pricing`)
    prices: Prices | None = None  # the priced clock's (recorded beside the wall clock whichever counts)
    train_set_examples: int = 0  # class-stratified training examples evaluated after every epoch, 0 = all
    # IS forced on from its first iteration beside the rule's run (compare.forced_is): what the rule's
    # choice cost or gained, from the same initial weights
    forced: bool = False

    def key(self, data_hash: str, tables: dict | None = None) -> str:
        """What a checkpoint must match to be resumed: the shaping values, the budget, the seed, the data
        and the per-example tables the method reads."""
        tables_hash = {
            name: hashlib.sha256(table.cpu().numpy().tobytes()).hexdigest() for name, table in (tables or {}).items()
        }
        key = [dict(self.shaping), self.method, self.budget_seconds, self.seed, data_hash]
        key += ["forced"] if self.forced else []  # a run under the rule keeps the key it had before the arm
        text = json.dumps(key + ([tables_hash] if tables_hash else []), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def charged(self, seconds: float) -> "RunSpec":
        """This run with `seconds` of its budget spent before training (its own record and checkpoint)."""
        return dataclasses.replace(
            self,
            budget_seconds=self.budget_seconds - seconds,
            charged_seconds=seconds,
            record_tag=f"{self.record_tag}-charged",
        )

    def forced_on(self) -> "RunSpec":
        """This run with the rule skipped, IS on at every iteration (its own record and checkpoint)."""
        return dataclasses.replace(
            self,
            options=dataclasses.replace(self.options, always_importance=True),
            forced=True,
            record_tag=f"{self.record_tag}-forced",
        )

    @property
    def variant(self) -> str:
        """ "charged" or "forced" for a run beside the method's plain one (its own checkpoint and logged
        names), else ""."""
        return "charged" if self.charged_seconds else "forced" if self.forced else ""

    @property
    def title(self) -> str:
        """The run in a stage's messages: "upper_bound forced on 200s seed 0", "rho_loss 2m (40 s charged) seed 1"."""
        name = f"{self.method} forced on" if self.forced else self.method
        charged = f" ({self.charged_seconds:.0f} s charged)" if self.charged_seconds else ""
        return f"{name} {self.budget}{charged} seed {self.seed}"

    @property
    def record_name(self) -> str:
        """The notebook's naming, <dataset>.<tag>.<budget>.<seed>.xlsx."""
        return f"{self.dataset}.{self.record_tag}.{self.budget.replace(' ', '')}.{self.seed}.xlsx"

    @property
    def checkpoint_name(self) -> str:
        variant = f".{self.variant}" if self.variant else ""
        return f"{self.method}/{self.budget.replace(' ', '')}.seed{self.seed}{variant}.pt"
