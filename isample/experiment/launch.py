"""One training run over N processes: checks before any process starts, the torchrun command that starts
them, and each process joining its group (NCCL with a GPU each, or gloo on CPU with the threads split)."""

import datetime
import os
import subprocess
import sys

import torch
import torch.distributed as dist

from isample.distributed import Group, current_group
from isample.experiment.config import ConfigError, Params
from isample.experiment.setup import resolve_device

# How long a collective may wait (rank 0 evaluating while the others wait for its clock counts).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def check_processes(params: Params) -> torch.device:
    """The device the run trains on; ConfigError (one line naming the key) when N processes cannot run."""
    device = resolve_device(params.train.device)
    n = params.train.processes
    if device.type == "cuda" and n > torch.cuda.device_count():
        raise ConfigError(
            f"params.yaml: train.processes = {n}: only {torch.cuda.device_count()} GPU(s) are present "
            "(one process per GPU)"
        )
    if params.train.sync_bn and n > 1 and device.type != "cuda":
        raise ConfigError("params.yaml: train.sync_bn = true: needs CUDA (torch's SyncBatchNorm runs on GPUs only)")
    return device


def torchrun_command(module: str, arguments: list[str], processes: int) -> list[str]:
    """`torchrun --standalone --nproc_per_node N -m module ...` with this interpreter's torch."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        module,
        *arguments,
    ]


def launch(module: str, arguments: list[str], processes: int, device: torch.device) -> int:
    """Run `module` in N processes and wait; the exit code is torchrun's (non-zero when any process
    failed: torchrun then stops the others and reports which rank failed and how)."""
    env = dict(os.environ)
    if device.type == "cpu":  # the cores split between the processes, not each of them spinning on all
        env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // processes))
    return subprocess.run(torchrun_command(module, arguments, processes), env=env).returncode


def join(device: torch.device) -> Group:
    """Join the group torchrun started this process in (GPU runs: bind this rank's GPU first)."""
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    else:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return current_group()
