import copy
import math
import time

import pytest
import torch

from isample import costmodel
from isample.methods import switching
from isample.phases import PHASES
from isample.sampling import variance_reduction
from isample.scores import gnorm_upper_bound
from isample.trainer import ImportanceSampler, Trainer, UniformSampler
from tests.common import toy_problem


def test_same_seed_same_draws_and_same_training():
    runs = []
    for _ in range(2):
        model, optimizer, x, y = toy_problem()
        sampler = ImportanceSampler(
            model, optimizer, x, y, 32, presample=3, tau_threshold=0.9, generator=torch.Generator().manual_seed(7)
        )
        runs.append([sampler.step() for _ in range(60)])
    assert any(it.used_importance for it in runs[0])
    for first, second in zip(*runs):
        assert torch.equal(first.indices, second.indices)
        assert first.used_importance == second.used_importance
        assert first.weighted_loss.item() == second.weighted_loss.item()


def test_importance_switches_on_and_off_with_tau_against_threshold():
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 32, presample=3, tau_threshold=1.2)
    decisions = []
    for _ in range(300):
        tau_before = sampler.tau
        decisions.append((tau_before > 1.2, sampler.step().used_importance))
    assert all(expected == used for expected, used in decisions)
    assert not decisions[0][1], "tau starts at 0: the first iteration is uniform"
    assert any(used for _, used in decisions), "tau never exceeded the threshold on a learnable task"
    sampler.tau = 1.1  # below the threshold again: back to uniform
    assert not sampler.step().used_importance


def test_importance_step_trains_on_presampled_examples_with_weights():
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 16, presample=4, tau_threshold=0.0)
    sampler.tau = 1.0
    it = sampler.step()
    assert it.used_importance
    assert it.indices.shape == (16,) and it.weights.shape == (16,)
    assert (it.weights > 0).all() and not torch.all(it.weights == 1)
    assert it.phases["presample_forward"] > 0 and it.phases["draw_presample"] > 0
    assert set(it.phases) == set(PHASES)


class FakeClock:
    """time.perf_counter that moves only when a model's forward says so: the times the sampler
    measures are then exactly known, whatever else runs on the machine."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class SlowForwardNet(torch.nn.Module):
    """A model whose forward costs a known time per call on the fake clock (the rest costs none)."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.clock, self.seconds = clock, seconds

    def forward(self, x):
        self.clock.now += self.seconds
        return self.linear(x)


@pytest.mark.parametrize("presample", [2, 3])
@pytest.mark.parametrize("score_mode", ["eval", "batch"])
def test_auto_threshold_follows_measured_a(presample, score_mode, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    torch.manual_seed(0)
    model = SlowForwardNet(clock, 0.03)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(500, 4), torch.randint(3, (500,))
    b = 8
    sampler = ImportanceSampler(model, optimizer, x, y, b, presample=presample, forward_chunk=b, score_mode=score_mode)
    assert sampler.tau_threshold == pytest.approx(costmodel.default_tau_threshold(presample * b, b))
    sampler.step()
    assert math.isnan(sampler.a)  # nothing about the presample measured yet: the 2018 default stays
    it = sampler.step()  # probes one chunk's scoring forward before deciding, scaled to p chunks
    assert not it.used_importance
    # p chunk forwards of 30 ms against one training forward of 30 ms, far from the 2018 default a = p / 3.
    assert it.a == pytest.approx(presample, rel=1e-6)
    assert it.tau_threshold == pytest.approx(costmodel.tau_threshold(it.a))
    sampler.method._deciding_speedup = lambda: math.inf  # force IS so real presamples get timed
    for _ in range(15):
        it = sampler.step()
    assert it.used_importance
    assert it.a == pytest.approx(presample, rel=1e-6)
    assert it.tau_threshold == pytest.approx(costmodel.tau_threshold(it.a))


def batchnorm_problem():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = 5 + 3 * torch.randn(300, 6), torch.randint(3, (300,))
    return model, optimizer, x, y


@pytest.mark.parametrize("score_mode", ["eval", "batch"])
def test_presample_forward_leaves_model_in_train_mode_and_batchnorm_untouched(score_mode):
    model, optimizer, x, y = batchnorm_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 10, presample=5, forward_chunk=7, score_mode=score_mode)
    model(x[:50])  # running statistics away from their initial values
    model.train()
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    scores = sampler.method.presample_scores(x[:50], y[:50])
    assert scores.shape == (50,)
    assert model.training and model[1].training and model[1].track_running_stats
    for key, value in model[1].state_dict().items():
        assert torch.equal(value, before[key]), key
    # A real training forward does change the running statistics (the check can fail).
    model(x[:50])
    assert not torch.equal(model[1].running_mean, before["running_mean"])
    assert model[1].num_batches_tracked == before["num_batches_tracked"] + 1


