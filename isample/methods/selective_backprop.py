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

import torch

from isample.methods.base import Selection, SelectionMethod, scoring_mode
from isample.methods.catalog import SelectiveBackpropOptions
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


class SelectiveBackprop(SelectionMethod):
    name = "selective_backprop"
    Options = SelectiveBackpropOptions

    def __init__(self, context, options: SelectiveBackpropOptions | None = None):
        super().__init__(context, options)
        self.history = torch.empty(0)
        self.waiting = torch.empty(0, dtype=torch.int64)  # selected, not yet trained
        self.candidates_seen = 0
        self.candidates_selected = 0

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
                chance = selection_probabilities(
                    loss_percentiles(losses, self.history), options.beta, options.sampling_min
                )
                chosen = torch.rand(len(losses), generator=context.generator) < chance
                self.waiting = torch.cat([self.waiting, candidates[chosen]])
                self.candidates_seen += len(candidates)
                self.candidates_selected += int(chosen.sum())
        with timer.phase("draw_batch"):
            indices, self.waiting = self.waiting[:b], self.waiting[b:]
            x, y = examples.gather(indices)
        return Selection(indices, None, x, y, by_score=True)

    def metrics(self) -> dict[str, float]:
        """The share of the candidates it selected so far (mean P over the candidates)."""
        return {"selected_share": self.candidates_selected / self.candidates_seen if self.candidates_seen else math.nan}

    def state_dict(self) -> dict:
        return {
            "candidates_selected": self.candidates_selected,
            "history": self.history.clone(),
            "waiting": self.waiting.clone(),
            "candidates_seen": self.candidates_seen,
        }

    def load_state_dict(self, state: dict) -> None:
        self.candidates_selected = state["candidates_selected"]
        self.history, self.waiting = state["history"].clone(), state["waiting"].clone()
        self.candidates_seen = state["candidates_seen"]
