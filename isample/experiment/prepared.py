"""The file `prepare` writes under data/prepared/ and the training and timing stages read: CIFAR's
tensors (`data.PreparedData`) or an ImageFolder data set's index (`streamed.StreamedData`)."""

import os
from pathlib import Path

import torch

from isample.experiment.data import DataError, PreparedData
from isample.experiment.streamed import StreamedData
from isample.files import write_atomically


def save_prepared(data: PreparedData | StreamedData, path: str | os.PathLike) -> None:
    """The same bytes from the same data, so DVC's hash of a fresh clone's prepare matches dvc.lock:
    saved through a file object, torch names the archive's records `archive/...`; given a path it
    would name them after the temporary file, a new random name each time."""

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            torch.save(data.to_dict(), file)

    write_atomically(path, write)


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
