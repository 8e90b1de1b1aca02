"""reuse: importance sampling from a table of past scores, with no presample (the notebook's "reuse
important examples").

A score s_i (the upper bound ||softmax(z) - onehot(y)||_2) is kept for every one of the N training
examples and refreshed for free from the training forward of the examples actually trained. Each
iteration draws b examples with replacement from

    q_i = (1 - eps) s_i / sum(s) + eps / N,        weight w_i = 1 / (N q_i),

over the whole training set, so mean(w * loss) is unbiased for the full-data loss whatever the
table holds; the eps floor keeps every example drawable, so one whose stale score is low is seen
again. An example without a usable score (never trained, or last scored more than `max_age`
epochs ago) counts as `unseen`: it gets the largest (`max`) or the mean (`mean`) of the usable
scores. Its cost is the draw over N and a table write: a is near 0.
"""

import torch

from isample.methods.base import Selection, SelectionMethod
from isample.methods.catalog import ReuseOptions
from isample.sampling import importance_draw, variance_reduction
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult


def filled_scores(scores: torch.Tensor, scored_at: torch.Tensor, now: int, max_age: int, unseen: str) -> torch.Tensor:
    """The table with every unusable score replaced: never scored (scored_at < 0) or, when max_age
    > 0, scored more than max_age iterations before `now`. They get the max or mean of the usable
    ones; with none usable every example gets 1 (a uniform draw)."""
    usable = scored_at >= 0
    if max_age > 0:
        usable &= now - scored_at <= max_age
    if not usable.any():
        return torch.ones_like(scores)
    kept = scores[usable]
    value = kept.max() if unseen == "max" else kept.mean()
    return torch.where(usable, scores, value)


class Reuse(SelectionMethod):
    name = "reuse"
    Options = ReuseOptions

    def __init__(self, context, options: ReuseOptions | None = None):
        super().__init__(context, options)
        n = len(context.examples)
        self.scores = torch.zeros(n)
        self.scored_at = torch.full((n,), -1, dtype=torch.int64)  # iteration of the last score, -1 never
        self.iterations = 0
        epoch = max(1, n // context.batch_size)
        self.max_age_iterations = round(self.options.max_age * epoch)
        self.score_function = SCORE_FUNCTIONS[self.options.score]
        self.tau = 0.0

    def select(self) -> Selection:
        examples, timer, options = self.context.examples, self.context.timer, self.options
        with timer.phase("draw_batch"):
            table = filled_scores(self.scores, self.scored_at, self.iterations, self.max_age_iterations, options.unseen)
            indices, weights = importance_draw(
                table, self.context.batch_size, self.context.generator, options.smoothing
            )
            x, y = examples.gather(indices)
        with timer.phase("scoring"):
            self.tau = variance_reduction(table)  # what drawing by this table can gain over uniform
        return Selection(indices, weights, x, y, by_score=True)

    def observe(self, selection: Selection, result: StepResult) -> None:
        with self.context.timer.phase("scoring"):
            fresh = self.score_function(result.logits, selection.targets).float().cpu()
            group = self.context.group  # every rank's (index, score) pairs: the same table on all ranks
            indices, fresh = group.gather(selection.indices), group.gather(fresh)
            self.scores[indices] = fresh
            self.scored_at[indices] = self.iterations
        self.iterations += 1

    def metrics(self) -> dict[str, float]:
        """tau of the table it draws from: what drawing by it can gain over uniform."""
        return {"tau": self.tau}

    def state_dict(self) -> dict:
        return {
            "tau": self.tau,
            "scores": self.scores.clone(),
            "scored_at": self.scored_at.clone(),
            "iterations": self.iterations,
        }

    def load_state_dict(self, state: dict) -> None:
        self.tau = state["tau"]
        self.scores, self.scored_at = state["scores"].clone(), state["scored_at"].clone()
        self.iterations = state["iterations"]
