import re
import time
import warnings

import pytest
import torch

import isample.experiment.setup as training_setup
import isample.experiment.train as train_module
from isample.experiment.clock import BudgetClock
from isample.experiment.spec import LrSchedule
from isample.experiment.train import train_run
from isample.report.records import EPOCH_COLUMNS, read_run, write_run
from tests.common import FakeClock, Killed, kill_at_epoch, tiny_spec


def test_record_schema_and_workbook_round_trip(tiny_data, tmp_path):
    spec = tiny_spec("upper_bound")
    record = train_run(spec, tiny_data, progress=False)
    # The generic columns, then upper_bound's own metrics: no IS field in the generic part.
    own = ["weight_max", "effective_share", "distinct_share", "tau", "tau_threshold", "tau_training", "a", "k"]
    own += ["variance_ratio", "speedup", "predicted_speedup"]
    assert list(record.epochs.columns) == [*EPOCH_COLUMNS, *own]
    assert not set(own) & set(EPOCH_COLUMNS)
    assert record.epochs["epoch"].tolist() == list(range(1, len(record.epochs) + 1))
    assert (record.epochs["iterations"] <= 320 // 32).all()
    info = record.params
    assert info["presample"] == "2" and info["torch"] == torch.__version__ and info["device"] == "cpu"
    assert info["method"] == "upper_bound" and info["status"] == "completed" and record.status == "completed"
    path = tmp_path / spec.record_name
    assert path.name == "cifar10.is.2s.0.xlsx"
    write_run(path, record)
    loaded = read_run(path)
    assert len(loaded.epochs) == len(record.epochs) and loaded.params == record.params
    assert list(loaded.epochs.columns) == list(record.epochs.columns)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_every_method_records_its_own_metrics_and_no_other(tiny_data):
    expected = {
        "uniform": ["tau"],
        "reuse": ["tau"],
        "selective_backprop": ["selected_share"],
        "infobatch": ["pruned_share"],
    }
    for method, metrics in expected.items():
        record = train_run(tiny_spec(method, budget="0.5s"), tiny_data, progress=False)
        assert list(record.epochs.columns) == [*EPOCH_COLUMNS, *metrics], method


def test_budget_respected_and_clock_paused_during_evaluation(tiny_data, monkeypatch):
    real_evaluate = train_module.evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(0.3)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", slow_evaluate)
    started = time.perf_counter()
    record = train_run(tiny_spec("uniform", budget="1.5s"), tiny_data, progress=False)
    wall = time.perf_counter() - started
    epochs = len(record.epochs)
    final = record.epochs["train_seconds"].iloc[-1]
    assert 1.5 <= final < 1.5 + 0.5  # stops within an iteration of the budget
    assert epochs >= 2
    assert wall >= final + 0.3 * epochs  # the sleeping evaluations were not charged to the budget
    assert (record.epochs["eval_seconds"] >= 0.3).all()


def test_same_initial_weights_for_is_and_uniform(tiny_data, monkeypatch):
    captured = []
    real_build = training_setup.build_model

    def spy(name, classes, norm):
        model = real_build(name, classes, norm)
        captured.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    monkeypatch.setattr(training_setup, "build_model", spy)
    for method in ("upper_bound", "uniform"):
        train_run(tiny_spec(method, seed=5, budget="0.2s"), tiny_data, progress=False)
    train_run(tiny_spec("uniform", seed=6, budget="0.2s"), tiny_data, progress=False)
    assert all(torch.equal(captured[0][k], captured[1][k]) for k in captured[0])
    assert not all(torch.equal(captured[0][k], captured[2][k]) for k in captured[0])


def test_learning_rate_schedule_fractions():
    schedule = tiny_spec(lr=0.1, lr_gamma=0.2, lr_milestones=[0.5, 0.75]).lr
    assert schedule == LrSchedule(0.1, 0.2, (0.5, 0.75))
    assert schedule(0.0) == pytest.approx(0.1)
    assert schedule(0.49) == pytest.approx(0.1)
    assert schedule(0.5) == pytest.approx(0.02)
    assert schedule(0.8) == pytest.approx(0.004)
    scaled = tiny_spec(lr=0.1, lr_scale=0.1, lr_gamma=0.2, lr_milestones=[0.5, 0.75]).lr
    assert scaled(0.9) == pytest.approx(0.01 * 0.04)
    constant = tiny_spec(lr=0.04, lr_schedule="constant").lr
    assert constant(0.9) == pytest.approx(0.04)


def test_learning_rate_drops_at_the_right_budget_fractions_in_a_run(tiny_data):
    spec = tiny_spec(budget="3s", lr=0.1, lr_gamma=0.5, lr_milestones=[0.5, 0.75])
    record = train_run(spec, tiny_data, progress=False, clock=FakeClock(0.02))
    epochs = record.epochs
    # The lr of each row was set at the row's last iteration, whose time is under train_seconds.
    last_iteration = epochs["train_seconds"] - 0.02 * 2
    assert (epochs.loc[epochs["train_seconds"] < 1.5, "lr"] == 0.1).all()
    assert (epochs.loc[(last_iteration >= 1.5) & (epochs["train_seconds"] < 2.25), "lr"] == 0.05).all()
    assert (epochs.loc[last_iteration >= 2.25, "lr"] == 0.025).all()
    assert set(epochs["lr"]) == {0.1, 0.05, 0.025}


def exact_run(spec, data, **keywords):
    """A quiet run on a fake clock whose steps of 2**-6 s keep every time sum exact, so two runs (one of
    them interrupted and resumed) cross the budget and the lr milestones alike."""
    return train_run(spec, data, progress=False, clock=FakeClock(2**-6), **keywords)


def test_resume_after_a_kill_continues_to_the_same_record(tiny_data, tmp_path):
    # A fixed threshold: "auto" follows measured wall times, which no two runs share.
    spec = tiny_spec("upper_bound", budget="2.5s", checkpoint_every="0.01s", sampler={"tau_th": 1.0})
    # Clock steps of 2**-6 s keep every time sum exact, so both runs cross the lr milestones alike.
    uninterrupted = exact_run(spec, tiny_data)

    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(Killed):
        exact_run(spec, tiny_data, checkpoint_path=checkpoint, on_epoch=kill_at_epoch(3))
    assert checkpoint.is_file()
    assert len(torch.load(checkpoint, weights_only=True)["rows"]) == 2
    resumed = exact_run(spec, tiny_data, checkpoint_path=checkpoint)
    assert len(resumed.epochs) == len(uninterrupted.epochs) > 3
    assert resumed.epochs["total_iterations"].tolist() == uninterrupted.epochs["total_iterations"].tolist()
    assert resumed.epochs["test_accuracy"].tolist() == uninterrupted.epochs["test_accuracy"].tolist()
    assert resumed.epochs["scored_share"].tolist() == uninterrupted.epochs["scored_share"].tolist()
    assert 0 < resumed.scored_share < 1
    # A checkpoint of other parameters is not resumed.
    other_spec = tiny_spec("upper_bound", budget="1s", lr=0.05)
    other = train_run(other_spec, tiny_data, progress=False, clock=FakeClock(), checkpoint_path=checkpoint)
    assert other.epochs["lr"].iloc[0] == 0.05


def test_forced_low_threshold_switches_importance_sampling_on(tiny_data):
    record = train_run(tiny_spec("upper_bound", sampler={"tau_th": 0.5}), tiny_data, progress=False)
    assert record.scored_share > 0
    assert record.epochs["scored_share"].iloc[-1] > 0.5
    assert (record.epochs["tau_threshold"] == 0.5).all()
    assert record.epochs["time_presample_forward"].iloc[-1] > 0
    assert record.epochs["a"].iloc[-1] > 0


def test_uniform_run_never_importance_samples(tiny_data):
    record = train_run(tiny_spec("uniform", budget="1s"), tiny_data, progress=False)
    assert record.scored_share == 0
    assert (record.epochs["train_loss"] == record.epochs["train_loss_weighted"]).all()


def test_budget_clock_pauses():
    clock = FakeClock(1.0)
    budget = BudgetClock(10, clock=clock)
    budget.start()  # t = 0
    assert budget.elapsed == 1  # t = 1
    budget.pause()  # t = 2
    clock()
    clock()
    assert budget.elapsed == 2 and budget.shared() == 2 and budget.progress() == 0.2


def test_cuda_requested_without_a_gpu_is_a_clear_error(monkeypatch):
    from isample.experiment.config import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="train.device = 'cuda'"):
        training_setup.resolve_device("cuda")
    assert training_setup.resolve_device("auto").type == "cpu"


