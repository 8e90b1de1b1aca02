import torch

from isample.timing import PHASES, PhaseTimer


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


def test_cpu_timer_does_not_synchronise_cuda():
    assert not PhaseTimer(device="cpu").synchronize
    assert not PhaseTimer(enabled=False, device="cuda").synchronize
    assert PhaseTimer(device="cuda").synchronize
