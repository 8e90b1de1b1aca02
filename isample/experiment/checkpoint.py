"""Checkpoints of a training run: written atomically, read back safely (tensors and plain containers
only, never arbitrary objects), and the state a resumed run continues from.

Under DDP one file holds the whole run: the model, optimizer and rows (alike on every rank) and every
rank's own draws. The first process of each node writes it, so each node keeps a full copy whether or
not the nodes share a file system; on resume the most advanced copy any node holds is sent to all."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from isample.distributed import SINGLE, Group
from isample.files import write_atomically


def save_atomically(obj, path: str | os.PathLike) -> None:
    """torch.save through `isample.files.write_atomically`: a kill leaves no half file."""
    write_atomically(path, lambda temporary: torch.save(obj, temporary))


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict | None:
    """A checkpoint's contents, or None when there is none; a damaged or foreign file is reported
    in one line and ignored, so training starts fresh instead of crashing or running its code."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location=device)
    except Exception as error:  # pickle, zip and weights-only refusals alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"ignoring checkpoint {path}: not a readable checkpoint of this project ({reason[:160]}); starting fresh")
        return None
    if not isinstance(state, dict) or "key" not in state:
        print(f"ignoring checkpoint {path}: not a checkpoint of this project; starting fresh")
        return None
    return state


@dataclass
class Progress:
    """Where a run stands: its epoch rows so far, its training seconds (on the clock the budget counts,
    and on both clocks), and how it ended (if it did)."""

    rows: list[dict] = field(default_factory=list)
    elapsed: float = 0.0
    wall: float = 0.0
    priced: float = 0.0
    status: str | None = None  # None while it may go on; "completed" or "diverged at ..." once ended
    # The epoch a stop request interrupted: its totals so far, iterations done and length (else None).
    epoch_in_progress: dict | None = None

    @property
    def total_iterations(self) -> int:
        return int(self.rows[-1]["total_iterations"]) if self.rows else 0


class Checkpoints:
    """Saves and restores one run's state at `path` (None: no checkpoints). `key` names the run; a
    file with another key is some other run's and is not resumed."""

    def __init__(self, path: str | os.PathLike | None, key: str, group: Group = SINGLE):
        self.path = Path(path) if path else None
        self.key = key
        self.group = group

    def save(self, setup, progress: Progress) -> None:
        """Gathers every rank's draws (a collective: every rank calls it); each node's first process writes."""
        if self.path is None:
            return
        group = self.group
        ranks = group.gather_objects(
            {"sampler": setup.sampler.state_dict(), "augment_generator": setup.augment.get_state()}
        )
        if not group.is_local_main:
            return
        state = {
            "key": self.key,
            **ranks[group.rank],
            "model": setup.model.state_dict(),
            "optimizer": setup.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "rows": progress.rows,
            "elapsed": progress.elapsed,
            "wall": progress.wall,
            "priced": progress.priced,
            "status": progress.status or "",
            "epoch_in_progress": progress.epoch_in_progress or {},
        }
        if group.world_size > 1:
            state["ranks"] = ranks
        save_atomically(state, self.path)

    def _most_advanced(self) -> dict | None:
        """The matching checkpoint with the most training done among the copies the nodes hold, on every rank."""
        group = self.group
        state = load_checkpoint(self.path, "cpu") if group.is_local_main else None
        if state is not None and state.get("key") != self.key:
            state = None
        if group.world_size == 1:
            return state
        elapsed = group.gather_objects(float(state["elapsed"]) if state else -1.0)
        if max(elapsed) < 0:
            return None
        return group.object_from(state, source=elapsed.index(max(elapsed)))

    def resume(self, setup) -> Progress:
        """The progress of a matching checkpoint, its state loaded into `setup`; else a fresh start.
        Every rank loads the same model, optimizer and rows, and its own draws."""
        state = self._most_advanced() if self.path else None
        if state is None:
            return Progress()
        setup.model.load_state_dict(state["model"])
        setup.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        own = state["ranks"][self.group.rank] if "ranks" in state else state
        setup.sampler.load_state_dict(own["sampler"])
        setup.augment.set_state(own["augment_generator"])
        in_progress = state.get("epoch_in_progress") or None
        clocks = float(state.get("wall", state["elapsed"])), float(state.get("priced", 0.0))
        return Progress(list(state["rows"]), float(state["elapsed"]), *clocks, state.get("status") or None, in_progress)
