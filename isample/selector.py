"""Every selection method in the user's own training loop: their model, optimizer, AMP, clipping,
scheduler and DataLoader stay theirs.

    selector = BatchSelector("reuse", len(dataset), batch_size=128)
    loader = DataLoader(dataset, batch_sampler=selector, num_workers=4)
    for x, y in loader:
        logits = model(x)
        losses = F.cross_entropy(logits, y, reduction="none")
        (selector.weights() * losses).mean().backward()         # the batch's loss weights
        optimizer.step(); optimizer.zero_grad()
        selector.observe(losses.detach(), logits.detach(), y)   # what the forward computed, for free

`BatchSelector` is the DataLoader's batch sampler: each batch it hands out is the method's selection,
the indices to load; `weights()` gives the loss weights of the batch the loader delivered next (the
loader keeps the order in which it asked for batches), all 1 for a method that draws uniformly, so
the weighted mean is unbiased for the full-data loss wherever the method is; `observe` takes back the
training forward's per-example losses and logits. A DataLoader with workers asks for batches a few
ahead, so a method decides with what it had observed a few batches before: draws and their weights
stay consistent (each batch's weights are those of the distribution it was drawn from), so unbiased
methods stay unbiased.

A method that runs forwards of its own over candidate examples (`runs_own_forwards`: upper_bound,
selective_backprop) takes `model` and `dataset` (indexable, `dataset[i]` = (input, target) as the
model takes them) and fetches its candidates in this process. They train on what the DataLoader
loads for the chosen indices (a fresh augmentation), where the pipeline trains on the very views
they scored. Their cost-aware
threshold needs the step's times, which a user's loop keeps to itself, so `tau_threshold="auto"`
keeps the 2018 default (B + 3b) / 3b; pass a number to set it.

Iterating the selector starts an epoch (`start_epoch`: InfoBatch prunes there) of `len(selector)`
batches. Under DDP give each rank `group` (torch.distributed's by default) and the same `seed`: each
rank then selects its share of every global batch of b x ranks, as DistributedSampler splits one.
"""

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import torch

from isample.distributed import Group
from isample.methods import method_class
from isample.methods.base import RunsMethod, Selection, SelectionMethod, build_context
from isample.step import StepResult


class BatchSelector(RunsMethod):
    """A selection method of `isample.methods.METHODS` as a DataLoader batch sampler (see the module).

    method: a name or a SelectionMethod subclass; options: its Options (defaults when None);
    size: the dataset's length; batch_size: b of this rank; model, dataset: for upper_bound and
    selective_backprop; seed: the draws (alike on every rank for the epoch order); progress: the
    share of training done, in [0, 1], for methods that change late (InfoBatch's annealing); group:
    the DDP ranks (torch.distributed's when initialised); autocast_dtype: for the methods' own forwards;
    tables: per-example values by data-set index a method reads (rho_loss: {"irreducible_loss": ...}).
    Given a dataset, it loads candidates in a thread of its own: `close()` (or `with`) stops it. Its
    `state_dict()` is for a checkpoint taken between epochs (batches handed out but not delivered are not kept).
    """

    def __init__(
        self,
        method: str | type[SelectionMethod],
        size: int,
        batch_size: int,
        *,
        options: Any = None,
        model: torch.nn.Module | None = None,
        dataset=None,
        seed: int = 0,
        progress: Callable[[], float] | None = None,
        group: Group | None = None,
        autocast_dtype: torch.dtype | None = None,
        tables: dict[str, torch.Tensor] | None = None,
    ):
        method_type = method_class(method) if isinstance(method, str) else method
        if method_type.runs_own_forwards and (model is None or dataset is None):
            raise ValueError(f"{method_type.name} runs forwards of its own: give it model= and dataset=")
        if not 1 <= batch_size <= size:
            raise ValueError(f"batch_size must be between 1 and the dataset's {size} examples, got {batch_size}")
        # A presample or candidates are fetched in this process, by the pipeline's own loader.
        self.context = build_context(
            model,
            batch_size,
            seed,
            inputs=dataset,
            size=size,
            group=group,
            autocast_dtype=autocast_dtype,
            progress=progress,
            tables=tables,
        )
        self.method = method_type(self.context, options)
        self._pending: deque[Selection] = deque()  # handed out, not yet delivered by the loader
        self._current: Selection | None = None
        self._epoch_length = self.method.start_epoch()
        self._started = True  # the first epoch was started above

    def __len__(self) -> int:
        """Batches in the current epoch."""
        return self._epoch_length

    def __iter__(self) -> Iterator[list[int]]:
        if not self._started:
            self._epoch_length = self.method.start_epoch()
        self._started = False
        for _ in range(self._epoch_length):
            selection = self.method.select()
            self._pending.append(selection)
            yield selection.indices.tolist()

    def weights(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """The loss weights of the next batch the loader delivered (in the order they were handed out),
        on the CPU; with `indices` (from a dataset that returns them), checks that it is that batch."""
        if not self._pending:
            raise RuntimeError("no batch is waiting for its weights: iterate a DataLoader over this selector first")
        self._current = selection = self._pending.popleft()
        if indices is not None and not torch.equal(torch.as_tensor(indices).cpu(), selection.indices.cpu()):
            raise RuntimeError("the loader delivered batches in another order than they were handed out")
        return selection.weights.cpu() if selection.weights is not None else torch.ones(len(selection.indices))

    def observe(self, losses: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """What the training forward of the batch whose weights were taken last computed (detached)."""
        if self._current is None:
            raise RuntimeError("observe follows weights(): take the batch's weights first")
        selection, self._current = self._current, None
        selection.targets = targets
        mean = losses.float().mean()
        result = StepResult(logits, losses.float(), mean, mean, torch.zeros(()), torch.zeros(()))
        self.method.observe(selection, result)

    def metrics(self) -> dict[str, float]:
        """The method's own numbers (tau, a, pruned share, ...), as SelectionMethod.metrics."""
        return self.method.metrics()
