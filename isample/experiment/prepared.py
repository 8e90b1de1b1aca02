"""The file `prepare` writes under data/prepared/ and the training and timing stages read: CIFAR's
tensors (`data.PreparedData`) or an ImageFolder data set's index (`streamed.StreamedData`)."""

import os
from pathlib import Path

import torch

from isample.experiment.data import DataError, PreparedData
from isample.experiment.streamed import StreamedData
from isample.files import write_atomically


def save_prepared(data: PreparedData | StreamedData, path: str | os.PathLike) -> None:
    write_atomically(path, lambda temporary: torch.save(data.to_dict(), temporary))


def load_prepared(path: str | os.PathLike) -> PreparedData | StreamedData:
    """The PreparedData (in memory) or StreamedData (read from disk) that `prepare` saved at `path`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared data {path} is missing: run the prepare stage first (dvc repro prepare)")
    try:
        fields = torch.load(path, weights_only=True)  # tensors, strings and lists only
        return StreamedData(**fields) if "train_files" in fields else PreparedData(**fields)
    except Exception as error:  # damaged, or foreign: weights_only refuses anything but tensors and plain data
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise DataError(f"prepared data {path} is damaged or foreign ({reason}); delete it and rerun prepare") from None