@pytest.mark.parametrize(
    "method, draw",
    [("upper_bound", "with_replacement"), ("upper_bound", "without_replacement"), ("uniform", "with_replacement")],
)
def test_divergence_ends_the_run_as_a_record(tiny_data, method, draw, capsys):
    spec = tiny_spec(method, lr=1000.0, lr_schedule="constant", sampler={"tau_th": 0.5, "draw": draw})
    # A clock of fixed steps: the same iterations whatever the machine's speed (~60 before the budget ends).
    record = train_run(spec, tiny_data, progress=False, clock=FakeClock(2**-7))
    match = re.fullmatch(r"diverged at epoch (\d+), iteration (\d+), lr 1000", record.status)
    assert match, record.status
    epoch, iteration = int(match[1]), int(match[2])
    # Up to the epoch it diverged in, evaluated as it stands; an epoch that diverged at its first
    # iteration trained nothing and has no row.
    assert len(record.epochs) in (epoch, epoch - 1)
    assert record.epochs["total_iterations"].iloc[-1] == iteration - 1  # the iterations that did run
    assert record.params["status"] == record.status
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{method} seed 0: {record.status}; the record keeps its {len(record.epochs)} epoch(s)"]


@pytest.mark.parametrize("method", ["upper_bound", "infobatch"])
def test_a_stop_request_mid_epoch_saves_and_the_rerun_continues_to_the_same_record(tiny_data, tmp_path, method):
    # As a scheduler's SIGTERM: the run stops after an iteration in the middle of an epoch, its
    # checkpoint keeps that epoch's totals, and the rerun's record is the uninterrupted one.
    spec = tiny_spec(method, budget="2.5s", checkpoint_every="1h", sampler={"tau_th": 1.0})
    uninterrupted = exact_run(spec, tiny_data)
    polls = iter(range(10**6))
    checkpoint = tmp_path / "seed0.pt"
    with pytest.raises(train_module.Preempted):
        exact_run(
            spec,
            tiny_data,
            checkpoint_path=checkpoint,
            stop_requested=lambda: next(polls) == 21,  # polled once per iteration and once per epoch
        )
    saved = torch.load(checkpoint, weights_only=True)
    assert 0 < saved["epoch_in_progress"]["done"] < saved["epoch_in_progress"]["length"]  # mid-epoch
    assert len(saved["rows"]) < len(uninterrupted.epochs)
    resumed = exact_run(spec, tiny_data, checkpoint_path=checkpoint)
    columns = ["total_iterations", "lr", "train_loss", "test_accuracy", "scored_share", "train_seconds"]
    assert resumed.epochs[columns].equals(uninterrupted.epochs[columns])


