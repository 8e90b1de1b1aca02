"""One GPU per training stage on a machine shared by queued experiments.

`dvc queue start -j 4` runs four experiments at once, each a process that would otherwise take
cuda:0. A stage with `train.device: auto` instead takes GPUs no other stage of this machine holds:
one lock file per GPU under a folder every job sees, held with `fcntl.flock` for the stage's life.
The kernel drops a lock when its holder ends however it ends (crash, SIGKILL), so a GPU is never
left taken by a dead job. With none free the stage waits, saying so, up to `train.gpu_wait`.
"""

import fcntl
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOCK_DIR_VARIABLE = "ISAMPLE_GPU_LOCKS"  # where the locks live; every job of the machine must see it
GPUS_VARIABLE = "ISAMPLE_GPUS"  # the GPUs a stage holds, as CUDA names them; its runs' records say which


def lock_dir() -> Path:
    """The folder of the machine's GPU locks: $ISAMPLE_GPU_LOCKS, else isample-gpu-locks in the temp folder."""
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or Path(tempfile.gettempdir()) / "isample-gpu-locks")


class NoFreeGpu(Exception):
    """Every GPU stayed held by other stages for the whole wait."""


@dataclass
class GpuLease:
    """GPUs held by this process until `release` (or its end). `gpus`: physical indices, in order."""

    gpus: list[int]
    _files: list = field(default_factory=list, repr=False)

    def release(self) -> None:
        for handle in self._files:
            handle.close()  # closing the file drops its lock
        self._files.clear()


def _try_lock(path: Path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")  # who holds it, for the waiting message
    handle.flush()
    return handle


def _holders(folder: Path, gpus: list[int]) -> str:
    pids = []
    for gpu in gpus:
        try:
            pids.append((folder / f"gpu{gpu}.lock").read_text().strip() or "?")
        except OSError:
            pids.append("?")
    return ", ".join(f"GPU {gpu} by process {pid}" for gpu, pid in zip(gpus, pids))


def acquire_gpus(
    count: int,
    visible: list[int],
    wait_seconds: float,
    folder: Path | None = None,
    say: Callable[[str], None] = print,
    poll_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> GpuLease:
    """`count` of the `visible` GPUs that no other process holds, lowest first; waits for them up to
    `wait_seconds` (saying so once a minute), then raises NoFreeGpu naming the holders."""
    if count > len(visible):
        raise NoFreeGpu(f"{count} GPUs wanted, {len(visible)} visible")
    folder = folder or lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    started, said = clock(), None
    while True:
        lease = GpuLease([])
        for gpu in visible:
            handle = _try_lock(folder / f"gpu{gpu}.lock")
            if handle is not None:
                lease.gpus.append(gpu)
                lease._files.append(handle)
            if len(lease.gpus) == count:
                return lease
        lease.release()  # fewer than wanted: hold none while waiting, so two waiters cannot deadlock
        waited = clock() - started
        if waited >= wait_seconds:
            raise NoFreeGpu(
                f"no {count} free GPU(s) after {waited:.0f} s (train.gpu_wait): held: {_holders(folder, visible)}"
            )
        if said is None or clock() - said >= 60:
            held = _holders(folder, visible)
            say(f"waiting for {count} free GPU(s) of {len(visible)} (held: {held}), up to {wait_seconds:.0f} s")
            said = clock()
        time.sleep(poll_seconds)
