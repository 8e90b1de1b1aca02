"""infobatch: InfoBatch (Qin et al., ICLR 2024), unbiased dynamic data pruning by loss.

A per-example loss table is refreshed for free from the training forward. At each epoch start, of
the n examples whose last loss is below the mean of the table ("well learned"), exactly
int((1 - r) n) are kept at random (r = `prune_ratio`, as the authors' `infobatch` package does); the
kept ones have their loss scaled by 1 / (1 - r), so the expected gradient of the epoch stays that of
the full data. The epoch is a permutation of the kept examples, trained b at a time, so it shrinks
with pruning. Once `delta` of the training budget has passed (0.875: the last 12.5% of the training
time) nothing is pruned (annealing; the package counts epochs, see the method card for why time
here). Examples never trained yet have no loss and are never pruned. It runs no forward of its own:
a is near 0.
"""

import math

import torch

from isample.examples import READ_AHEAD
from isample.methods.base import Selection, SelectionMethod
from isample.methods.catalog import InfoBatchOptions
from isample.step import StepResult


def prune(
    losses: torch.Tensor, prune_ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept data-set indices and their loss weights for one epoch, as the authors' package prunes.

    losses: the table (NaN: no loss yet, never pruned). Of the n examples with loss < mean of the
    known losses ("well learned"), exactly int((1 - prune_ratio) n) are kept, drawn without
    replacement, with weight 1 / (1 - prune_ratio); every other example is kept with weight 1."""
    known = ~torch.isnan(losses)
    if not known.any() or prune_ratio == 0:
        return torch.arange(len(losses)), torch.ones(len(losses))
    keep_ratio = 1.0 - prune_ratio
    well_learned = known & (losses < losses[known].mean())
    candidates = torch.nonzero(well_learned).squeeze(1)
    survivors = candidates[torch.randperm(len(candidates), generator=generator)[: int(keep_ratio * len(candidates))]]
    keep = ~well_learned
    keep[survivors] = True
    kept = torch.nonzero(keep).squeeze(1)
    weights = torch.where(well_learned[kept], 1.0 / keep_ratio, 1.0)
    return kept, weights


class InfoBatch(SelectionMethod):
    name = "infobatch"
    Options = InfoBatchOptions

    def __init__(self, context, options: InfoBatchOptions | None = None):
        super().__init__(context, options)
        self.losses = torch.full((len(context.examples),), math.nan)
        self.order = torch.empty(0, dtype=torch.int64)  # this epoch's examples, in training order
        self.weights = torch.empty(0)
        self.position = 0
        self.pruning = False  # whether this epoch pruned anything
        self.pruned_share = 0.0

    def start_epoch(self) -> int:
        """Prune and shuffle with the generator shared by all ranks: under DDP every rank holds the same
        epoch order and trains its own slice of each global batch of b x ranks examples."""
        context = self.context
        n, generator = len(self.losses), context.shared_generator or context.generator
        annealing = context.progress() >= self.options.delta
        kept, weights = prune(self.losses, 0.0 if annealing else self.options.prune_ratio, generator)
        shuffle = torch.randperm(len(kept), generator=generator)
        self.order, self.weights, self.position = kept[shuffle], weights[shuffle], 0
        self.pruned_share = 1 - len(kept) / n
        self.pruning = len(kept) < n
        return max(1, len(kept) // (context.batch_size * context.group.world_size))

    def select(self) -> Selection:
        context, timer = self.context, self.context.timer
        b, group = context.batch_size, context.group
        with timer.phase("draw_batch"):
            if self.position + b * group.world_size > len(self.order):  # the pass is used up (a loop without epochs)
                self.start_epoch()
            start = self.position + group.rank * b
            indices, weights = self.order[start : start + b], self.weights[start : start + b]
            self.position += b * group.world_size
            x, y = context.examples.gather(indices)
            stride = b * group.world_size  # the epoch's next batches, loaded meanwhile from disk
            upcoming = range(start + stride, len(self.order) - b + 1, stride)
            context.examples.expect([self.order[s : s + b] for s in upcoming[:READ_AHEAD]])
        return Selection(indices, weights, x, y, by_score=self.pruning)

    def observe(self, selection: Selection, result: StepResult) -> None:
        with self.context.timer.phase("scoring"):
            group = self.context.group  # every rank's losses: the same table on all ranks
            self.losses[group.gather(selection.indices)] = group.gather(result.losses.float().cpu())

    def metrics(self) -> dict[str, float]:
        """The share of the data set this epoch pruned."""
        return {"pruned_share": self.pruned_share}

    def state_dict(self) -> dict:
        return {
            "losses": self.losses.clone(),
            "order": self.order.clone(),
            "weights": self.weights.clone(),
            "position": self.position,
            "pruning": self.pruning,
            "pruned_share": self.pruned_share,
        }

    def load_state_dict(self, state: dict) -> None:
        self.losses, self.order, self.weights = (
            state["losses"].clone(),
            state["order"].clone(),
            state["weights"].clone(),
        )
        self.position, self.pruning, self.pruned_share = state["position"], state["pruning"], state["pruned_share"]