def test_batch_mode_scores_are_the_training_forwards_and_eval_mode_ones_differ():
    model, optimizer, x, y = batchnorm_problem()
    model(x)  # running statistics of the whole set, which no chunk of 10 matches exactly
    b = 10
    batch = ImportanceSampler(model, optimizer, x, y, b, presample=3, score_mode="batch", presample_bf16=False)
    scores = batch.method.presample_scores(x[:30], y[:30])
    assert batch.method.chunks(30) == 3
    with torch.no_grad():  # what the training forward computes on each chunk of b
        expected = torch.cat([gnorm_upper_bound(model(x[i : i + b]), y[i : i + b]) for i in range(0, 30, b)])
    torch.testing.assert_close(scores, expected)
    evaluation = ImportanceSampler(model, optimizer, x, y, b, presample=3, score_mode="eval")
    assert not torch.allclose(evaluation.method.presample_scores(x[:30], y[:30]), expected, atol=1e-3)


@pytest.mark.parametrize("score_mode", ["eval", "batch"])
def test_a_model_without_batchnorm_works_in_both_modes(score_mode):
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 32, presample=2, tau_threshold=0.0, score_mode=score_mode)
    sampler.tau = 1.0
    assert all(sampler.step().used_importance for _ in range(5))


def is_held_off(model, optimizer, x, y, score_mode: str, tau_source: str) -> ImportanceSampler:
    """b = 10, B = 30, a threshold tau never reaches, and no averaging: each tau is its last sample."""
    return ImportanceSampler(
        model,
        optimizer,
        x,
        y,
        10,
        presample=3,
        score_mode=score_mode,
        tau_threshold=1e9,
        tau_momentum=0.0,
        tau_source=tau_source,
    )


@pytest.mark.parametrize("score_mode", ["eval", "batch"])
def test_with_is_off_the_training_tau_comes_free_from_the_training_forward(score_mode):
    """tau_source: training, the 2018 code's choice: no scoring forward while IS is off."""
    model, optimizer, x, y = batchnorm_problem()
    model(x)
    before = copy.deepcopy(model)
    sampler = is_held_off(model, optimizer, x, y, score_mode, "training")
    it = sampler.step()
    assert not it.used_importance and it.phases["presample_forward"] == 0
    with torch.no_grad():  # the training forward: train mode, the weights before the step
        expected = variance_reduction(gnorm_upper_bound(before.train()(x[it.indices]), y[it.indices]))
    assert it.tau == pytest.approx(expected, rel=1e-5)
    assert sampler.method.metrics()["tau_training"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("score_mode", ["eval", "batch"])
def test_with_is_off_the_deciding_tau_is_the_trained_batch_scored_as_a_presample_is(score_mode):
    """tau_source: scoring: every TAU_EVERY iterations, from the second, the batch just trained is
    scored in the presample's mode; the training forward's tau is still recorded."""
    model, optimizer, x, y = batchnorm_problem()
    model(x)
    sampler = is_held_off(model, optimizer, x, y, score_mode, "scoring")
    first = sampler.step()
    assert first.phases["presample_forward"] == 0 and sampler.method.tau_samples == 0
    before = copy.deepcopy(model)
    second = sampler.step()  # sampled after its step, with the weights it left
    assert second.phases["presample_forward"] > 0 and not second.used_importance
    scorer = copy.deepcopy(model).train(score_mode == "batch")  # a copy: batch statistics change no buffer here
    with torch.no_grad():
        expected = variance_reduction(gnorm_upper_bound(scorer(x[second.indices]), y[second.indices]))
        training = variance_reduction(gnorm_upper_bound(before.train()(x[second.indices]), y[second.indices]))
    assert second.tau == pytest.approx(expected, rel=1e-4)
    assert sampler.method.metrics()["tau_training"] == pytest.approx(training, rel=1e-4)
    if score_mode == "eval":  # running statistics against the batch's own: another tau
        assert second.tau != pytest.approx(training, rel=1e-3)
    for _ in range(switching.TAU_EVERY - 2):  # no sample until the next multiple of TAU_EVERY
        assert sampler.step().phases["presample_forward"] == 0
    assert sampler.step().phases["presample_forward"] > 0 and sampler.method.tau_samples == 2


def test_weighted_train_accuracy_undoes_the_sampling_bias():
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 32, presample=4, tau_threshold=0.0)
    sampler.tau = 1.0
    it = sampler.step()
    assert it.used_importance and not torch.all(it.weights == 1)
    # The accuracy is that of the model before its step, on the trained examples: recompute it from
    # the plain count only when all weights are equal; here check the formula's range and type.
    assert 0 <= it.accuracy_weighted.item() <= 1
    uniform = UniformSampler(*toy_problem()[:4], 32)
    step = uniform.step()
    assert step.accuracy_weighted.item() == pytest.approx(step.correct.item() / 32)


def test_uniform_sampler_tracks_tau_and_uses_unit_weights():
    model, optimizer, x, y = toy_problem()
    sampler = UniformSampler(model, optimizer, x, y, 32)
    its = [sampler.step() for _ in range(50)]
    assert not any(it.used_importance for it in its)
    assert all(torch.all(it.weights == 1) for it in its)
    assert its[-1].tau > 0.5
    assert its[-1].weighted_loss.item() == pytest.approx(its[-1].plain_loss.item())


