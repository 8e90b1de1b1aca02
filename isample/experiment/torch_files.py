"""Torch files written atomically (a kill leaves the previous file or the new one, never half of one)
and checkpoints read back safely (tensors and plain containers only, never arbitrary objects)."""

import os
from pathlib import Path

import torch


def save_atomically(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, then rename: a kill leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


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
