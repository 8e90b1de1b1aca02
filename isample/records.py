"""Record files: .xlsx workbooks and torch files written atomically; workbooks read back checked."""

import os
import tempfile
from pathlib import Path

import pandas as pd
import torch


class RecordError(Exception):
    """A record file that is missing pieces this project writes."""


def write_workbook(path: str | os.PathLike, sheets: dict[str, pd.DataFrame]) -> None:
    """Write every sheet to a temporary file beside `path`, then rename: a kill leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".xlsx", dir=path.parent, prefix=f".{path.stem}.")
    os.close(handle)
    try:
        with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_atomically(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, then rename: a kill leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def read_workbook(path: str | os.PathLike, required: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """All sheets of a workbook; RecordError names the file and what is missing from it."""
    path = Path(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    except Exception as error:
        raise RecordError(f"{path}: not a readable .xlsx record ({error})") from error
    for sheet, columns in required.items():
        if sheet not in sheets:
            raise RecordError(f"{path}: sheet {sheet!r} is missing (has {', '.join(sheets)})")
        missing = [c for c in columns if c not in sheets[sheet].columns]
        if missing:
            raise RecordError(f"{path}: sheet {sheet!r} lacks columns {', '.join(missing)}")
    return sheets


def params_frame(flat: dict) -> pd.DataFrame:
    return pd.DataFrame({"parameter": list(flat), "value": [str(v) for v in flat.values()]})


def flatten(nested: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