def test_a_diverged_run_stays_diverged_when_resumed(tiny_data, tmp_path):
    spec = tiny_spec(lr=1000.0, lr_schedule="constant")
    checkpoint = tmp_path / "seed0.pt"
    first = train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint, clock=FakeClock(2**-7))
    again = train_run(spec, tiny_data, progress=False, checkpoint_path=checkpoint, clock=FakeClock(2**-7))
    assert again.status == first.status != "completed"
    assert again.epochs["total_iterations"].tolist() == first.epochs["total_iterations"].tolist()


def test_resume_says_what_it_resumed_in_one_line_and_tqdm_stays_quiet(tiny_data, tmp_path, capfd):
    spec = tiny_spec(seed=3, budget="1s", checkpoint_every="0.01s")
    checkpoint = tmp_path / "seed0.pt"
    train_run(spec, tiny_data, progress=True, clock=FakeClock(2**-6), checkpoint_path=checkpoint)
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "clamping frac" warning would fail here
        record = train_run(spec, tiny_data, progress=True, clock=FakeClock(2**-6), checkpoint_path=checkpoint)
    captured = capfd.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines == [
        f"resumed uniform 1s seed 3 from {checkpoint}: epoch {len(record.epochs)}, "
        f"{record.epochs['train_seconds'].iloc[-1]:.1f} s of training done"
    ]
    assert "Bar(" not in captured.err and "Warning" not in captured.err


