"""What every stage shares: reading params.yaml once, validated, and one-line errors."""

import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import yaml

from isample.experiment.config import ConfigError, Params, validate
from isample.experiment.data import DataError
from isample.report.records import RecordError

PARAMS_FILE = Path("params.yaml")
PREPARED_DIR = Path("data/prepared")
RESULTS_DIR = Path("results")
CHECKPOINT_DIR = Path("checkpoints")
REPORTS_DIR = Path("reports")
TABLES_DIR = RESULTS_DIR / "tables"  # tables@<method>'s outputs: results/tables/<method>/
TABLES_FILE = "tables.pt"


class StageError(Exception):
    """A stage that cannot finish, said in one line (e.g. a training process died)."""


class StageStopped(Exception):
    """A stage that stopped on request (SIGTERM, SIGUSR1) after saving what a rerun resumes from."""


EXIT_STOPPED = 143  # 128 + SIGTERM, as a process ended by the signal reports itself


EXPECTED_ERRORS = (ConfigError, DataError, RecordError, StageError)
BAD_PARAMS_HINT = (
    "note: a failed `dvc exp run -S key=value` leaves that value in params.yaml, so the next run fails "
    "on it too; restore the file with `git checkout params.yaml`"
)


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: run from the repository root") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return validate(raw)


def prepared_path(params: Params) -> Path:
    return PREPARED_DIR / f"{params.data.name}.pt"


def tables_path(method: str) -> Path:
    """The per-example tables `method` reads, as its tables@<method> stage wrote them."""
    return TABLES_DIR / method / TABLES_FILE


def replace_directory(staging: Path, target: Path) -> None:
    """Swap a fully written staging folder into place, so outputs are never half-written."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (a scheduler's preemption, `kill`) and SIGUSR1 (SLURM's warning before a job's end)
    set `stop` instead of ending the process: a training stage then saves a checkpoint and stops."""
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda *_: stop.set())


def run_stage(main: Callable[[Params], None]) -> None:
    """Validate params.yaml, run the stage; expected failures end with one line and exit 2."""
    signal.signal(signal.SIGTERM, _terminate)  # `kill` ends the stage like Ctrl-C, unless it stops on signals
    try:
        main(load_params())
    except ConfigError as error:  # from params.yaml, whether found while parsing or later (train.device)
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        print(BAD_PARAMS_HINT, file=sys.stderr)
        sys.exit(2)
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except StageStopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        sys.exit(EXIT_STOPPED)
    except KeyboardInterrupt:
        print("interrupted: rerun the stage to resume from its last checkpoint", file=sys.stderr)
        sys.exit(130)
