import torch

from isample.phases import PHASES, PhaseTimer


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