def test_timing_off_reports_no_phases():
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 32, timing=False)
    assert sampler.step().phases is None


@pytest.mark.parametrize(
    "module, old_name, new", [("isample.sampler", "Sampler", Trainer), ("isample.loop", "BatchSelector", None)]
)
def test_each_old_module_is_a_re_export_that_warns_once(module, old_name, new):
    import importlib
    import sys
    import warnings

    from isample.selector import BatchSelector

    sys.modules.pop(module, None)  # as in a process that has not imported it yet
    with pytest.warns(DeprecationWarning, match="is now isample"):
        old = importlib.import_module(module)
    assert getattr(old, old_name) is (new or BatchSelector)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module(module)  # imported already: no second warning


def test_old_names_still_work_and_warn():
    model, optimizer, x, y = toy_problem()
    import sys

    sys.modules.pop("isample.sampler", None)
    with pytest.warns(DeprecationWarning, match="Trainer"):
        from isample import Sampler
    old = Sampler("uniform", model, optimizer, x, y, 32, seed=3)
    assert isinstance(old, Trainer)
    it = old.step()
    with pytest.warns(DeprecationWarning, match="weighted_loss"):
        assert it.loss is it.weighted_loss


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"presample": 0.5}, "presample = 0.5: must be 'auto' or >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"presample": 100}, "larger than the data set"),
        ({"tau_threshold": "sometimes"}, "tau_threshold = 'sometimes': must be"),
        ({"score": "entropy"}, "unknown score"),
        ({"forward_chunk": -1}, "forward_chunk"),
        ({"score_mode": "train"}, "score_mode = 'train': must be one of eval, batch"),
        ({"smoothing": 1.0}, r"smoothing = 1.0: must be in \[0, 1\)"),
        ({"smoothing": -0.5}, r"smoothing = -0.5: must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    model, optimizer, x, y = toy_problem()
    arguments = {"batch_size": 32, **kwargs}
    with pytest.raises(ValueError, match=message):
        ImportanceSampler(model, optimizer, x, y, **arguments)


def test_state_dict_round_trip_reproduces_the_next_draws():
    model, optimizer, x, y = toy_problem()
    sampler = ImportanceSampler(model, optimizer, x, y, 32, tau_threshold=1.05)
    for _ in range(20):
        sampler.step()
    state = sampler.state_dict()
    expected = [sampler.step().indices for _ in range(5)]
    sampler.load_state_dict(state)
    assert all(torch.equal(sampler.step().indices, e) for e in expected)


def test_bf16_presample_scores_stay_within_bf16_differences():
    model, optimizer, x, y = toy_problem()
    exact = ImportanceSampler(model, optimizer, x, y, 32, presample=4, presample_bf16=False)
    bf16 = ImportanceSampler(model, optimizer, x, y, 32, presample=4, presample_bf16=True)
    reference = exact.method.presample_scores(x[:128], y[:128])
    approximate = bf16.method.presample_scores(x[:128], y[:128])
    assert approximate.dtype == torch.float32
    difference = (approximate - reference).abs().max().item()
    assert 0 < difference < 0.05  # bf16 keeps 8 bits of mantissa: differences of a few 1e-3 in the bound


class _Listed(torch.utils.data.Dataset):
    """The toy problem as a dataset read item by item; one index can be made unreadable."""

    def __init__(self, x, y, broken=None):
        self.x, self.y, self.broken = x, y, broken

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        if index == self.broken:
            raise OSError(f"cannot read example {index}")
        return self.x[index], int(self.y[index])


@pytest.mark.parametrize("method", ["uniform", "upper_bound", "reuse"])
def test_a_dataset_read_by_workers_trains_exactly_as_the_tensors_do(method):
    from isample.trainer import Trainer

    runs = []
    for workers in (None, 2):
        model, optimizer, x, y = toy_problem(n=600)
        inputs, targets = (x, y) if workers is None else (_Listed(x, y), None)
        sampler = Trainer(
            method,
            model,
            optimizer,
            inputs,
            targets,
            32,
            workers=workers or 0,
            generator=torch.Generator().manual_seed(4),
        )
        steps = [sampler.step() for _ in range(25)]
        runs.append((steps, model))
    (memory, memory_model), (loaded, loaded_model) = runs
    assert all(torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights) for a, b in zip(memory, loaded))
    assert all(torch.equal(a, b) for a, b in zip(memory_model.parameters(), loaded_model.parameters()))
    assert all(it.phases["data_loading"] > 0 for it in loaded) and all(it.phases["data_loading"] == 0 for it in memory)


def test_an_unreadable_example_is_one_line_from_the_worker():
    from isample.trainer import Trainer

    model, optimizer, x, y = toy_problem(n=100)
    with Trainer("uniform", model, optimizer, _Listed(x, y, broken=7), None, 100, workers=2) as sampler:
        with pytest.raises(OSError) as caught:
            sampler.step()
    assert str(caught.value) == "cannot read example 7"
