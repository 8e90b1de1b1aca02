"""The irreducible-loss (IL) models of rho_loss, as the authors' twin variant trains them
(OATML/RHO-Loss, configs/double_irreducible_training.yaml): the training set split into two
class-stratified halves, one model trained on each (AdamW, constant lr), each giving the examples of
the other half their loss, in eval mode without augmentation, at its epoch of lowest mean loss on
that half. No example is given up: every method of the comparison still trains on all of them."""

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import Subset

from isample.experiment.config import Params
from isample.experiment.data import BatchTransform, PreparedData
from isample.experiment.models import build_model
from isample.experiment.setup import EvalSet, check_model_fits, resolve_device
from isample.experiment.train import example_losses
from isample.seeds import derive_seed
from isample.trainer import Trainer

SEED = 0  # one IL table per data set, whatever the seeds of the runs that read it


@dataclass(frozen=True)
class IrreducibleSpec:
    """How the IL models train: params.yaml's `irreducible` section and the shared values it reads."""

    model: str
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    augment: bool
    device: str
    amp: bool
    eval_batch_size: int  # examples per scoring forward (EvalSet reads it)
    workers: int  # DataLoader workers for a data set read from disk (EvalSet reads it)

    @classmethod
    def from_params(cls, params: Params) -> "IrreducibleSpec":
        il = params.irreducible
        return cls(
            model=il.model,
            epochs=il.epochs,
            lr=il.lr,
            weight_decay=il.weight_decay,
            batch_size=params.batch_size,
            augment=params.data.augment,
            device=params.train.device,
            amp=params.train.amp,
            eval_batch_size=params.train.eval_batch_size,
            workers=params.data.workers,
        )

    def key(self, data_hash: str) -> str:
        """What a finished model's checkpoint must match to be reused (the shaping values and the data)."""
        shaping = {name: value for name, value in asdict(self).items() if name not in ("eval_batch_size", "workers")}
        text = json.dumps([shaping, data_hash], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class HalfModel:
    """One IL model: trained on one half, it scored the other (`scored`, data-set indices)."""

    scored: torch.Tensor
    losses: torch.Tensor  # the scored examples' IL losses, at its best epoch
    holdout_loss: float  # their mean
    holdout_accuracy: float  # its accuracy on them
    best_epoch: int
    seconds: float  # its training and scoring, every epoch


class IrreducibleDiverged(Exception):
    """An IL model whose loss on its held-out half was never finite."""


def halves(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two halves of the training set (data-set indices, sorted), each class split in two (the first
    half gets the smaller part of an odd count), so both models see every class in proportion."""
    generator = torch.Generator().manual_seed(derive_seed(SEED, "irreducible"))
    first = torch.zeros(len(labels), dtype=torch.bool)
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        first[members[torch.randperm(len(members), generator=generator)[: len(members) // 2]]] = True
    return first.nonzero().flatten(), (~first).nonzero().flatten()


def train_half(
    spec: IrreducibleSpec,
    data,
    trained: torch.Tensor,
    scored: torch.Tensor,
    half: int,
    progress: Callable[[str], None] = print,
) -> HalfModel:
    """Train one IL model on the examples `trained` for spec.epochs epochs; after each, score `scored`
    and keep the epoch whose mean loss on them is lowest (the authors keep the best validation loss)."""
    start = time.perf_counter()
    device = resolve_device(spec.device)
    autocast_dtype = torch.bfloat16 if spec.amp else None
    torch.manual_seed(derive_seed(SEED, "irreducible", pass_index=half + 1))
    model = build_model(spec.model, len(data.classes))
    check_model_fits(model, spec.model, data.image_shape)
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    if isinstance(data, PreparedData):
        inputs, targets = data.train_x[trained].to(device), data.train_y[trained].to(device)
    else:
        inputs, targets = Subset(data.train_dataset(), trained.tolist()), None
    augment = torch.Generator().manual_seed(derive_seed(SEED, "irreducible", rank=1, pass_index=half + 1))
    trainer = Trainer(
        "uniform",
        model,
        optimizer,
        inputs,
        targets,
        min(spec.batch_size, len(trained)),
        transform=BatchTransform(data.mean, data.std, spec.augment, False, augment),
        seed=derive_seed(SEED, "irreducible", rank=2, pass_index=half + 1),
        timing=False,
        workers=spec.workers,
        autocast_dtype=autocast_dtype,
    )
    holdout = EvalSet(data, scored, BatchTransform(data.mean, data.std), spec, device, split="train")
    best = None
    with trainer, holdout:  # their loading threads and workers stop with the model trained
        for epoch in range(1, spec.epochs + 1):
            for _ in range(trainer.start_epoch()):
                trainer.step()
            losses, correct = example_losses(model, holdout, device, autocast_dtype)
            mean = float(losses.mean())
            if math.isfinite(mean) and (best is None or mean < best.holdout_loss):
                best = HalfModel(scored, losses.cpu(), mean, float(correct.float().mean()), epoch, 0.0)
            progress(
                f"IL model {half + 1}/2, epoch {epoch}/{spec.epochs}: loss {mean:.4f} and accuracy "
                f"{float(correct.float().mean()):.4f} on its held-out half"
            )
    if best is None:
        raise IrreducibleDiverged(
            f"IL model {half + 1} diverged: its held-out loss was never finite; lower irreducible.lr ({spec.lr:g})"
        )
    best.seconds = time.perf_counter() - start
    return best


def irreducible_losses(models: list[HalfModel], size: int) -> torch.Tensor:
    """The IL loss of every training example, by data-set index, from the models that scored them."""
    table = torch.full((size,), math.nan)
    for half in models:
        table[half.scored] = half.losses
    if not bool(torch.isfinite(table).all()):
        raise ValueError("the IL models' halves do not cover the training set")
    return table
