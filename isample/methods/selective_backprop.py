"""selective_backprop: Selective-Backprop (Jiang et al. 2019, "Accelerating deep learning by focusing
on the biggest losers"), as the authors' code (angelajiang/SelectiveBackprop) runs it.

The first pass over the data trains every example (the authors' priming, `prime_passes`). After
it, candidates are the next b examples of the random-reshuffling stream (each a candidate once per
pass), augmented once and run forward without gradients (BatchNorm with running statistics: the
authors' eval-mode forward). Each candidate's loss L is placed among the last `history` losses seen, its own batch's
included; it is selected with probability

    P(L) = max(F(L) ** beta, sampling_min),       F(L) = share of the history losses < L,

and the selected examples, as the very augmented views that were scored, wait until b are ready;
those b are backpropagated unweighted (biased towards high losses by design, as published). The
defaults are the authors': beta = 3, sampling_min = 0, history 1024. Expected candidate forwards
per iteration: b / mean(P), 4 b at beta = 3, so its cost a grows as beta sharpens the selection.
"""

import math

import torch

from isample.methods.base import Selection, SelectionMethod, candidate_losses, scoring_mode
from isample.methods.catalog import SelectiveBackpropOptions

IDLE_ROUNDS = 1000  # candidate batches in a row that select nothing before the method gives up


def loss_percentiles(losses: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """F(L): for each loss, the share of the history losses strictly below it (the authors'
    percentile_of_score), in [0, 1)."""
    ordered = torch.sort(history).values
    return torch.searchsorted(ordered, losses, right=False).float() / len(ordered)


def selection_probabilities(percentiles: torch.Tensor, beta: float, sampling_min: float) -> torch.Tensor:
    """P = max(F ** beta, sampling_min)."""
    return percentiles.pow(beta).clamp(min=sampling_min)


class SelectiveBackprop(SelectionMethod):
    name = "selective_backprop"
    runs_own_forwards = True  # the candidates' forward
    Options = SelectiveBackpropOptions

    def __init__(self, context, options: SelectiveBackpropOptions | None = None):
        super().__init__(context, options)
        self.history = torch.empty(0)
        # Selected, not yet trained: indices, and the augmented views that were scored (model's device).
        self.waiting = torch.empty(0, dtype=torch.int64)
        self.waiting_inputs: torch.Tensor | None = None
        self.waiting_targets: torch.Tensor | None = None
        # Examples still to train unscored: the first prime_passes passes.
        self.priming = self.options.prime_passes * context.examples.stream.pass_size(context.batch_size)
        self.candidates_seen = 0
        self.candidates_selected = 0

    def _select_candidates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch of b candidates scored: the selected ones' indices and the views that were scored."""
        context, timer, options = self.context, self.context.timer, self.options
        with timer.phase("draw_presample"):
            candidates = context.examples.take(context.batch_size)
            x, y = context.examples.gather(candidates)
        losses = candidate_losses(context, x, y, self.name)
        with timer.phase("draw_batch"):
            self.history = torch.cat([self.history, losses])[-options.history :]
            chance = selection_probabilities(loss_percentiles(losses, self.history), options.beta, options.sampling_min)
            chosen = torch.nonzero(torch.rand(len(losses), generator=context.generator) < chance).squeeze(1)
            self.candidates_seen += len(candidates)
            self.candidates_selected += len(chosen)
            on_device = chosen.to(x.device)
            return candidates[chosen], x[on_device], y[on_device]

    def _queue_until(self, b: int) -> None:
        """Score candidate batches until b selected examples wait (their views joined once, at the end)."""
        parts = [] if self.waiting_inputs is None else [(self.waiting, self.waiting_inputs, self.waiting_targets)]
        queued, idle = len(self.waiting), 0
        with scoring_mode(self.context.model, self.options.score_mode), torch.inference_mode():
            while queued < b:
                parts.append(self._select_candidates())
                queued += len(parts[-1][0])
                idle = 0 if len(parts[-1][0]) else idle + 1
                if idle >= IDLE_ROUNDS:
                    raise RuntimeError(
                        f"selective_backprop selected none of {IDLE_ROUNDS * b} candidates in a row (all losses "
                        f"alike and sampling_min = {self.options.sampling_min}): set "
                        "methods.selective_backprop.sampling_min > 0"
                    )
        indices, inputs, targets = zip(*parts)
        self.waiting, self.waiting_inputs, self.waiting_targets = (
            torch.cat(indices),
            torch.cat(inputs),
            torch.cat(targets),
        )

    def select(self) -> Selection:
        context, b = self.context, self.context.batch_size
        if self.priming > 0:  # the authors train the whole first pass before selecting
            with context.timer.phase("draw_batch"):
                indices = context.examples.take(b)
                x, y = context.examples.gather(indices)
            self.priming -= b
            self.candidates_seen += b
            self.candidates_selected += b
            return Selection(indices, None, x, y)
        if len(self.waiting) < b:
            self._queue_until(b)
        with context.timer.phase("draw_batch"):
            indices, self.waiting = self.waiting[:b], self.waiting[b:]
            x, self.waiting_inputs = self.waiting_inputs[:b], self.waiting_inputs[b:]
            y, self.waiting_targets = self.waiting_targets[:b], self.waiting_targets[b:]
        return Selection(indices, None, x, y, by_score=True)

    def metrics(self) -> dict[str, float]:
        """The share of the examples run forward that were trained (the priming pass: all), as the
        authors log backprops over forwards."""
        return {"selected_share": self.candidates_selected / self.candidates_seen if self.candidates_seen else math.nan}

    def state_dict(self) -> dict:
        return {
            "candidates_selected": self.candidates_selected,
            "candidates_seen": self.candidates_seen,
            "priming": self.priming,
            "history": self.history.clone(),
            "waiting": self.waiting.clone(),
            "waiting_inputs": None if self.waiting_inputs is None else self.waiting_inputs.cpu().clone(),
            "waiting_targets": None if self.waiting_targets is None else self.waiting_targets.cpu().clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.candidates_selected, self.candidates_seen = state["candidates_selected"], state["candidates_seen"]
        self.priming = state["priming"]
        self.history, self.waiting = state["history"].clone(), state["waiting"].clone()
        device = self.context.device
        self.waiting_inputs = None if state["waiting_inputs"] is None else state["waiting_inputs"].to(device)
        self.waiting_targets = None if state["waiting_targets"] is None else state["waiting_targets"].to(device)
