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
scores.

The table lives in a sum tree (`isample.sampling`) holding each usable score, its square and an
unseen flag, so a draw, its weights, tau and a table write cost O(b log N), never O(N). With S the
usable scores' sum, n_u the unseen count and v their fill value, a draw is uniform over N with
probability eps, else from the tree in proportion to s (mass S) or uniform over the unseen (mass
n_u v): exactly q above. Its cost stays near 0 whatever N is (benchmarks/selection_scaling.py).
"""

import math
from collections import deque

import torch

from isample.methods.base import Selection, SelectionMethod
from isample.methods.catalog import ReuseOptions
from isample.sampling import MaxTree, SumTree
from isample.scores import SCORE_FUNCTIONS
from isample.step import StepResult

SCORE, SQUARE, UNSEEN = 0, 1, 2  # the channels of the table's tree


def filled_scores(scores: torch.Tensor, scored_at: torch.Tensor, now: int, max_age: int, unseen: str) -> torch.Tensor:
    """The whole table as the draw sees it, in O(N) (a reference for tests; the method never builds
    it): every unusable score (never scored, scored_at < 0, or, when max_age > 0, scored more than
    max_age iterations before `now`) replaced by the max or mean of the usable ones; with none usable
    every example gets 1 (a uniform draw)."""
    usable = scored_at >= 0
    if max_age > 0:
        usable &= now - scored_at <= max_age
    if not usable.any():
        return torch.ones_like(scores)
    kept = scores[usable]
    value = kept.max() if unseen == "max" else kept.mean()
    return torch.where(usable, scores, value)


def last_of_each(indices: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct indices, each with the value of its last occurrence (a batch drawn with replacement
    can hold an example twice; the later score counts, as a plain table write keeps it)."""
    distinct, inverse = torch.unique(indices, return_inverse=True)
    last = torch.full((len(distinct),), -1, dtype=torch.int64)
    last.scatter_reduce_(0, inverse, torch.arange(len(indices)), reduce="amax")
    return distinct, values[last]


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
        self._build_table()

    def _build_table(self) -> None:
        """The trees and the expiry queue from `scores` and `scored_at` (O(N): at start and on resume)."""
        n, max_age = len(self.scores), self.max_age_iterations
        usable = self.scored_at >= 0
        if max_age > 0:
            usable &= self.iterations - self.scored_at <= max_age
        kept = torch.where(usable, self.scores.double(), 0.0)
        self.table = SumTree(n, channels=3)
        self.table.levels[0][:, :n] = torch.stack([kept, kept.square(), (~usable).double()])
        self.table.rebuild()
        # The largest usable score fills the unseen ones ("max"); with no expiry, once none is unseen
        # it is never needed again, and its upkeep stops.
        self.largest = None
        if self.options.unseen == "max" and (max_age > 0 or not usable.all()):
            self.largest = MaxTree(n)
            self.largest.levels[0][0, :n] = kept
            self.largest.rebuild()
        # (iteration, indices scored then), oldest first: the writes that expire next (max_age > 0).
        self.expiring: deque[tuple[int, torch.Tensor]] = deque()
        for at in torch.unique(self.scored_at[usable]).tolist() if max_age > 0 else []:
            self.expiring.append((at, torch.nonzero(self.scored_at == at).squeeze(1)))

    def _write(self, indices: torch.Tensor, scores: torch.Tensor | None) -> None:
        """Usable `scores` at `indices` (distinct) into the trees; with None, mark them unseen."""
        kept = torch.zeros(len(indices), dtype=torch.float64) if scores is None else scores.double()
        unseen = torch.ones_like(kept) if scores is None else torch.zeros_like(kept)
        self.table.set(indices, torch.stack([kept, kept.square(), unseen], 1))
        if self.largest is not None:
            self.largest.set(indices, kept)
            if self.max_age_iterations == 0 and self.table.total()[UNSEEN] < 0.5:
                self.largest = None  # none unseen, and none can become unseen again

    def _expire(self) -> None:
        """Scores older than max_age iterations become unseen; each write expires once (O(b) amortised)."""
        oldest_kept = self.iterations - self.max_age_iterations
        while self.expiring and self.expiring[0][0] < oldest_kept:
            at, indices = self.expiring.popleft()
            self._write(indices[self.scored_at[indices] == at], None)  # unless scored again since

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """b indices drawn with replacement from q, and their weights 1 / (N q), in O(b log N)."""
        b, generator, eps = self.context.batch_size, self.context.generator, self.options.smoothing
        n = len(self.scores)
        total, square, unseen = self.table.total().tolist()
        unseen = round(unseen)
        if unseen == n:  # nothing usable yet: every example counts 1, a uniform draw
            self.tau = 1.0
            return torch.randint(n, (b,), generator=generator), torch.ones(b)
        if not unseen:
            fill = 0.0  # nothing to fill
        else:
            fill = float(self.largest.total()[0]) if self.options.unseen == "max" else total / (n - unseen)
        mass = total + unseen * fill
        if not mass > 0:  # every usable score 0 and nothing to fill with: nothing to prefer
            self.tau = 1.0
            return torch.randint(n, (b,), generator=generator), torch.ones(b)
        self.tau = math.sqrt(n * (square + unseen * fill * fill)) / mass  # variance_reduction of the table
        uniform = torch.rand(b, generator=generator) < eps
        target = torch.rand(b, generator=generator, dtype=torch.float64) * mass
        from_unseen = ~uniform & (target >= total)
        from_scores = ~uniform & ~from_unseen
        indices = torch.randint(n, (b,), generator=generator)  # kept where the draw is uniform
        indices[from_scores] = self.table.find(target[from_scores], SCORE)
        if unseen:
            indices[from_unseen] = self.table.find((target[from_unseen] - total) / fill, UNSEEN)
        drawn = self.table.values(indices)
        score = torch.where(drawn[:, UNSEEN] > 0, fill, drawn[:, SCORE])
        q = (1 - eps) * score / mass + eps / n
        return indices, (1.0 / (n * q)).float()

    def select(self) -> Selection:
        examples, timer = self.context.examples, self.context.timer
        with timer.phase("draw_batch"):
            self._expire()
            indices, weights = self.draw()
            x, y = examples.gather(indices)
        return Selection(indices, weights, x, y, by_score=True)

    def observe(self, selection: Selection, result: StepResult) -> None:
        with self.context.timer.phase("scoring"):
            fresh = self.score_function(result.logits, selection.targets).float().cpu()
            group = self.context.group  # every rank's (index, score) pairs: the same table on all ranks
            indices, fresh = last_of_each(group.gather(selection.indices), group.gather(fresh))
            self.scores[indices] = fresh
            self.scored_at[indices] = self.iterations
            self._write(indices, fresh)
            if self.max_age_iterations > 0:
                self.expiring.append((self.iterations, indices))
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
        self._build_table()
