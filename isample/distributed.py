"""The processes that train one model together (torch DDP), as the sampler and the methods see them.

A single process is a `Group` of one, and every collective is then the identity, so the same code
runs with and without torch.distributed. Collectives carry small float vectors: reduced means (tau
and the measured times, so every rank decides to importance-sample together), rank 0's values
(the budget clock) and gathered (index, score) pairs (score tables held alike on every rank).
Over several nodes each node's first process (`is_local_main`) writes that node's copy of the
outputs, so the Python objects it needs (epoch rows, checkpoint states) travel as pickled objects.
"""

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # where collective tensors live (cuda for NCCL)
    local_rank: int = 0  # this process's place among the processes of its node
    local_world_size: int = 1  # processes per node

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """The first process of its node: the one that writes the node's files."""
        return self.local_rank == 0

    @property
    def nodes(self) -> int:
        return self.world_size // self.local_world_size

    def mean(self, values: list[float]) -> list[float]:
        """The mean over ranks of each value (every rank passes the same number of them)."""
        if self.world_size == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def total(self, values: list[float]) -> list[float]:
        """The sum over ranks of each value."""
        if self.world_size == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def from_main(self, values: list[float]) -> list[float]:
        """Rank 0's values, on every rank."""
        if self.world_size == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's tensor (same shape on all), concatenated in rank order along dim 0, on the CPU."""
        if self.world_size == 1:
            return tensor
        local = tensor.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return torch.cat(parts).to(tensor.device)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's object (picklable), in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        objects = [None] * self.world_size
        dist.all_gather_object(objects, obj)
        return objects

    def object_from(self, obj: Any, source: int = 0) -> Any:
        """Rank `source`'s object (picklable), on every rank."""
        if self.world_size == 1:
            return obj
        holder = [obj if self.rank == source else None]
        dist.broadcast_object_list(holder, src=source)
        return holder[0]


SINGLE = Group()


def current_group() -> Group:
    """The default process group when torch.distributed is initialised (NCCL: this rank's GPU), else SINGLE.
    Its node layout comes from torchrun's LOCAL_RANK and LOCAL_WORLD_SIZE (one node when they are unset)."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    world_size = dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    return Group(dist.get_rank(), world_size, device, local_rank, local_world_size)


def leave() -> None:
    """Leave the default process group once every rank has finished: all meet at a barrier (no rank
    tears down while another is still in a collective), then the group is destroyed."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_code(run: Callable[[], None]) -> int:
    """Run `run`; the exit status it would end the process with (an uncaught error: 1, its traceback printed)."""
    try:
        run()
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            return stop.code or 0
        print(stop.code, file=sys.stderr)  # sys.exit("message"), as the interpreter would print it
        return 1
    except BaseException:  # noqa: BLE001 (whatever it is, the process reports it and ends)
        traceback.print_exc()
        return 1
    return 0


def end_process(code: int = 0) -> NoReturn:
    """End a DDP process now, with `code`, without the interpreter's finalization.

    Once a DistributedDataParallel wrapper has been built, torch (2.14) keeps its gloo process group
    alive past `destroy_process_group`, wrapper collected or not: its two worker threads and its TCP
    loop thread keep running. A process that then exits normally finalizes the interpreter and runs
    static destructors while those threads still run, and handle the other ranks closing their
    connections: a spawn test's rank was reported aborting there ("terminate called without an active
    exception", SIGABRT) in 2 runs of 12, after its work had succeeded. Every file is written and
    closed before this is called; the standard streams are flushed here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing left to lose
            pass
    os._exit(code)
