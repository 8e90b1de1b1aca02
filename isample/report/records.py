"""The record contract between experiment and report, in one place: the columns of every record, its
writer and its reader. .xlsx workbooks, written atomically and read back checked. Needs pandas, not torch.

A run's record (results/<method>/<dataset>.<tag>.<budget>.<seed>.xlsx) has two sheets: `epochs`, one
row per epoch with the EPOCH_COLUMNS every method has and then the method's own metrics (its
`SelectionMethod.metrics`, averaged over the epoch: IS's tau, tau_threshold, a, k; InfoBatch's
pruned_share; ...), and `params`, what shaped the run and where it ran. The timing record
(results/timing*.xlsx) has the sheets of TIMING_COLUMNS.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from isample.files import write_atomically
from isample.names import IMPORTANCE, PHASES


class RecordError(Exception):
    """A record file that is missing pieces this project writes."""


COMPLETED = "completed"  # a run's status when it trained to the end of its budget
EPOCH_COLUMNS = [
    "epoch",
    "iterations",
    "total_iterations",
    "train_seconds",  # on the clock the budget counts (`clock` in params): wall or priced
    "wall_seconds",
    "priced_seconds",
    "lr",
    "train_loss",
    "train_accuracy",
    "train_loss_weighted",
    "train_accuracy_weighted",
    "test_loss",
    "test_accuracy",
    "train_set_loss",  # the training set (or its class-stratified subset) in eval mode, not augmented
    "train_set_accuracy",
    "scored_share",  # share of the epoch's iterations whose examples were chosen by score
    "examples_scored",  # examples through a forward without gradients, to choose them
    *[f"time_{phase}" for phase in PHASES],
    "eval_seconds",
    "train_set_eval_seconds",  # of eval_seconds, the training set's
]
TIMING_COLUMNS = {
    "iterations": ["run", "presample", "total_seconds", "time_presample_forward", "time_train_forward"],
    "per_ratio": [
        "run",
        "presample",
        "measured_seconds",
        "a",
        "k",
        "t",
        "predicted_seconds",
        "prediction_error",
        "non_model_share",
        "non_model_share_iqr",
    ],
    "fit": ["metric", "value"],
    "prices": ["price", "seconds"],
}
PEER_TIMING_COLUMNS = {sheet: TIMING_COLUMNS[sheet] for sheet in ("iterations", "per_ratio")}


def timing_path(results: Path, method: str | None = None) -> Path:
    """results/timing.xlsx (uniform and upper_bound), or results/timing_<method>.xlsx (uniform and one more)."""
    return results / ("timing.xlsx" if method is None else f"timing_{method}.xlsx")


CHARGED = "_charged"  # the suffix of a charged run's arm (rho_loss_charged: IL models' time in its budget)
FORCED = "_forced"  # the suffix of IS forced on at every iteration beside the rule's run (compare.forced_is)
FORCED_ARM = f"{IMPORTANCE}{FORCED}"


@dataclass
class Run:
    """One training run's record: its selection method, seed, epochs and parameters."""

    method: str  # a name of isample.methods.METHODS: "upper_bound", "uniform", ...
    seed: int
    epochs: pd.DataFrame  # EPOCH_COLUMNS, then the method's own metrics
    params: dict[str, str]
    path: Path | None = None

    @property
    def status(self) -> str:
        """ "completed", or "diverged at epoch E, iteration I, lr L"."""
        return self.params.get("status", COMPLETED)

    @property
    def diverged(self) -> bool:
        return self.status != COMPLETED

    @property
    def arm(self) -> str:
        """The method, or `<method>_charged` for a run with time charged before training, or
        `upper_bound_forced` for IS forced on: each its own row."""
        if self.charged_seconds:
            return f"{self.method}{CHARGED}"
        return f"{self.method}{FORCED}" if self.forced else self.method

    @property
    def forced(self) -> bool:
        """IS forced on at every iteration (compare.forced_is), not switched by the rule."""
        return self.params.get("forced") == "True"

    @property
    def charged_seconds(self) -> float:
        """Of its budget, the seconds spent before training (rho_loss's IL models when charged; else 0)."""
        return float(self.params.get("charged_seconds", "0"))

    @property
    def tables_seconds(self) -> float:
        """What the tables it read cost (rho_loss's IL models), charged or not; nan for a method reading none."""
        return float(self.params.get("tables_seconds", "nan"))

    @property
    def budget_seconds(self) -> float:
        """The run's budget, time charged before training included (nan in a record that does not say)."""
        return float(self.params.get("budget_seconds", "nan")) + self.charged_seconds

    @property
    def scored_share(self) -> float:
        """The share of all its iterations whose examples were chosen by score."""
        iterations = self.epochs["iterations"].sum()
        return (
            float((self.epochs["scored_share"] * self.epochs["iterations"]).sum() / iterations) if iterations else 0.0
        )

    @property
    def final(self) -> pd.Series:
        return self.epochs.iloc[-1]

    def _final_test(self, metric: str) -> float:
        """`metric` (accuracy, loss) at the end on the whole test set; a record without it: the last
        epoch's, on the per-epoch test subset."""
        value = float(self.params.get(f"final_test_{metric}", "nan"))
        return value if not math.isnan(value) else float(self.final[f"test_{metric}"])

    @property
    def final_accuracy(self) -> float:
        return self._final_test("accuracy")

    @property
    def final_loss(self) -> float:
        return self._final_test("loss")


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


