"""Where a selection method's examples come from: the random-reshuffling stream, and the examples it
names, held in memory, read from disk by DataLoader workers (loaded ahead in a background thread), or
indices only (a user's own DataLoader loads them).

Every source has `close()`: the loading thread and the DataLoader workers of a source read from disk
stop there (the others hold none). It is idempotent, and `Trainer` and `BatchSelector` call it from
their own `close()` and context managers.
"""

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch.utils.data import DataLoader

from isample.phases import PhaseTimer
from isample.seeds import derive_seed

READ_AHEAD = 2  # requests loaded from disk ahead of the one being trained on


def stop_workers(loader: DataLoader | None) -> None:
    """Stop a DataLoader's persistent workers now (they otherwise live until the loader is collected)."""
    iterator = getattr(loader, "_iterator", None)  # where persistent workers live between passes
    if iterator is not None:
        if hasattr(iterator, "_shutdown_workers"):  # absent with no workers
            iterator._shutdown_workers()
        loader._iterator = None


class Closing:
    """A holder of threads or worker processes: `with` closes it on leaving, an exception included."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


class Reshuffling:
    """Random reshuffling, the order `DataLoader(shuffle=True, drop_last=True)` trains in: every pass
    over the N examples is a fresh permutation, taken in order.

    `take(count)` returns the next `count` indices of this rank's share of the pass; when fewer than
    `count` remain, they sit this pass out and the next pass starts, so a pass never repeats an
    example and trains all of them when count x ranks divides N. Pass k's permutation depends only on
    the seed and k, alike on every rank; rank r of R takes its positions r, r + R, ... (as
    DistributedSampler does), so ranks that take alike partition each global batch. Its state is
    two integers: a resumed run continues the same permutation. Cost: one randperm(N) per pass,
    O(1) per example taken.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1):
        if size // world_size < 1:
            raise ValueError(f"{size} examples cannot be shared among {world_size} ranks")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.passes = 0  # passes started before the current one
        self.position = 0  # indices of the current pass already taken
        self._shares: dict[int, torch.Tensor] = {}  # this rank's share of the current pass and the next

    def _share_of(self, pass_index: int) -> torch.Tensor:
        if pass_index not in self._shares:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", pass_index=pass_index))
            order = torch.randperm(self.size, generator=generator)
            usable = self.size // self.world_size * self.world_size  # every rank the same count
            self._shares = {k: v for k, v in self._shares.items() if k >= self.passes}  # earlier passes: done
            self._shares[pass_index] = order[self.rank : usable : self.world_size]
        return self._shares[pass_index]

    def _current_share(self) -> torch.Tensor:
        return self._share_of(self.passes)

    def pass_size(self, count: int) -> int:
        """The examples one pass yields to this rank in takes of `count`."""
        return self.size // self.world_size // count * count

    def take(self, count: int) -> torch.Tensor:
        share = self._current_share()
        if count > len(share):
            raise ValueError(f"cannot take {count} examples from a pass of {len(share)} per rank")
        if self.position + count > len(share):  # the rest sits this pass out
            self.passes, self.position = self.passes + 1, 0
            share = self._current_share()
        taken = share[self.position : self.position + count]
        self.position += count
        return taken

    def peek(self, count: int, takes: int) -> list[torch.Tensor]:
        """What the next `takes` takes of `count` would return, leaving the stream where it is (for
        loading ahead); the next pass's order is computed once, when a peek first reaches it."""
        passes, position, peeked = self.passes, self.position, []
        for _ in range(takes):
            share = self._share_of(passes)
            if position + count > len(share):
                passes, position = passes + 1, 0
                share = self._share_of(passes)
            peeked.append(share[position : position + count])
            position += count
        return peeked

    def state_dict(self) -> dict:
        return {"seed": self.seed, "passes": self.passes, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.passes, self.position, self._shares = state["seed"], state["passes"], state["position"], {}


class Examples(Closing):
    """The training set held in memory: the random-reshuffling stream, and batches gathered for the model."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        device: torch.device,
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        generator: torch.Generator,
        stream: Reshuffling | None = None,
    ):
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        self.inputs = inputs
        self.targets = targets
        self.device = device
        self.transform = transform
        self.generator = generator
        self.stream = stream or Reshuffling(len(inputs), generator.initial_seed())

    def __len__(self) -> int:
        return len(self.inputs)

    def take(self, count: int) -> torch.Tensor:
        """The next `count` data-set indices of the random-reshuffling stream (CPU)."""
        return self.stream.take(count)

    def expect(self, requests: list[torch.Tensor]) -> None:
        """The requests a method will make next (data held in memory needs no loading ahead)."""

    def settle(self) -> None:
        """Drop whatever was loaded ahead (nothing, in memory)."""

    def close(self) -> None:
        """Nothing to release: data in memory starts no thread or worker."""

    def gather(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples at `indices`, transformed (augmentation, normalisation), on the model's device."""
        data_indices = indices.to(self.inputs.device)
        x = self.inputs[data_indices].to(self.device, non_blocking=True)
        y = self.targets[data_indices].to(self.device, non_blocking=True)
        if self.transform is not None:
            x = self.transform(x)
        return x, y


class _Requests:
    """A DataLoader's batch sampler that yields whatever batches it was last given."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _one_line(error: Exception) -> str:
    """The original message of an error re-raised from a DataLoader worker (its last line)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    return last.removeprefix(f"{type(error).__name__}: ")


class LoadedExamples(Examples):
    """A data set read from disk: `dataset[i]` = (input tensor, target), loaded by DataLoader workers,
    which stay up between requests (persistent workers, pinned memory on a GPU). A request of n
    examples is split among the workers, so they decode in parallel. Inputs must share one shape (a
    batch); `transform` runs on the batch on the model's device, as for data held in memory.

    Loading overlaps training: after each request taken from the stream, the next `read_ahead`
    requests of that size (`Reshuffling.peek`), or those a method announced (`expect`), are loaded
    by one background thread while the model computes, and transformed there too on a GPU, when the
    transform's randomness is its `generator` attribute (`BatchTransform`'s: `transform_ahead`). A request that was
    foreseen is served from them; any other is loaded at once. The draws never depend on what was
    loaded ahead, and the transform's generator is set back to where it stood before any load that
    is dropped unused (`settle`), so a run is the one it would be without read-ahead: the same
    examples, order, weights and augmentation. The `data_loading` phase is the time actually
    waited for examples."""

    def __init__(
        self,
        dataset,
        device: torch.device,
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        generator: torch.Generator,
        stream: Reshuffling,
        timer: PhaseTimer,
        workers: int = 0,
        read_ahead: int = READ_AHEAD,
    ):
        self.dataset, self.device, self.transform = dataset, device, transform
        self.generator, self.stream = generator, stream
        self.timer, self.workers, self.read_ahead = timer, workers, read_ahead
        self.requests = _Requests()
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.requests,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=device.type == "cuda",
        )
        if workers:  # start the workers from this thread (the loading thread only reuses them)
            self.requests.batches = []
            list(self.loader)
        # One thread: the DataLoader serves one request at a time; it waits on the workers, GIL-free.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isample-loading")
        # A transform whose randomness is its generator runs in the loading thread, in load order, when
        # the model is on a GPU; on the CPU two threads of tensor work would only slow each other down
        # (measured: an ImageFolder run on 2 cores, 196 ms per iteration against 234 ms).
        self.transform_ahead = transform is not None and hasattr(transform, "generator") and device.type != "cpu"
        self._ahead: deque[tuple[torch.Tensor, Future]] = deque()  # foreseen requests, in order
        self._last_taken: torch.Tensor | None = None
        self.requests_foreseen = self.requests_served = 0  # how often loading ahead paid off

    def __len__(self) -> int:
        return len(self.dataset)

    def take(self, count: int) -> torch.Tensor:
        self._last_taken = taken = self.stream.take(count)
        return taken

    def expect(self, requests: list[torch.Tensor]) -> None:
        """Announce the requests the method will make next, in order, to have them loaded meanwhile
        (up to `read_ahead`; those already loading stay, the others are dropped)."""
        requests = requests[: self.read_ahead]
        kept = 0
        while kept < min(len(self._ahead), len(requests)) and _same(self._ahead[kept][0], requests[kept]):
            kept += 1
        self._drop(kept)
        for indices in requests[kept:]:
            self._ahead.append((indices, self._thread.submit(self._load, indices)))

    def gather(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.timer.phase("data_loading"):
            foreseen = bool(self._ahead) and _same(self._ahead[0][0], indices)
            if not foreseen:
                self.settle()  # another request than foreseen: what was loaded ahead is dropped
            future = self._ahead.popleft()[1] if foreseen else self._thread.submit(self._load, indices)
            self.requests_served += 1
            self.requests_foreseen += foreseen
            x, y, _ = future.result()
        if self.read_ahead and self._last_taken is not None and _same(self._last_taken, indices):
            self.expect(self.stream.peek(len(indices), self.read_ahead))  # the stream's next takes alike
        if self.transform is not None and not self.transform_ahead:
            x = self.transform(x)
        return x, y

    def settle(self) -> None:
        """Drop every load ahead, as if none had been made: the transform's generator goes back to
        where it stood before the first of them that ran (before a checkpoint, or a request not
        foreseen)."""
        self._drop(0)

    def close(self) -> None:
        """Stop the loading thread, then the DataLoader workers (idempotent; nothing loads after it)."""
        self._ahead.clear()
        self._thread.shutdown(wait=True, cancel_futures=True)  # a load under way finishes first
        stop_workers(self.loader)

    def _drop(self, kept: int) -> None:
        """Drop the loads ahead after the first `kept` (in order: the ones that ran come first)."""
        state = None
        while len(self._ahead) > kept:
            _, future = self._ahead.pop()
            if future.cancel():  # never started, so it drew nothing
                continue
            try:
                state = future.result()[2]  # the earliest that ran is popped last
            except Exception:  # a load that failed drew nothing; a request that needs it fails itself
                pass
        if state is not None:
            self.transform.generator.set_state(state)

    def _load(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The examples at `indices` on the model's device (transformed, when that runs ahead), and
        the transform generator's state before it drew (in the loading thread)."""
        shares = indices.tensor_split(max(1, min(self.workers, len(indices))))
        self.requests.batches = [share.tolist() for share in shares if len(share)]
        try:
            parts = list(self.loader)
        except Exception as error:  # a worker's failure comes back wrapped in its traceback
            raise type(error)(_one_line(error)) from None
        x = torch.cat([part[0] for part in parts]).to(self.device, non_blocking=True)
        y = torch.cat([torch.as_tensor(part[1]) for part in parts]).to(self.device, non_blocking=True)
        state = None
        if self.transform_ahead:
            generator = self.transform.generator
            state = generator.get_state() if generator is not None else None
            x = self.transform(x)
        return x, y, state


def _same(first: torch.Tensor, second: torch.Tensor) -> bool:
    return first.shape == second.shape and torch.equal(first, second)


class IndicesOnly(Closing):
    """The examples as a method that runs no forward sees them in a user's loop: the random-reshuffling
    stream over N; gathering gives nothing, since only the indices reach the user's DataLoader."""

    def __init__(self, size: int, stream: Reshuffling, generator: torch.Generator):
        self.size, self.stream, self.generator = size, stream, generator
        self.device, self.transform = torch.device("cpu"), None

    def __len__(self) -> int:
        return self.size

    def take(self, count: int) -> torch.Tensor:
        return self.stream.take(count)

    def expect(self, requests: list[torch.Tensor]) -> None:
        pass

    def settle(self) -> None:
        pass

    def close(self) -> None:
        pass

    def gather(self, indices: torch.Tensor) -> tuple[None, None]:
        return None, None
