"""Where the examples come from (isample/examples.py): the random-reshuffling stream (a permutation per
pass), loading ahead from disk, and the threads and worker processes a source starts, stopped by close()."""

import copy
import multiprocessing
import threading
import time

import pytest
import torch

from isample.examples import Examples, LoadedExamples, Reshuffling
from isample.phases import PhaseTimer
from isample.selector import BatchSelector
from isample.trainer import Trainer
from tests.common import toy_problem
from tests.methods.test_family import Jitter, TensorDataset


def test_a_resumed_stream_continues_the_same_permutation():
    stream = Reshuffling(100, seed=3)
    stream.take(40)
    state = copy.deepcopy(stream.state_dict())
    expected = [stream.take(40) for _ in range(4)]  # crosses into the next pass
    resumed = Reshuffling(100, seed=99)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(expected, [resumed.take(40) for _ in range(4)]))


def test_ranks_taking_alike_partition_the_single_process_batches():
    whole = Reshuffling(1000, seed=5)
    ranks = [Reshuffling(1000, seed=5, rank=r, world_size=4) for r in range(4)]
    for _ in range(30):  # three passes of 10 global batches of 100
        global_batch = whole.take(100)
        shares = torch.cat([rank.take(25) for rank in ranks])
        assert sorted(shares.tolist()) == sorted(global_batch.tolist())


def test_taking_more_than_a_pass_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot take 11 examples from a pass of 10"):
        Reshuffling(10, seed=0).take(11)


def test_loads_dropped_unused_give_back_their_augmentation_draws():
    """Loaded ahead and augmented, then not asked for: the next request gets the draws it would get
    had nothing been loaded ahead (as the same requests from memory get them)."""
    x, y = torch.randn(200, 4), torch.randint(3, (200,))
    gathered = []
    for from_disk in (False, True):
        stream = Reshuffling(200, seed=5)
        if from_disk:
            args = (TensorDataset(x, y), torch.device("cpu"), Jitter(2), torch.Generator(), stream, PhaseTimer(False))
            examples = LoadedExamples(*args, workers=1)
        else:
            examples = Examples(x, y, torch.device("cpu"), Jitter(2), torch.Generator(), stream)
        batches = [examples.gather(examples.take(10))[0]]  # from disk: the next two loading ahead
        time.sleep(0.5)  # ... loaded and augmented by now
        batches.append(examples.gather(torch.tensor([7, 3, 9]))[0])  # not foreseen: the two are dropped
        batches += [examples.gather(examples.take(10))[0] for _ in range(3)]
        gathered.append(batches)
        if from_disk:
            assert examples.requests_foreseen == 2 and examples.requests_served == 5
        examples.close()
    for memory, disk in zip(*gathered, strict=True):
        assert torch.equal(memory, disk)


def loading_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("isample-loading")]


def from_disk_trainer(workers: int) -> Trainer:
    model, optimizer, x, y = toy_problem(n=400)
    return Trainer("uniform", model, optimizer, TensorDataset(x, y), None, 20, workers=workers, seed=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_close_stops_the_loading_thread_and_every_worker_process(workers):
    before = set(multiprocessing.active_children())
    trainer = from_disk_trainer(workers)
    for _ in range(5):  # loads ahead: the thread and the workers are busy
        trainer.step()
    started = set(multiprocessing.active_children()) - before
    assert len(started) == workers and all(process.is_alive() for process in started)
    assert loading_threads()
    trainer.close()
    assert not loading_threads()
    assert not any(process.is_alive() for process in started)
    assert not set(multiprocessing.active_children()) - before
    trainer.close()  # idempotent


def test_leaving_a_with_block_on_an_error_closes_the_trainer():
    before = set(multiprocessing.active_children())
    with pytest.raises(KeyError):
        with from_disk_trainer(workers=1) as trainer:
            trainer.step()
            raise KeyError("the user's loop failed")
    assert not loading_threads() and not set(multiprocessing.active_children()) - before


def test_close_stops_the_candidate_loading_thread_of_a_selector():
    model, _, x, y = toy_problem(n=400)
    with BatchSelector("upper_bound", 400, 20, model=model, dataset=TensorDataset(x, y)) as selector:
        next(iter(selector))
        assert loading_threads()
    assert not loading_threads()


def test_a_source_in_memory_starts_nothing_and_closes_alike():
    before = threading.active_count()
    _, _, x, y = toy_problem(n=100)
    examples = Examples(x, y, torch.device("cpu"), None, torch.Generator())
    examples.gather(examples.take(10))
    assert threading.active_count() == before
    examples.close()
    examples.close()
