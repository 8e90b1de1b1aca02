"""The file of per-example tables the `tables@<method>` stage writes and the training stage reads: the
tables by data-set index (rho_loss: its IL losses), the content hash of the prepared data they were
computed on, and the seconds they cost."""

import os
from pathlib import Path

import torch

from isample.experiment.data import DataError
from isample.files import write_atomically


def save_tables(path: str | os.PathLike, tables: dict[str, torch.Tensor], content_hash: str, seconds: float) -> None:
    """The tables a method reads, the prepared data's content hash, and the seconds they cost."""

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            torch.save({"tables": tables, "content_hash": content_hash, "seconds": seconds}, file)

    write_atomically(path, write)


def load_tables(path: str | os.PathLike, data, names: tuple[str, ...], stage: str) -> tuple[dict, float]:
    """The tables at `path` and their cost in seconds; DataError (one line) when the file is missing,
    lacks one of `names`, or was computed on other data than `data` (its content hash differs)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro {stage}` first (it trains what the method reads)")
    try:
        saved = torch.load(path, weights_only=True)
        tables, content_hash, seconds = saved["tables"], saved["content_hash"], float(saved["seconds"])
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise DataError(f"{path} is damaged or foreign ({reason}); rerun `dvc repro {stage}`") from None
    if content_hash != data.content_hash:
        raise DataError(
            f"{path} was computed on other data (content hash {content_hash[:12]}, the prepared data's "
            f"{data.content_hash[:12]}): rerun `dvc repro {stage}`"
        )
    missing = [name for name in names if name not in tables]
    if missing:
        raise DataError(f"{path} holds no table {', '.join(missing)}: rerun `dvc repro {stage}`")
    return {name: tables[name] for name in names}, seconds
