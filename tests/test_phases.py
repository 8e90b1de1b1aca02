import math
import sys
import time

import pytest
import torch
from torch.overrides import TorchFunctionMode

from isample.device_reads import LaggedReads
from isample.methods import METHODS
from isample.phases import EVENT_LAG, PHASES, PhaseTimer
from isample.sampling import NonFiniteScores


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
    """CUDA as the timer sees it, on the CPU: events are FakeEvents and synchronize calls are counted
    (reads of tensors by the host: `HostReads`)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    return calls


HOST_READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.cpu,
    torch.Tensor.numpy,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
}


class HostReads(TorchFunctionMode):
    """Counts what would read a CUDA tensor on the host, and so wait for the device: `.item()`, `.tolist()`,
    `.cpu()`, `.numpy()`, `float()`, `int()`, a truth value, an index. On the CPU every tensor is the
    host's, so the count is of the calls, wherever they are made, save one: `LaggedReads.take`, which reads
    pinned copies on the host (behind an event `lag` iterations old, on CUDA)."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            caller = sys._getframe(1)
            if caller.f_code is not LaggedReads.take.__code__:
                self.calls.append((func.__name__, f"{caller.f_code.co_filename}:{caller.f_lineno}"))
        return func(*args, **(kwargs or {}))


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


IS_RUNS = {
    "forced": {"always_importance": True, "presample": 3},
    "auto": {"always_importance": True, "presample": "auto"},
}


@pytest.mark.parametrize("run", sorted(IS_RUNS))
@pytest.mark.parametrize("draw", ["with_replacement", "without_replacement"])
def test_an_importance_sampled_iteration_reads_nothing_from_the_device(fake_cuda, monkeypatch, draw, run):
    """On CUDA an IS iteration neither synchronises nor reads a tensor on the host: the draw and its checks
    stay on the device, and tau, the speed-up's moments, the weights' spread and the checks are read
    `lag` iterations on (`auto`: with its probe of the bound at the first IS iteration)."""
    trainer = cuda_trainer("upper_bound", monkeypatch, draw=draw, **IS_RUNS[run])
    assert trainer.method.reads.lag == EVENT_LAG
    with HostReads() as reads:
        iterations = [trainer.step() for _ in range(12)]
    assert reads.calls == [] and fake_cuda == []
    assert all(it.by_score for it in iterations) and all(len(set(it.indices.tolist())) > 1 for it in iterations)
    if draw == "without_replacement":
        assert all(len(set(it.indices.tolist())) == 32 for it in iterations)


@pytest.mark.parametrize("draw", ["with_replacement", "without_replacement"])
def test_on_cuda_the_records_are_the_cpus_read_lag_iterations_later(fake_cuda, monkeypatch, draw):
    """The same forced run on the CPU and on fake CUDA: the CPU's numbers (tau, the speed-up, the weights'
    spread) of iteration i are CUDA's of iteration i + lag; before that CUDA's are nan."""
    from isample.trainer import Trainer
    from tests.common import toy_problem

    keys = ("tau", "tau_training", "speedup", "weight_max", "effective_share", "distinct_share")

    def run(make):
        trainer = make()
        iterations = [trainer.step() for _ in range(10)]
        return [[it.metrics[key] for key in keys] for it in iterations]

    def on_cpu():
        model, optimizer, x, y = toy_problem(n=2000)
        cls = METHODS["upper_bound"]
        options = cls.Options(always_importance=True, presample=3, draw=draw)
        return Trainer("upper_bound", model, optimizer, x, y, 32, options=options, seed=0)

    cpu = run(on_cpu)
    cuda = run(lambda: cuda_trainer("upper_bound", monkeypatch, always_importance=True, presample=3, draw=draw))
    assert cuda[EVENT_LAG:] == cpu[:-EVENT_LAG]
    assert all(math.isnan(value) for value in cuda[0][3:])  # no weights read yet


def test_on_cuda_a_diverged_model_raises_when_its_scores_are_read(fake_cuda, monkeypatch):
    """NaN scores are drawn from without a check on the device; the check is read `lag` iterations on and
    raises then, naming the iteration."""
    trainer = cuda_trainer("upper_bound", monkeypatch, always_importance=True, presample=3)
    for _ in range(3):
        trainer.step()
    with torch.no_grad():
        for parameter in trainer.method.context.model.parameters():
            parameter.fill_(float("nan"))
    trainer.step()  # its scores are NaN ...
    trainer.step()
    with pytest.raises(NonFiniteScores, match=f"read {EVENT_LAG} iterations after iteration 3"):
        trainer.step()  # ... and read here


@pytest.mark.parametrize(("tau_source", "probes"), [("training", 2), ("scoring", 4)])
def test_nor_does_an_iteration_with_importance_sampling_off(fake_cuda, monkeypatch, tau_source, probes):
    """upper_bound by its rule, off on the toy problem: its tau, moments and checks of the training forward's
    scores, and the samples and probes of the presample's cost, are read lagged as well."""
    trainer = cuda_trainer("upper_bound", monkeypatch, presample=3, tau_source=tau_source)
    with HostReads() as reads:
        iterations = [trainer.step() for _ in range(55)]  # probes at 1 and 50 (training), every 16 (scoring)
    assert reads.calls == [] and fake_cuda == []
    assert not any(it.by_score for it in iterations) and len(trainer.method._probes) == probes
    assert math.isfinite(iterations[-1].tau) and math.isfinite(iterations[-1].speedup)
