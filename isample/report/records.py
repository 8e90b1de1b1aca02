"""Record files, the contract between experiment and report: .xlsx workbooks written atomically and read
back checked, and the columns derived from them. Needs pandas, not torch."""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


class RecordError(Exception):
    """A record file that is missing pieces this project writes."""


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(temporary) for a temporary file beside `path`, then rename it over `path`: a kill
    leaves no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.stem}.")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_workbook(path: str | os.PathLike, sheets: dict[str, pd.DataFrame]) -> None:
    """Every sheet into one .xlsx, written atomically."""

    def write(temporary: str) -> None:
        with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)

    write_atomically(path, write)


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


# Columns derived from the timing record (`time_<phase>` seconds per iteration).
def presample_seconds(frame: pd.DataFrame) -> pd.Series:
    """The notebook's "forward of B", which includes the gradient upper bound of each chunk."""
    return frame["time_presample_forward"] + frame["time_scoring"]


def train_step_seconds(frame: pd.DataFrame) -> pd.Series:
    """Forward, backward and optimizer step of the b trained examples."""
    return frame["time_train_forward"] + frame["time_backward"] + frame["time_optimizer_step"]


# -- the records the experiment writes and the report reads ------------------------------------------

RUN_COLUMNS = {
    "epochs": ["epoch", "iterations", "train_seconds", "lr", "train_loss", "train_accuracy", "train_loss_weighted",
               "train_accuracy_weighted", "test_loss", "test_accuracy", "is_iterations", "is_share", "tau_mean",
               "tau_th_mean"],
    "params": ["parameter", "value"],
}  # fmt: skip
TIMING_COLUMNS = {
    "iterations": ["run", "presample", "total_seconds", "time_presample_forward", "time_train_forward"],
    "per_ratio": ["run", "presample", "measured_seconds", "a", "a_per_p", "k", "t", "predicted_seconds",
                  "prediction_error", "speedup_u", "non_model_share", "non_model_share_iqr", "tau_th"],
    "fit": ["metric", "value"],
}  # fmt: skip
COMPLETED = "completed"


@dataclass
class Run:
    """One training run's record: its selection method, seed, epochs and parameters."""

    method: str  # a name of isample.methods.METHODS: "upper_bound", "uniform", ...
    seed: int
    path: Path
    epochs: pd.DataFrame
    params: dict[str, str]

    @property
    def status(self) -> str:
        """"completed", or "diverged at epoch E, iteration I, lr L"."""
        return self.params.get("status", COMPLETED)

    @property
    def diverged(self) -> bool:
        return self.status != COMPLETED

    @property
    def budget_seconds(self) -> float:
        """The run's training-time budget (nan in a record that does not say)."""
        return float(self.params.get("budget_seconds", "nan"))


def read_run(path: str | Path) -> Run:
    sheets = read_workbook(path, RUN_COLUMNS)
    params = dict(zip(sheets["params"]["parameter"].astype(str), sheets["params"]["value"].astype(str)))
    epochs = sheets["epochs"]
    if epochs.empty:
        raise RecordError(f"{path}: sheet 'epochs' has no rows")
    if "method" not in params:
        raise RecordError(f"{path}: sheet 'params' does not name the selection method (parameter 'method')")
    return Run(params["method"], int(float(params.get("seed", 0))), Path(path), epochs, params)


def read_timing(path: str | Path) -> dict[str, pd.DataFrame]:
    return read_workbook(path, TIMING_COLUMNS)
