"""The budget clock, wall or priced (`isample.experiment.clock`), and runs budgeted by the priced one."""

import dataclasses
import math

import pytest
import torch

from isample.experiment.clock import BudgetClock
from isample.experiment.train import Preempted, train_run
from isample.pricing import Prices, Work
from tests.common import FakeClock, Killed, kill_at_epoch, tiny_spec

# What depends on the machine: the wall clock and what it times (IS's measured k among them).
MACHINE_COLUMNS = ("wall_seconds", "eval_seconds", "train_set_eval_seconds", "k")


def deterministic(record):
    """A record's columns less those of the machine's clocks: what two runs of one spec must share."""
    columns = [c for c in record.epochs.columns if not c.startswith("time_") and c not in MACHINE_COLUMNS]
    return record.epochs[columns]


def priced_spec(method="upper_bound", **keywords):
    return tiny_spec(method, clock="priced", budget="1.5s", **keywords)


def test_the_priced_clock_adds_the_price_of_each_iteration_and_reads_no_clock():
    prices = Prices(forward=0.001, backward=0.002, iteration=0.01, score=0.0005)
    ticks = FakeClock(1.0)
    clock = BudgetClock(1.0, clock=ticks, prices=prices, priced=True)
    clock.start()
    clock.charge(Work(32, 32, 1, 64))
    clock.charge(Work(32, 32, 1, 0))
    assert clock.elapsed == pytest.approx(2 * (32 * 0.003 + 0.01) + 64 * 0.0005)
    assert clock.shared() == clock.elapsed and clock.progress() == pytest.approx(clock.elapsed)
    clock.pause()
    assert clock.wall == 1.0  # the wall clock ran beside it: started at 0, paused at 1
    with pytest.raises(ValueError, match="needs prices"):
        BudgetClock(1.0, priced=True)
    assert math.isnan(BudgetClock(1.0).priced_seconds)


@pytest.mark.parametrize("method", ["upper_bound", "selective_backprop"])
def test_two_priced_runs_of_one_spec_give_identical_records(tiny_data, method):
    spec = priced_spec(method)
    first, second = (train_run(spec, tiny_data, progress=False) for _ in range(2))
    assert deterministic(first).equals(deterministic(second))
    assert first.final_accuracy == second.final_accuracy
    epochs = first.epochs
    assert (epochs["train_seconds"] == epochs["priced_seconds"]).all() and (epochs["wall_seconds"] > 0).all()
    assert epochs["train_set_loss"].notna().all() and epochs["train_set_accuracy"].between(0, 1).all()
    assert first.params["clock"] == "priced" and float(first.params["price_forward"]) == spec.prices.forward


def test_a_priced_budget_runs_the_iterations_its_prices_allow_whatever_the_wall_clock(tiny_data):
    spec = priced_spec("uniform")
    step = spec.prices.seconds(Work(32, 32, 1, 0))
    spent, iterations = 0.0, 0
    while spent < spec.budget_seconds:  # the loop reads the clock before each iteration
        spent, iterations = spent + step, iterations + 1
    slow, fast = (train_run(spec, tiny_data, progress=False, clock=FakeClock(tick)) for tick in (1.0, 1e-6))
    assert slow.epochs["total_iterations"].iloc[-1] == fast.epochs["total_iterations"].iloc[-1] == iterations
    assert slow.epochs["priced_seconds"].iloc[-1] == pytest.approx(spent)
    assert deterministic(slow).equals(deterministic(fast))


def test_under_a_wall_budget_the_record_still_prices_the_work(tiny_data):
    record = train_run(tiny_spec("upper_bound", budget="1s", sampler={"tau_th": 0.0}), tiny_data, progress=False)
    epochs, prices = record.epochs, tiny_spec("upper_bound").prices
    iterations = epochs["total_iterations"].iloc[-1]
    # IS on from the second iteration (its tau starts at 0, not above 0): B = 64 scored every iteration after.
    assert epochs["examples_scored"].sum() == 64 * (iterations - 1)
    expected = iterations * prices.seconds(Work(32, 32, 1, 0)) + 64 * (iterations - 1) * prices.score
    assert (epochs["train_seconds"] == epochs["wall_seconds"]).all()
    assert epochs["priced_seconds"].iloc[-1] == pytest.approx(expected)


