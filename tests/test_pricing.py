import math

import pytest

from isample.methods.catalog import RhoLossOptions, SelectiveBackpropOptions, UpperBoundOptions
from isample.methods.rho_loss import candidate_count
from isample.pricing import Prices, Work
from isample.trainer import Trainer
from tests.common import toy_problem, toy_sampler

PRICES = Prices(forward=0.0003, backward=0.0005, iteration=0.005, score=0.0002)


def test_a_price_must_be_a_positive_number_and_only_the_score_may_be_zero():
    assert Prices(1e-4, 2e-4, 1e-3, 0.0).score == 0  # a free presample
    for bad, message in [
        (dict(forward=0.0), "forward = 0.0: must be a number of seconds > 0"),
        (dict(backward=-1e-4), "backward = -0.0001"),
        (dict(iteration=True), "iteration = True"),
        (dict(score=-1e-9), "score = -1e-09: must be a number of seconds >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            Prices(**{"forward": 1e-4, "backward": 2e-4, "iteration": 1e-3, "score": 1e-4, **bad})


def test_seconds_are_the_work_at_its_prices():
    work = Work(forward=64, backward=64, iterations=2, scored=256)
    assert PRICES.seconds(work) == pytest.approx(64 * 0.0003 + 64 * 0.0005 + 2 * 0.005 + 256 * 0.0002)
    assert PRICES.train_step(32) == pytest.approx(32 * 0.0008 + 0.005)
    assert PRICES.presample_share(64, 32) == pytest.approx(64 * 0.0002 / PRICES.train_step(32))


@pytest.mark.parametrize("a", [0.0, 0.1, 0.53, 2.0])
def test_a_stated_presample_share_is_what_the_prices_then_charge(a):
    stated = PRICES.with_presample_share(a, 96, 32)
    assert stated.presample_share(96, 32) == pytest.approx(a, abs=1e-12)
    assert (stated.forward, stated.backward, stated.iteration) == (PRICES.forward, PRICES.backward, PRICES.iteration)
    assert stated.seconds(Work(32, 32, 1, 96)) == pytest.approx((1 + a) * PRICES.train_step(32))
    with pytest.raises(ValueError, match="a = -0.1: must be >= 0"):
        PRICES.with_presample_share(-0.1, 96, 32)


def _work(method, options=None, iterations=40, **keywords):
    with toy_sampler(method, options, **keywords) as trainer:
        trainer.start_epoch()
        steps = [trainer.step() for _ in range(iterations)]
        return trainer, [step.work for step in steps]


@pytest.mark.parametrize("method", ["uniform", "reuse", "infobatch"])
def test_methods_without_forwards_of_their_own_do_a_training_step_of_work(method):
    _, work = _work(method)
    assert all(w == Work(forward=32, backward=32, iterations=1, scored=0) for w in work)


@pytest.mark.parametrize("presample", [1, 2, 3.5])
def test_importance_sampling_scores_its_whole_presample_every_iteration_it_is_on(presample):
    options = UpperBoundOptions(presample=presample, always_importance=True, forward_chunk=24)
    _, work = _work("upper_bound", options)
    assert all(w == Work(32, 32, 1, round(presample * 32)) for w in work)


def test_importance_sampling_held_off_counts_the_chunks_it_samples_tau_on():
    options = UpperBoundOptions(tau_threshold=100.0, tau_source="scoring", forward_chunk=24)
    _, work = _work("upper_bound", options, iterations=50)
    sampled = [i for i in range(50) if i == 1 or (i > 1 and i % 16 == 0)]  # upper_bound's TAU_EVERY
    assert [i for i, w in enumerate(work) if w.scored] == sampled
    assert {w.scored for w in work if w.scored} == {22}  # one chunk: B = 64 in round(64 / 24) = 3 chunks of 22
    assert all(w.forward == w.backward == 32 and w.iterations == 1 for w in work)


def test_selective_backprop_scores_every_candidate_it_considered_after_priming():
    trainer, work = _work("selective_backprop", SelectiveBackpropOptions(prime_passes=1), iterations=120, n=640)
    method = trainer.method
    primed = 640 // 32 * 32
    assert sum(w.scored for w in work[: 640 // 32]) == 0
    assert sum(w.scored for w in work) == method.candidates_seen - primed > 0
    assert all(w.forward == 32 for w in work)


def test_rho_loss_scores_its_candidates_every_iteration():
    _, work = _work("rho_loss", RhoLossOptions(selection=0.1), iterations=5)
    assert all(w == Work(32, 32, 1, candidate_count(32, 0.1)) for w in work)


@pytest.mark.parametrize("a", [0.0, 0.25])
def test_under_a_priced_clock_importance_sampling_weighs_its_priced_a_and_times_nothing_for_it(a):
    prices = PRICES.with_presample_share(a, 64, 32)
    model, optimizer, x, y = toy_problem()
    options = UpperBoundOptions(presample=2)
    with Trainer("upper_bound", model, optimizer, x, y, 32, options=options, seed=0, prices=prices) as trainer:
        trainer.start_epoch()
        metrics = [trainer.step().metrics for _ in range(60)]
    assert all(m["a"] == pytest.approx(a) and m["tau_threshold"] == pytest.approx(1 + a) for m in metrics)
    assert not trainer.method._probes  # no probe of the presample's cost was timed
    # Without prices, the same run measures its a (the 2018 default before that).
    with toy_sampler("upper_bound", options) as measured:
        measured.start_epoch()
        last = [measured.step().metrics for _ in range(60)][-1]
    assert math.isfinite(last["a"]) and last["a"] != pytest.approx(a)


def test_work_is_counted_per_iteration_not_accumulated():
    _, work = _work("upper_bound", UpperBoundOptions(always_importance=True), iterations=3)
    assert [w.iterations for w in work] == [1, 1, 1]
    total = Work()
    for w in work:
        total.add(w)
    assert total.as_dict() == {"forward": 96, "backward": 96, "iterations": 3, "scored": 192}