def epochs_frame(rows: list[dict]) -> pd.DataFrame:
    """The epochs sheet from the loop's rows: EPOCH_COLUMNS first, then the method's metrics in their order."""
    extra = [key for key in (rows[0] if rows else {}) if key not in EPOCH_COLUMNS]
    return pd.DataFrame(rows, columns=[*EPOCH_COLUMNS, *extra])


def write_run(path: str | os.PathLike, run: Run) -> None:
    write_workbook(path, {"epochs": run.epochs, "params": params_frame(run.params)})


def read_run(path: str | Path) -> Run:
    sheets = read_workbook(path, {"epochs": EPOCH_COLUMNS, "params": ["parameter", "value"]})
    params = dict(zip(sheets["params"]["parameter"].astype(str), sheets["params"]["value"].astype(str), strict=True))
    epochs = sheets["epochs"]
    if epochs.empty:
        raise RecordError(f"{path}: sheet 'epochs' has no rows")
    if "method" not in params:
        raise RecordError(f"{path}: sheet 'params' does not name the selection method (parameter 'method')")
    return Run(params["method"], int(float(params.get("seed", 0))), epochs, params, Path(path))


def read_timing(path: str | Path, peer: bool = False) -> dict[str, pd.DataFrame]:
    return read_workbook(path, PEER_TIMING_COLUMNS if peer else TIMING_COLUMNS)


def fit_values(timing: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The timing record's `fit` sheet as metric -> value."""
    fit = timing["fit"]
    return {str(metric): float(value) for metric, value in zip(fit["metric"], fit["value"], strict=True)}


# Columns derived from the timing record (`time_<phase>` seconds per iteration).
def presample_seconds(frame: pd.DataFrame) -> pd.Series:
    """The notebook's "forward of B", which includes the gradient upper bound of each chunk, and the
    loading of the B examples when they are read from disk (0 for data in memory)."""
    return frame["time_presample_forward"] + frame["time_scoring"] + frame.get("time_data_loading", 0.0)


def train_step_seconds(frame: pd.DataFrame) -> pd.Series:
    """Forward, backward and optimizer step of the b trained examples."""
    return frame["time_train_forward"] + frame["time_backward"] + frame["time_optimizer_step"]


def predicted_speedup(epochs: pd.DataFrame) -> pd.Series:
    """Per epoch, the speed-up IS would bring by its rule net of the presample's price, the record's own
    column (the epoch's mean per iteration: the draw's predicted speed-up / (1 + a); before it existed,
    tau / (1 + a)), else from the epoch means of tau and a, else tau over its threshold (records written
    before either was kept)."""
    if "predicted_speedup" in epochs:
        return epochs["predicted_speedup"]
    if "a" in epochs:
        return epochs["tau"] / (1 + epochs["a"])
    return epochs["tau"] / epochs["tau_threshold"]
