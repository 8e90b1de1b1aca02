"""The processes that train one model together (torch DDP), as the sampler and the methods see them.

A single process is a `Group` of one, and every collective is then the identity, so the same code
runs with and without torch.distributed. Collectives carry small float vectors: reduced means (tau
and the measured times, so every rank decides to importance-sample together), rank 0's values
(the budget clock) and gathered (index, score) pairs (score tables held alike on every rank).
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # where collective tensors live (cuda for NCCL)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

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


SINGLE = Group()


def current_group() -> Group:
    """The default process group when torch.distributed is initialised (NCCL: this rank's GPU), else SINGLE."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    return Group(dist.get_rank(), dist.get_world_size(), device)