def test_a_killed_priced_run_resumes_to_the_uninterrupted_record(tiny_data, tmp_path):
    spec = priced_spec(checkpoint_every="0.01s")
    uninterrupted = train_run(spec, tiny_data, progress=False)

    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(Killed):
        train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint, on_epoch=kill_at_epoch(3))
    resumed = train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint)
    assert len(uninterrupted.epochs) > 3
    assert deterministic(resumed).equals(deterministic(uninterrupted))
    assert (resumed.epochs["wall_seconds"].diff().dropna() > 0).all()  # the wall clock resumed too


@pytest.mark.parametrize("method", ["upper_bound", "infobatch"])
def test_a_priced_run_stopped_mid_epoch_resumes_to_the_uninterrupted_record(tiny_data, tmp_path, method):
    spec = priced_spec(method, checkpoint_every="1h")
    uninterrupted = train_run(spec, tiny_data, progress=False)
    polls = iter(range(10**6))
    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(Preempted):
        train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint, stop_requested=lambda: next(polls) == 21)
    saved = torch.load(checkpoint, weights_only=True)
    assert 0 < saved["epoch_in_progress"]["done"] < saved["epoch_in_progress"]["length"]
    resumed = train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint)
    assert deterministic(resumed).equals(deterministic(uninterrupted))


def test_a_priced_auto_run_records_its_ratio_and_resumes_mid_epoch_to_the_uninterrupted_record(tiny_data, tmp_path):
    spec = priced_spec(presample="auto", sampler={"presample_max": 4}, checkpoint_every="1h")
    spec = dataclasses.replace(spec, options=dataclasses.replace(spec.options, always_importance=True))
    uninterrupted = train_run(spec, tiny_data, progress=False)
    ratios = uninterrupted.epochs["presample_ratio"]
    assert ratios.between(2, 4).all() and ratios.iloc[0] > 2  # the first presample is a probe at the bound
    shares = uninterrupted.epochs[[f"presample_share_{p}" for p in (2, 3, 4)]]
    assert shares.sum(axis=1).to_numpy() == pytest.approx(1.0)  # every IS iteration at one of the ratios
    assert (shares.to_numpy() * [2, 3, 4]).sum(axis=1) == pytest.approx(ratios.to_numpy())
    assert uninterrupted.params["presample"] == "auto" and float(uninterrupted.params["sampler.presample_max"]) == 4
    polls = iter(range(10**6))
    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(Preempted):
        train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint, stop_requested=lambda: next(polls) == 7)
    resumed = train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint)
    assert deterministic(resumed).equals(deterministic(uninterrupted))


@pytest.mark.parametrize("a", [0, 0.1])
def test_a_stated_presample_share_prices_importance_sampling_and_its_rule(tiny_data, a):
    spec = priced_spec(prices={"presample_a": a})
    record = train_run(spec, tiny_data, progress=False)
    assert record.epochs["a"].to_numpy() == pytest.approx(a)
    assert record.epochs["tau_threshold"].to_numpy() == pytest.approx(1 + a)
    # Other methods keep the score price per example: the stated a is IS's presample's.
    assert tiny_spec("selective_backprop", clock="priced", prices={"presample_a": a}).prices.score == 0.00021


def test_a_checkpoint_of_one_draw_never_resumes_a_run_of_the_other_and_records_say_the_draw(tiny_data, tmp_path):
    without, with_ = (priced_spec(sampler={"draw": draw}) for draw in ("without_replacement", "with_replacement"))
    without = dataclasses.replace(without, checkpoint_seconds=0.01)
    assert without.key("data") != with_.key("data")
    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(Killed):
        train_run(without, tiny_data, progress=False, checkpoint_path=checkpoint, on_epoch=kill_at_epoch(3))
    other = train_run(with_, tiny_data, progress=False, checkpoint_path=checkpoint)
    uninterrupted = train_run(with_, tiny_data, progress=False)
    assert deterministic(other).equals(deterministic(uninterrupted))
    assert other.params["sampler.draw"] == "with_replacement"
    assert train_run(without, tiny_data, progress=False).params["sampler.draw"] == "without_replacement"
