"""rho_loss: RHO-LOSS (Mindermann et al., ICML 2022, "Prioritized Training on Points that are
Learnable, Worth Learning, and Not Yet Learnt"), as the authors' code (OATML/RHO-Loss) runs it.

An irreducible-loss (IL) model, trained beforehand on other data, gives every training example its
IL loss once; the method reads them by data-set index from the context's table
"irreducible_loss". Each iteration takes ceil(b / selection) candidates from the random-reshuffling
stream, runs the model forward on them without gradients (by default BatchNorm normalising with
the candidates' own statistics, as the authors' forward in train mode does), and trains the b with
the largest reducible loss

    reducible = training loss - IL loss,

unweighted (biased by design), on the very augmented views that were scored. At the authors'
selection 0.1 (320 candidates, 32 trained) that is 10 b candidate forwards per iteration.
"""

import math

import torch

from isample.methods.base import Selection, SelectionMethod, candidate_losses, scoring_mode
from isample.methods.catalog import RhoLossOptions

TABLE = "irreducible_loss"


def candidate_count(batch_size: int, selection: float) -> int:
    """Candidates scored per iteration so that b of them are the top `selection` share."""
    return math.ceil(batch_size / selection - 1e-9)  # 1e-9: 32 / 0.1 is 320.00000000000006


def reducible_top(training_losses: torch.Tensor, irreducible_losses: torch.Tensor, count: int) -> torch.Tensor:
    """Positions of the `count` largest reducible losses (training minus irreducible), largest first;
    among equal ones, the earlier candidate first (a stable descending sort)."""
    reducible = training_losses - irreducible_losses
    return torch.sort(reducible, descending=True, stable=True).indices[:count]


class RhoLoss(SelectionMethod):
    name = "rho_loss"
    runs_own_forwards = True  # the candidates' forward
    Options = RhoLossOptions

    def __init__(self, context, options: RhoLossOptions | None = None):
        super().__init__(context, options)
        if TABLE not in context.tables:
            raise ValueError(
                f"rho_loss needs the irreducible loss of every training example: give tables={{{TABLE!r}: losses}} "
                "(one per data-set index, from a model trained on other data)"
            )
        self.irreducible = context.tables[TABLE].float()
        if not bool(torch.isfinite(self.irreducible).all()):
            raise ValueError("rho_loss: the irreducible losses must all be finite")
        self.candidates = candidate_count(context.batch_size, self.options.selection)
        share = len(context.examples) // context.group.world_size
        if self.candidates > share:
            raise ValueError(
                f"rho_loss scores {self.candidates} candidates per iteration (b = {context.batch_size} at selection "
                f"{self.options.selection}), more than the {share} examples of a pass: raise selection or lower b"
            )
        self.last_reducible = math.nan
        self.last_irreducible = math.nan

    def start_epoch(self) -> int:
        """An epoch is one pass of the stream in candidates: N / (ceil(b / selection) x ranks) iterations."""
        context = self.context
        return max(1, len(context.examples) // (self.candidates * context.group.world_size))

    def _scored_candidates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The candidates' indices, their views and targets, and their losses. They are one take of the
        stream, as the authors' candidates are one batch of a shuffled epoch: none twice in an iteration
        (loading ahead foresees the next takes alike). In batch mode they are scored in one forward, as
        the authors' (BatchNorm's statistics over all candidates); in eval mode chunk by chunk of b (the
        same losses, at a smaller peak memory)."""
        context, timer, b = self.context, self.context.timer, self.context.batch_size
        with timer.phase("draw_presample"):
            indices = context.examples.take(self.candidates)
            inputs, targets = context.examples.gather(indices)
        with scoring_mode(context.model, self.options.score_mode), torch.inference_mode():
            chunk = None if self.options.score_mode == "batch" else b
            losses = candidate_losses(context, inputs, targets, self.name, chunk)
        return indices, inputs, targets, losses

    def select(self) -> Selection:
        indices, inputs, targets, losses = self._scored_candidates()
        with self.context.timer.phase("draw_batch"):
            irreducible = self.irreducible[indices]
            chosen = reducible_top(losses, irreducible, self.context.batch_size)
            self.last_reducible = float((losses[chosen] - irreducible[chosen]).mean())
            self.last_irreducible = float(irreducible[chosen].mean())
            on_device = chosen.to(inputs.device)
        return Selection(indices[chosen], None, inputs[on_device], targets[on_device], by_score=True)

    def metrics(self) -> dict[str, float]:
        """The trained examples' mean reducible and irreducible loss (as scored)."""
        return {"reducible_loss": self.last_reducible, "irreducible_loss": self.last_irreducible}

    def state_dict(self) -> dict:
        """The IL table goes with the checkpoint, so a resume is checked against the one it trained with."""
        return {TABLE: self.irreducible.clone()}

    def load_state_dict(self, state: dict) -> None:
        saved = state[TABLE]
        if saved.shape != self.irreducible.shape or not torch.equal(saved, self.irreducible):
            raise ValueError("rho_loss: the irreducible losses differ from the checkpoint's (another IL model or data)")
