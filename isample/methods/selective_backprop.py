"""selective_backprop: Selective-Backprop (Jiang et al. 2019, "Accelerating deep learning by focusing
on the biggest losers"; also in MosaicML Composer).

Candidates are drawn uniformly b at a time and run forward without gradients. Each candidate's
loss L is placed among the last `history` losses seen; it is selected with probability

    P(L) = max(F(L) ** beta, sampling_min),       F(L) = share of the history losses <= L,

and selected examples are collected until b are ready; only those are backpropagated (unweighted:
the method is biased towards high losses by design, as published). Selected examples beyond b wait
for the next iteration. Expected candidate forwards per iteration: b / mean(P), so its cost a
grows as beta sharpens the selection.
"""

import math
from dataclasses import dataclass

import torch

from isample.methods.base import SCORE_MODES, Selection, SelectionMethod, check_options, is_number, scoring_mode
from isample.scores import per_example_loss
from isample.step import autocast


def loss_percentiles(losses: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """F(L): for each loss, the share of the history losses that are <= it (in (0, 1] when the
    losses are part of the history)."""
    ordered = torch.sort(history).values
    return torch.searchsorted(ordered, losses, right=True).float() / len(ordered)


def selection_probabilities(percentiles: torch.Tensor, beta: float, sampling_min: float) -> torch.Tensor:
    """P = max(F ** beta, sampling_min)."""
    return percentiles.pow(beta).clamp(min=sampling_min)


@dataclass(frozen=True)
class SelectiveBackpropOptions:
    beta: float = 1.0  # selectivity: the larger, the more only the biggest losers are kept
    sampling_min: float = 0.05  # floor of the selection probability
    history: int = 1024  # recent losses the percentile is taken among
    score_mode: str = "eval"  # BatchNorm in the candidate forward: running (eval) or batch statistics

    def __post_init__(self):
        check_options(self, {
            "beta": (lambda v: is_number(v) and v >= 0, "beta must be >= 0 (0 selects every candidate)"),
            "sampling_min": (lambda v: is_number(v) and 0 < v <= 1, "sampling_min must be in (0, 1]"),
            "history": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "history must be >= 1"),
            "score_mode": (lambda m: m in SCORE_MODES, f"score_mode must be one of {', '.join(SCORE_MODES)}"),
        })  # fmt: skip


class SelectiveBackprop(SelectionMethod):
    name = "selective_backprop"
    Options = SelectiveBackpropOptions

    def __init__(self, context, options: SelectiveBackpropOptions | None = None):
        super().__init__(context, options)
        self.history = torch.empty(0)
        self.waiting = torch.empty(0, dtype=torch.int64)  # selected, not yet trained
        self.candidates_seen = 0
        self.tau = self.tau_threshold = math.nan  # no variance-reduction switch

    def _candidate_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        context, timer = self.context, self.context.timer
        with scoring_mode(context.model, self.options.score_mode), torch.inference_mode():
            with timer.phase("presample_forward"):
                with autocast(context.device, context.autocast_dtype):
                    logits = context.model(x)
            with timer.phase("scoring"):
                return per_example_loss(logits, y).float().cpu()

    def select(self) -> Selection:
        context, examples, timer, options = self.context, self.context.examples, self.context.timer, self.options
        b = context.batch_size
        while len(self.waiting) < b:
            with timer.phase("draw_presample"):
                candidates = examples.draw_uniform(b)
                x, y = examples.gather(candidates)
            losses = self._candidate_losses(x, y)
            with timer.phase("draw_batch"):
                self.history = torch.cat([self.history, losses])[-options.history :]
                chance = selection_probabilities(loss_percentiles(losses, self.history), options.beta, options.sampling_min)
                chosen = torch.rand(len(losses), generator=context.generator) < chance
                self.waiting = torch.cat([self.waiting, candidates[chosen]])
                self.candidates_seen += len(candidates)
        with timer.phase("draw_batch"):
            indices, self.waiting = self.waiting[:b], self.waiting[b:]
            x, y = examples.gather(indices)
        return Selection(indices, None, x, y, used_importance=True)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history.clone(), "waiting": self.waiting.clone(),
                "candidates_seen": self.candidates_seen}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history, self.waiting = state["history"].clone(), state["waiting"].clone()
        self.candidates_seen = state["candidates_seen"]
