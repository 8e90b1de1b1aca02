"""One training run over N processes: checks before any process starts, the torchrun command that starts
them, and each process joining its group (NCCL with a GPU each, or gloo on CPU with the threads split)."""

import datetime
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

import torch
import torch.distributed as dist

from isample.distributed import Group, current_group
from isample.experiment.config import ConfigError, Params
from isample.experiment.gpus import GPUS_VARIABLE, GpuLease, NoFreeGpu, acquire_gpus
from isample.experiment.setup import resolve_device
from isample.experiment.train_config import TrainConfig, sync_bn_problem

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


def visible_gpus() -> list[str]:
    """This process's GPUs as the machine names them: CUDA_VISIBLE_DEVICES's entries, else 0..n-1."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip()][: torch.cuda.device_count()]
    return [str(index) for index in range(torch.cuda.device_count())]


def hold_gpus(params: Params, count: int | None = None, say=print) -> GpuLease | None:
    """With train.device auto on a machine with GPUs: `count` GPUs (this node's train.processes by
    default) that no other stage of the machine holds, held until this process ends (waiting up to
    train.gpu_wait); one GPU is then this process's own, several are the ones torchrun's processes
    see. None otherwise."""
    if params.train.device != "auto" or not torch.cuda.is_available():
        return None
    visible = visible_gpus()
    try:
        count = count or params.train.processes
        lease = acquire_gpus(count, visible, params.train.gpu_wait_seconds, say=say)
    except NoFreeGpu as error:
        raise ConfigError(f"params.yaml: train.device = auto: {error}") from None
    os.environ[GPUS_VARIABLE] = ",".join(lease.gpus)
    if count == 1:
        torch.cuda.set_device(visible.index(lease.gpus[0]))
    return lease


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
    if GPUS_VARIABLE in env:  # the GPUs this stage holds: torchrun's processes take one each
        env["CUDA_VISIBLE_DEVICES"] = env[GPUS_VARIABLE]
    if device.type == "cpu":  # the cores split between the processes, not each of them spinning on all
        env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // train.processes))
    command = torchrun_command(module, arguments, train.processes, train.nodes, train.rdzv_endpoint, train.rdzv_id)
    process = subprocess.Popen(command, env=env)
    with _forwarding_stop_signals(process):
        return process.wait()


@contextmanager
def _forwarding_stop_signals(process: subprocess.Popen):
    """While torchrun runs: a SIGTERM or SIGUSR1 sent to this process only (`kill`, a container's
    stop) also reaches torchrun as SIGTERM, which passes it on to the training processes, so they
    save a checkpoint and stop; this process's own handler runs too."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}

    def forward(signum, frame):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if callable(previous[signum]):
            previous[signum](signum, frame)

    for signum in previous:
        signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def join(device: torch.device) -> Group:
    """Join the group torchrun started this process in (GPU runs: bind this rank's GPU first)."""
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    else:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return current_group()
