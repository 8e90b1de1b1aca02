import math
import time

import pytest
import torch

from isample.methods import METHODS
from isample.phases import EVENT_LAG, PHASES, PhaseTimer


def test_enabled_timer_accumulates_and_resets():
    timer = PhaseTimer()
    with timer.phase("backward"):
        torch.randn(200, 200) @ torch.randn(200, 200)
    with timer.phase("backward"):
        pass
    snapshot = timer.snapshot()
    assert set(snapshot) == set(PHASES)
    assert snapshot["backward"] > 0 and snapshot["decision"] == 0
    timer.reset()
    assert all(v == 0 for v in timer.snapshot().values())


def test_disabled_timer_records_nothing():
    timer = PhaseTimer(enabled=False)
    with timer.phase("backward"):
        pass
    assert timer.snapshot() is None
    assert timer.phase("backward") is timer.phase("scoring")  # one shared no-op


def test_only_exact_cuda_timing_synchronises(fake_cuda):
    assert not PhaseTimer(device="cpu").synchronize and not PhaseTimer(device="cpu", synchronize=True).synchronize
    assert not PhaseTimer(enabled=False, device="cuda").synchronize
    assert not PhaseTimer(device="cuda").synchronize and PhaseTimer(device="cuda").events
    assert PhaseTimer(device="cuda", synchronize=True).synchronize


def test_a_phase_inside_another_counts_for_the_inner_one_only():
    import time

    timer = PhaseTimer(True, torch.device("cpu"))
    with timer.phase("draw_batch"):
        time.sleep(0.02)
        with timer.phase("data_loading"):
            time.sleep(0.05)
        time.sleep(0.02)
    seconds = timer.snapshot()
    assert 0.05 <= seconds["data_loading"] < 0.07
    assert 0.04 <= seconds["draw_batch"] < 0.06  # its own 40 ms, not the loading inside it
    assert not timer.active


class FakeEvent:
    """torch.cuda.Event on the CPU: the wall clock at record(); elapsed_time in milliseconds, as CUDA's."""

    def __init__(self, enable_timing=False):
        self.at = None

    def record(self, stream=None):
        self.at = time.perf_counter()

    def synchronize(self):
        assert self.at is not None

    def query(self):
        return True

    def elapsed_time(self, other):
        return (other.at - self.at) * 1000


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA as the timer sees it, on the CPU: events are FakeEvents and synchronize calls are counted."""
    calls = []
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    return calls


def test_cuda_events_time_phases_without_synchronising_and_are_read_later(fake_cuda):
    timer = PhaseTimer(device="cuda")
    read = []
    for sleep in (0.01, 0.02, 0.03, 0.04):
        timer.reset()
        with timer.phase("draw_batch"):
            time.sleep(sleep)
            with timer.phase("data_loading"):
                time.sleep(0.01)
        read.append(timer.snapshot())
    assert not fake_cuda
    assert [r["draw_batch"] for r in read[:EVENT_LAG]] == [0.0] * EVENT_LAG  # nothing read before the lag
    assert 0.01 <= read[2]["draw_batch"] < 0.02 and 0.02 <= read[3]["draw_batch"] < 0.03  # iterations 0 and 1
    assert all(0.01 <= r["data_loading"] < 0.02 for r in read[2:])  # the inner phase only
    rest = timer.drain()
    assert 0.07 <= rest["draw_batch"] < 0.08 and 0.02 <= rest["data_loading"] < 0.03  # iterations 2 and 3
    assert timer.drain() == dict.fromkeys(PHASES, 0.0)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_reading_between_marks_is_the_same_on_the_wall_clock_and_on_events(fake_cuda, device):
    timer = PhaseTimer(device=device)
    timer.reset()
    with timer.phase("decision"):
        time.sleep(0.01)
    start = timer.mark()
    with timer.phase("presample_forward"):
        time.sleep(0.03)
    time.sleep(0.02)  # in no phase
    with timer.phase("scoring"):
        time.sleep(0.01)
    inside = timer.since(start, ("presample_forward", "scoring"))
    whole, loading = timer.since(start), timer.since(None, ("decision",))
    for _ in range(timer.lag):  # known `lag` iterations on
        timer.reset()
    assert 0.04 <= inside.value() < 0.05 and 0.06 <= whole.value() < 0.075 and 0.01 <= loading.value() < 0.02


def cuda_trainer(method, monkeypatch, exact=False, **options):
    """A method's Trainer whose timer takes the model for one on CUDA (the model stays on the CPU)."""
    import isample.trainer
    from isample.trainer import Trainer
    from tests.common import toy_problem, toy_tables

    real = isample.trainer.PhaseTimer
    monkeypatch.setattr(isample.trainer, "PhaseTimer", lambda enabled, device, **kw: real(enabled, "cuda", **kw))
    model, optimizer, x, y = toy_problem(n=2000)
    cls = METHODS[method]
    return Trainer(
        method,
        model,
        optimizer,
        x,
        y,
        32,
        options=cls.Options(**options),
        seed=0,
        exact_timing=exact,
        tables=toy_tables(method, 2000),
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_no_training_iteration_synchronises_cuda(fake_cuda, monkeypatch, method):
    trainer = cuda_trainer(method, monkeypatch)
    assert trainer.timer.events
    for _ in range(120):  # upper_bound: past its probes at iterations 1, 50 and 100
        it = trainer.step()
    assert fake_cuda == []
    assert sum(it.phases[name] for name in ("train_forward", "backward")) > 0  # timed all the same


def test_is_measures_its_a_from_events_read_later(fake_cuda, monkeypatch):
    """IS forced on: every presample's cost is read two iterations on, and a follows."""
    trainer = cuda_trainer("upper_bound", monkeypatch, always_importance=True, presample=4)
    metrics = [trainer.step().metrics for _ in range(30)]
    assert fake_cuda == []
    assert math.isnan(metrics[EVENT_LAG]["a"])  # iteration 0's times are not a time; iteration 1's come later
    assert all(0 < m["a"] < 50 for m in metrics[EVENT_LAG + 1 :])
    held_off = cuda_trainer("upper_bound", monkeypatch, presample=4)  # off: a from probes
    for _ in range(60):
        held_off.method.tau = 0.0
        held_off.step()
    assert fake_cuda == [] and len(held_off.method._probes) == 2 and held_off.method.a > 0


def test_the_timing_stage_synchronises_at_every_phase_edge(fake_cuda, monkeypatch):
    trainer = cuda_trainer("upper_bound", monkeypatch, exact=True, always_importance=True, presample=2)
    trainer.step()
    assert trainer.timer.synchronize and not trainer.timer.events
    assert len(fake_cuda) >= 2 * 8  # entering and leaving each of the eight phases or more of an IS iteration
