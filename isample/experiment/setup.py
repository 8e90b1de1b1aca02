"""What a run trains with, built once from its RunSpec: device, model (the same initial weights for
every method of a seed), optimizer, the method's sampler and the transforms. The training loop and the
timing stage both build it here, so what is timed is what is trained."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from isample.distributed import SINGLE, Group
from isample.examples import Closing, stop_workers
from isample.experiment.config import ConfigError
from isample.experiment.data import BatchTransform, PreparedData, stratified_subset
from isample.experiment.models import build_model
from isample.experiment.spec import RunSpec
from isample.seeds import derive_seed
from isample.trainer import Trainer


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("params.yaml: train.device = 'cuda': no CUDA device is available; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class EvalSet(Closing):
    """Examples of a split (the test split, its per-epoch subset; the training split for the IL model's
    scores) as batches on the model's device, transformed for the model: sliced from memory, or read
    from disk by DataLoader workers (kept between epochs, until `close()`)."""

    def __init__(
        self,
        data,
        indices: torch.Tensor,
        transform: BatchTransform,
        spec: RunSpec,
        device: torch.device,
        split: str = "test",
    ):
        self.indices, self.transform, self.device, self.batch_size = indices, transform, device, spec.eval_batch_size
        self.data, self.workers, self._loader, self.split = data, spec.workers, None, split

    def __len__(self) -> int:
        return len(self.indices)

    def _batches(self):
        if isinstance(self.data, PreparedData):
            for start in range(0, len(self.indices), self.batch_size):
                chosen = self.indices[start : start + self.batch_size]
                yield getattr(self.data, f"{self.split}_x")[chosen], getattr(self.data, f"{self.split}_y")[chosen]
            return
        if self._loader is None:  # workers start on the first evaluation and stay for the next
            split = Subset(getattr(self.data, f"{self.split}_dataset")(), self.indices.tolist())
            self._loader = DataLoader(
                split,
                batch_size=self.batch_size,
                num_workers=self.workers,
                persistent_workers=self.workers > 0,
                pin_memory=self.device.type == "cuda",
            )
        yield from self._loader

    def __iter__(self):
        for x, y in self._batches():
            yield self.transform(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def close(self) -> None:
        """Stop the DataLoader workers, if any started (idempotent; a later evaluation starts new ones)."""
        stop_workers(self._loader)
        self._loader = None


@dataclass
class TrainingSetup(Closing):
    device: torch.device
    autocast_dtype: torch.dtype | None
    model: torch.nn.Module  # the model itself (evaluated, checkpointed); the sampler trains it, DDP-wrapped under DDP
    optimizer: torch.optim.Optimizer
    sampler: Trainer
    augment: torch.Generator  # the training transform's draws (checkpointed with the sampler's)
    curve: EvalSet  # the test examples evaluated after every epoch
    test: EvalSet  # the whole test set, for the final accuracy
    train_set: EvalSet  # the training examples evaluated after every epoch (eval mode, not augmented)

    def close(self) -> None:
        """Stop every loading thread and DataLoader worker the run started (idempotent)."""
        for holder in (self.sampler, self.curve, self.test, self.train_set):
            holder.close()


def check_model_fits(model: torch.nn.Module, name: str, image_shape: tuple[int, ...]) -> None:
    """ConfigError (one line) when the model cannot classify images of this shape (say a ViT built for
    224 x 224 given 32 x 32 ones): one example through it in eval mode, before any training."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *image_shape))
    except (RuntimeError, ValueError, AssertionError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        size = "x".join(map(str, image_shape))
        raise ConfigError(f"params.yaml: model.name = {name!r} cannot classify {size} images: {reason}") from None
    finally:
        model.train(was_training)


def _model(
    spec: RunSpec, classes: int, image_shape: tuple[int, ...], device: torch.device, group: Group
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model, and what trains it: itself, or its DistributedDataParallel wrapper under DDP."""
    torch.manual_seed(derive_seed(spec.seed, "init"))  # alike for every method of a seed
    model = build_model(spec.model, classes, spec.norm)
    check_model_fits(model, spec.model, image_shape)
    if spec.sync_bn and group.world_size > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=torch.channels_last if spec.channels_last else torch.contiguous_format)
    if group.world_size == 1:
        return model, model
    device_ids = [device.index] if device.type == "cuda" else None
    return model, torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def build_setup(
    spec: RunSpec,
    data,
    group: Group = SINGLE,
    timing: bool = True,
    progress: Callable[[], float] | None = None,
    tables: dict[str, torch.Tensor] | None = None,
    exact_timing: bool = False,
) -> TrainingSetup:
    """data: a PreparedData (in memory) or StreamedData (read from disk by spec.workers DataLoader workers).
    Under DDP (group of N) each rank trains b / N examples per iteration with its own generators.
    progress: the share of the budget spent (the budget clock's), for the methods that read it.
    tables: the per-example tables the method reads, by data-set index (rho_loss: its IL losses).
    exact_timing: on CUDA, synchronise at every phase edge (the timing stage), not in training."""
    device = resolve_device(spec.device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())  # the GPU set for this process (or rank)
    autocast_dtype = torch.bfloat16 if spec.amp else None
    model, trained = _model(spec, len(data.classes), data.image_shape, device, group)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=spec.lr(0.0), momentum=spec.momentum, weight_decay=spec.weight_decay
    )
    augment = torch.Generator().manual_seed(derive_seed(spec.seed, "augment", rank=group.rank))
    if isinstance(data, PreparedData):  # in memory, on the model's device
        inputs, targets = data.train_x.to(device), data.train_y.to(device)
    else:  # read from disk by DataLoader workers
        inputs, targets = data.train_dataset(), None
    sampler = Trainer(
        spec.method,
        trained,
        optimizer,
        inputs,
        targets,
        spec.batch_size // group.world_size,
        options=spec.options,
        workers=spec.workers,
        transform=BatchTransform(data.mean, data.std, spec.augment, spec.channels_last, augment),
        seed=spec.seed,
        timing=timing,
        exact_timing=exact_timing,
        autocast_dtype=autocast_dtype,
        group=group,
        progress=progress,
        tables=tables,
        prices=spec.prices if spec.clock == "priced" else None,
    )
    test_transform = BatchTransform(data.mean, data.std, False, spec.channels_last)
    curve = EvalSet(data, data.curve_test, test_transform, spec, device)
    test = EvalSet(data, torch.arange(data.test_size), test_transform, spec, device)
    # The same class-stratified examples for every method and seed.
    train_set = EvalSet(
        data, stratified_subset(data.train_y, spec.train_set_examples), test_transform, spec, device, split="train"
    )
    return TrainingSetup(device, autocast_dtype, model, optimizer, sampler, augment, curve, test, train_set)