@pytest.mark.parametrize("content", [b"not a checkpoint at all", "pickle"])
def test_a_damaged_or_foreign_checkpoint_is_reported_and_ignored(tiny_data, tmp_path, capsys, content):
    checkpoint = tmp_path / "seed0.pt"
    if content == "pickle":  # a file that would run code if loaded with weights_only=False
        torch.save({"key": "x", "payload": Exploit()}, checkpoint)
    else:
        checkpoint.write_bytes(content)
    record = train_run(tiny_spec(budget="0.3s"), tiny_data, progress=False, checkpoint_path=checkpoint)
    assert record.epochs["epoch"].iloc[0] == 1  # started fresh
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"ignoring checkpoint {checkpoint}: ")
    assert "starting fresh" in out[0]
    assert torch.load(checkpoint, weights_only=True)["rows"]  # replaced by this run's own checkpoint


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_without_a_terminal_progress_is_one_short_line_per_epoch(tiny_data, capfd):
    """Output to a file or a pipe (CI, nohup, a queue's log): no tqdm frames, a line an epoch."""
    record = train_run(tiny_spec(seed=2, budget="1s"), tiny_data, progress=True, clock=FakeClock(2**-6))
    err = capfd.readouterr().err.strip().splitlines()  # pytest's capture is not a terminal
    assert len(err) == len(record.epochs) and "\r" not in "".join(err) and "%|" not in "".join(err)
    assert err[0] == f"train uniform 1s seed 2: epoch 1, {record.epochs['train_seconds'].iloc[0]:.0f}/1 s, " + (
        f"test accuracy {record.epochs['test_accuracy'].iloc[0]:.4f}"
    )


def test_on_a_terminal_progress_is_a_tqdm_bar(tiny_data):
    display = train_module.Display(tiny_spec(budget="1s"), 0.0, enabled=True, terminal=True)
    assert display.bar is not None and display.bar.total == 1.0
    display.close()
    assert train_module.Display(tiny_spec(budget="1s"), 0.0, enabled=True, terminal=False).bar is None


def test_the_final_accuracy_is_measured_on_the_whole_test_set(tiny_data, monkeypatch):
    """Every epoch evaluates the curve subset and the training-set subset; the record's final accuracy,
    the whole test set."""
    from isample.experiment.data import subset

    data = subset(tiny_data, 0, 40)
    sizes, evaluate = [], train_module.evaluate

    def recording(model, x, *rest, **keywords):
        sizes.append(len(x))
        return evaluate(model, x, *rest, **keywords)

    monkeypatch.setattr(train_module, "evaluate", recording)
    record = train_run(tiny_spec("uniform"), data, progress=False, clock=FakeClock(2**-7))
    assert sizes == [40, 64] * len(record.epochs) + [data.test_size] and data.test_size == 120
    assert record.params["test_examples"] == "120" and record.params["curve_test_examples"] == "40"
    assert record.params["train_set_examples"] == "64"
    assert record.final_accuracy == float(record.params["final_test_accuracy"])
    assert 120 * record.final_accuracy == pytest.approx(round(120 * record.final_accuracy))
