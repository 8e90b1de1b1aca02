"""One epoch's record row, summed over its iterations: the losses stay on the device so nothing
synchronises until the epoch ends; the method's own metrics are averaged over the epoch."""

import math

import torch

from isample.distributed import Group
from isample.phases import PHASES
from isample.trainer import Iteration


class EpochTotals:
    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.plain_loss = torch.zeros((), device=device)
        self.accuracy_weighted = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.iterations = self.scored = self.examples_scored = 0
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.metric_sums: dict[str, float] = {}
        self.metric_counts: dict[str, int] = {}

    def add(self, it: Iteration) -> None:
        self.loss += it.weighted_loss
        self.plain_loss += it.plain_loss
        self.accuracy_weighted += it.accuracy_weighted
        self.correct += it.correct
        self.iterations += 1
        self.scored += it.by_score
        self.examples_scored += it.work.scored if it.work else 0
        self.add_phases(it.phases)
        for name, value in it.metrics.items():  # a metric the method cannot tell yet (nan) is left out
            finite = math.isfinite(value)
            self.metric_sums[name] = self.metric_sums.get(name, 0.0) + (value if finite else 0.0)
            self.metric_counts[name] = self.metric_counts.get(name, 0) + finite

    def add_phases(self, phases: dict[str, float]) -> None:
        for name, seconds in phases.items():
            self.phases[name] += seconds

    def state_dict(self) -> dict:
        """The sums so far (for a checkpoint taken mid-epoch): tensors and plain numbers only."""
        tensors = {name: getattr(self, name).cpu() for name in ("loss", "plain_loss", "accuracy_weighted", "correct")}
        counts = {"iterations": self.iterations, "scored": self.scored, "examples_scored": self.examples_scored}
        return {
            **tensors,
            **counts,
            "phases": dict(self.phases),
            "sums": dict(self.metric_sums),
            "counts": dict(self.metric_counts),
        }

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> "EpochTotals":
        totals = cls(device)
        for name in ("loss", "plain_loss", "accuracy_weighted", "correct"):
            setattr(totals, name, state[name].to(device))
        totals.iterations, totals.scored, totals.examples_scored = (
            state["iterations"],
            state["scored"],
            state["examples_scored"],
        )
        totals.phases, totals.metric_sums, totals.metric_counts = state["phases"], state["sums"], state["counts"]
        return totals

    @property
    def finite(self) -> bool:
        return bool(torch.isfinite(self.loss))

    def row(self, group: Group, batch_size: int) -> dict:
        """Train metrics over every rank's examples (under DDP each rank trained its own share of the
        global batch b), the phase seconds of this rank, and the method's metrics."""
        n = self.iterations
        loss, plain_loss, accuracy_weighted = group.mean(
            [self.loss.item(), self.plain_loss.item(), self.accuracy_weighted.item()]
        )
        correct, examples_scored = group.total([float(self.correct.item()), float(self.examples_scored)])
        metrics = {
            name: total / self.metric_counts[name] if self.metric_counts[name] else math.nan
            for name, total in self.metric_sums.items()
        }
        return {
            "iterations": n,
            "train_loss": plain_loss / n,
            "train_accuracy": correct / (n * batch_size),
            "train_loss_weighted": loss / n,
            "train_accuracy_weighted": accuracy_weighted / n,
            "scored_share": self.scored / n,
            "examples_scored": examples_scored,  # through a forward without gradients, to choose (all ranks)
            **{f"time_{name}": seconds for name, seconds in self.phases.items()},
            **metrics,
        }
