"""One training run over N processes: checks before any process starts, the torchrun command that starts
them, and each process joining its group (NCCL with a GPU each, or gloo on CPU with the threads split)."""

import datetime
import os
import subprocess
import sys

import torch
import torch.distributed as dist

from isample.distributed import Group, current_group
from isample.experiment.config import ConfigError, Params, TrainConfig, sync_bn_problem
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
    if problem := sync_bn_problem(params.train, device.type):
        raise ConfigError(f"params.yaml: {problem}")
    return device


def torchrun_command(
    module: str, arguments: list[str], processes: int, nodes: int = 1, rdzv_endpoint: str = "", rdzv_id: str = ""
) -> list[str]:
    """torchrun with this interpreter's torch: `--standalone` on one node; over several, every node's
    agent meets at the c10d rendezvous `rdzv_endpoint`, which assigns the node ranks."""
    if nodes == 1:
        placement = ["--standalone"]
    else:
        placement = ["--rdzv_backend=c10d", f"--rdzv_endpoint={rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nodes}",
        *placement,
        f"--nproc_per_node={processes}",
        "-m",
        module,
        *arguments,
    ]


def launch(module: str, arguments: list[str], train: TrainConfig, device: torch.device) -> int:
    """Run `module` in `train.processes` processes on this node (joining the other nodes' when
    `train.nodes` > 1) and wait; the exit code is torchrun's (non-zero when any process failed or
    another node went away: torchrun then stops this node's processes and says which rank failed and how)."""
    env = dict(os.environ)
    if device.type == "cpu":  # the cores split between the processes, not each of them spinning on all
        env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // train.processes))
    command = torchrun_command(module, arguments, train.processes, train.nodes, train.rdzv_endpoint, train.rdzv_id)
    return subprocess.run(command, env=env).returncode


def join(device: torch.device) -> Group:
    """Join the group torchrun started this process in (GPU runs: bind this rank's GPU first)."""
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    else:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return current_group()
