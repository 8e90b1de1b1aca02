"""presample: auto: the ratio chosen while training, estimated from what was scored, unbiased at every B."""

import copy
import math
import time

import pytest
import torch

from isample.methods.catalog import UpperBoundOptions
from isample.methods.presample_ratio import (
    PROBE_EVERY,
    RatioChoice,
    best_ratio,
    candidate_ratios,
    subsample_tau_squares,
)
from isample.pricing import Prices
from isample.sampling import variance_reduction
from isample.trainer import ImportanceSampler, Trainer, UniformSampler
from tests.common import toy_problem, toy_sampler
from tests.test_trainer import FakeClock, SlowForwardNet


def test_candidates_run_from_2_to_the_bound():
    assert candidate_ratios(8) == (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    assert candidate_ratios(3.5) == (2.0, 3.0, 3.5)
    with pytest.raises(ValueError, match="presample_max = 1.5: must be >= 2"):
        candidate_ratios(1.5)


def heavy_tailed(size: int, generator: torch.Generator) -> torch.Tensor:
    """Scores most of which are alike and a few far larger (a memorised training set's)."""
    return torch.rand(size, generator=generator) + 50.0 * (torch.rand(size, generator=generator) < 0.01)


def test_a_subsample_of_the_scored_presample_estimates_tau_of_a_fresh_smaller_presample():
    """Monte Carlo: tau of p' b of a scored presample of 8b has the distribution of tau of a fresh presample
    of p' b; with a heavy tail it grows with the ratio, which is what lets the choice see a larger B pay."""
    generator, b, draws = torch.Generator().manual_seed(0), 16, 4000
    ratios = (2.0, 4.0, 8.0)
    subsampled = {ratio: [] for ratio in ratios}
    fresh = {ratio: [] for ratio in ratios}
    for _ in range(draws):
        for ratio, square in subsample_tau_squares(heavy_tailed(8 * b, generator), b, ratios, generator).items():
            subsampled[ratio].append(math.sqrt(square))
        for ratio in ratios:
            fresh[ratio].append(variance_reduction(heavy_tailed(round(ratio * b), generator)))
    means = {}
    for ratio in ratios:
        mine, theirs = torch.tensor(subsampled[ratio]), torch.tensor(fresh[ratio])
        error = (mine.var() / draws + theirs.var() / draws).sqrt()
        assert abs(mine.mean() - theirs.mean()) < 4 * error, ratio
        means[ratio] = float(theirs.mean())
    assert means[2.0] < means[4.0] < means[8.0]  # the test could tell the sizes apart
    whole = heavy_tailed(8 * b, generator)
    square = subsample_tau_squares(whole, b, ratios, generator)[8.0]
    assert math.sqrt(square) == pytest.approx(variance_reduction(whole))
    assert set(subsample_tau_squares(whole[: 4 * b], b, ratios, generator)) == {2.0, 4.0}  # only what it holds


def test_the_best_ratio_weighs_tau_against_its_price():
    taus = {2.0: 1.2, 3.0: 1.5, 4.0: 1.6}
    assert best_ratio(taus, lambda p: 0.05 * p) == pytest.approx((4.0, 1.6 / 1.2))
    ratio, speedup = best_ratio(taus, lambda p: 0.3 * p)
    assert ratio == 3.0 and speedup == pytest.approx(1.5 / 1.9) and speedup < 1  # IS would be off
    assert best_ratio({2.0: 1.1, 3.0: 1.1}, lambda p: 0.0)[0] == 2.0  # a tie goes to the cheaper


def test_the_choice_probes_the_bound_then_trains_at_the_best_and_forgets_when_off():
    choice = RatioChoice(4, momentum=0.0)
    assert choice.presample_ratio() == 4.0  # nothing measured at the bound yet
    choice.observe({2.0: 1.2, 3.0: 1.5, 4.0: 1.6})
    assert choice.choose(1.2, lambda p: 0.05 * p) == pytest.approx((4.0, 1.6 / 1.2))
    assert choice.choose(1.2, lambda p: 0.3 * p)[0] == 3.0
    for _ in range(PROBE_EVERY - 1):
        assert choice.presample_ratio() == 3.0
        choice.observe({2.0: 1.4, 3.0: 1.4 * 1.5 / 1.2})  # tau rose: ratios 2 and 3 are measured again
    assert choice.presample_ratio() == 4.0  # the 50th IS iteration from the last probe: probe the bound
    # The bound's estimate follows the fresher tau(2) by the gain measured at its probe (1.6 / 1.2).
    assert choice.estimate(4.0, 1.4) == pytest.approx(1.4 * 1.6 / 1.2)
    assert choice.estimate(2.0, 1.4) == 1.4  # the smallest ratio's gain is 1, exactly
    state = choice.state_dict()
    choice.off()
    assert choice.estimate(4.0, 1.3) == choice.estimate(2.0, 1.3) == 1.3  # one tau for every ratio
    assert choice.choose(1.3, lambda p: 0.1 * p)[0] == 2.0  # so the cheapest wins: the fixed rule at p = 2
    choice.load_state_dict(state)
    assert choice.estimate(4.0, 1.4) == pytest.approx(1.4 * 1.6 / 1.2)


def test_weighted_draws_stay_unbiased_while_the_ratio_changes():
    """Monte Carlo over the data set: each iteration at another presample ratio (probes included), the
    weighted mean of any per-example value estimates its mean over all examples; the plain one does not."""
    sampler = toy_sampler("upper_bound", UpperBoundOptions(presample="auto", presample_max=5), n=400, batch_size=16)
    method, y = sampler.method, sampler.context.examples.targets
    method.score_function = lambda logits, targets: (targets.float() + 0.2) ** 2  # scores far apart, by class
    f = (y.float() + 0.2) ** 2 + torch.randn(len(y), generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    weighted, plain, sizes = [], [], set()
    method.estimate.moments, method.tau_threshold = [0.0, 1.0], 0.0  # a speed-up above any threshold: IS on
    method.choice.gains = dict.fromkeys(method.choice.ratios[1:], 1.0)
    for _ in range(3000):
        method.choice.ratio = method.choice.ratios[int(torch.randint(4, (), generator=generator))]
        method.choice.since_probe = int(torch.randint(PROBE_EVERY, (), generator=generator))
        selection = method.select()
        assert selection.by_score
        sizes.add(method._ratio_used)
        weighted.append((selection.weights * f[selection.indices]).mean())
        plain.append(f[selection.indices].mean())
    weighted, plain = torch.stack(weighted).double(), torch.stack(plain).double()
    error = weighted.std() / len(weighted) ** 0.5
    assert sizes == {2.0, 3.0, 4.0, 5.0}
    assert abs(weighted.mean() - f.double().mean()) < 4 * error
    assert abs(plain.mean() - f.double().mean()) > 20 * error  # the unweighted mean is biased: the test can fail


def priced(presample, score_price: float, steps: int = 120, **options):
    """Without replacement: the draw whose predicted speed-up is above 1 wherever the scores differ."""
    options = {"draw": "without_replacement", **options}
    model, optimizer, x, y = toy_problem(n=2000)
    sampler = ImportanceSampler(
        model,
        optimizer,
        x,
        y,
        32,
        presample=presample,
        generator=torch.Generator().manual_seed(0),
        prices=Prices(forward=1e-4, backward=2e-4, iteration=1e-3, score=score_price),
        **options,
    )
    return [sampler.step() for _ in range(steps)]


def test_while_is_is_off_auto_decides_as_the_fixed_rule_at_p_2():
    """Priced, deterministic: auto and fixed p = 2 train the same batches until IS first goes on, at the same
    iteration; auto then presamples at its bound first (a probe), scoring what it trains at."""
    fixed, auto = priced(2, 1e-5), priced("auto", 1e-5, presample_max=4)
    on = next(i for i, it in enumerate(fixed) if it.by_score)
    assert 0 < on < len(fixed) - 1
    assert next(i for i, it in enumerate(auto) if it.by_score) == on
    assert all(torch.equal(f.indices, a.indices) for f, a in zip(fixed[:on], auto[:on], strict=True))
    assert auto[on].metrics["presample_ratio"] == 4.0 and auto[on].work.scored == 4 * 32
    trained_at = {it.metrics["presample_ratio"] for it in auto[on:] if it.by_score}
    assert trained_at <= {2.0, 3.0, 4.0}
    assert all(it.work.scored == it.metrics["presample_ratio"] * 32 for it in auto[on:] if it.by_score)
    assert all(math.isnan(it.metrics["presample_ratio"]) for it in auto if not it.by_score)
    assert "presample_ratio" not in fixed[0].metrics  # a fixed ratio's records are as before


def test_a_costlier_presample_keeps_is_off_and_free_scoring_turns_it_on_at_once():
    assert not any(it.by_score for it in priced("auto", 1.0, steps=40))  # a(2) = 64 s / 0.01 s
    assert all(it.by_score for it in priced("auto", 1e-12, steps=40, presample_max=3)[1:])


def test_auto_resumes_from_its_state_to_the_same_draws():
    model, optimizer, x, y = toy_problem()
    prices = Prices(forward=1e-4, backward=2e-4, iteration=1e-3, score=1e-6)
    sampler = ImportanceSampler(
        model, optimizer, x, y, 32, presample="auto", presample_max=4, prices=prices, draw="without_replacement"
    )
    for _ in range(60):
        sampler.step()
    assert sampler.method.choice.gains and sampler.method.choice.since_probe > 0  # IS on, between probes
    state, weights = sampler.state_dict(), copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    expected = [(sampler.step().indices, sampler.method.presample_size) for _ in range(PROBE_EVERY)]
    sampler.load_state_dict(state)
    model.load_state_dict(weights[0])
    optimizer.load_state_dict(weights[1])
    assert all(
        torch.equal(sampler.step().indices, indices) and sampler.method.presample_size == size
        for indices, size in expected
    )


def test_on_the_wall_clock_a_follows_the_chosen_ratio_and_probes_at_the_bound_price_it_alike(monkeypatch):
    """Measured times (a fake clock: each forward of a chunk of b costs 30 ms, nothing else costs): a presample
    of p b costs p training forwards, so a at the chosen ratio is p, whichever ratio each time was taken at
    (the probes at the bound are rescaled to the current presample)."""
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    torch.manual_seed(0)
    model, b = SlowForwardNet(clock, 0.03), 8
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(500, 4), torch.randint(3, (500,))
    sampler = ImportanceSampler(
        model, optimizer, x, y, b, presample="auto", presample_max=4, forward_chunk=b, always_importance=True
    )
    steps, chosen = [], []
    for _ in range(2 * PROBE_EVERY + 5):
        steps.append(sampler.step())
        chosen.append(sampler.method.presample_size / b)
    assert {it.metrics["presample_ratio"] for it in steps} == {2.0, 4.0}  # probes, then the chosen ratio
    assert [it.a for it in steps[2:]] == pytest.approx(chosen[2:], rel=1e-6)  # the first pays one-off costs
    assert sampler.method._a_of(4.0) == pytest.approx(4.0, rel=1e-6)
    probes = [i for i, it in enumerate(steps) if it.metrics["presample_ratio"] == 4.0]
    assert probes == [0, PROBE_EVERY, 2 * PROBE_EVERY]  # the bound every 50 IS iterations


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: UpperBoundOptions(presample="auto", presample_max=1.5), "presample_max = 1.5: must be >= 2"),
        (lambda: UpperBoundOptions(presample=0.5), "presample = 0.5: must be 'auto' or >= 1"),
        (lambda: UpperBoundOptions(presample="often"), "presample = 'often'"),
        (lambda: UpperBoundOptions(presample="auto", tau_threshold=1.5), "tau_threshold = 1.5: must be 'auto'"),
        (lambda: UniformSampler(*toy_problem(), 32, presample="auto"), "does not presample"),
        (
            lambda: Trainer("reuse", *toy_problem(), 32, options=UpperBoundOptions(presample="auto")),
            "reuse takes ReuseOptions, not UpperBoundOptions \\(only upper_bound presamples\\)",
        ),
    ],
)
def test_bad_ratios_are_one_line_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
