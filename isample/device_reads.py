"""Values an iteration computes on the device, read on the host without waiting for the device.

On CUDA, reading a tensor (`.item()`, `.tolist()`, `float()`, its truth value) waits until the device has
run everything queued before it, so the CPU stops queueing work ahead. What a method records and what its
decisions take in (IS's tau, the speed-up's moments, the weights' spread, checks of the scores) is
therefore copied to pinned host memory as it is computed (non_blocking, with an event behind the copy)
and read `lag` iterations later, when the device has long passed it, as the phase timer reads its
events. With lag 0 (off CUDA) a value is read at once: the same values at the same iteration.
"""

from collections import deque
from typing import Any

import torch


class LaggedReads:
    """One entry per iteration: host facts (anything) and named values (tensors or numbers), handed back as
    (facts, {name: float}) `lag` entries later."""

    def __init__(self, lag: int):
        self.lag = lag
        self._pending: deque[tuple[Any, list[str], Any, Any]] = deque()

    def put(self, facts: Any, values: dict[str, torch.Tensor | float]) -> None:
        names = list(values)
        device = next((value.device for value in values.values() if isinstance(value, torch.Tensor)), None)
        # Numbers are filled in where the tensors are (a fill, not a copy from the host); one tensor to copy.
        stacked = torch.stack(
            [
                value.detach().reshape(()).double()
                if isinstance(value, torch.Tensor)
                else torch.full((), value, dtype=torch.float64, device=device)
                for value in values.values()
            ]
        )
        if not self.lag:
            self._pending.append((facts, names, stacked.tolist(), None))
        elif stacked.is_cuda:
            host = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=True)
            host.copy_(stacked, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending.append((facts, names, host, event))
        else:  # lagged off CUDA (tests that stand in for it): the same schedule
            self._pending.append((facts, names, stacked, None))

    def take(self) -> tuple[Any, dict[str, float]] | None:
        """The entry `lag` entries back, once there is one (None before)."""
        if len(self._pending) <= self.lag:
            return None
        facts, names, values, event = self._pending.popleft()
        if event is not None:
            event.synchronize()  # long passed
        return facts, dict(zip(names, values if isinstance(values, list) else values.tolist(), strict=True))
