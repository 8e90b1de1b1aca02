"""The predicted variance ratio of IS's two-stage estimate (isample.methods.speedup), against Monte Carlo.

Synthetic per-example gradients g_i = s_i u_i (u_i random unit vectors in 256 dimensions, so different
examples' gradients are nearly uncorrelated and their mean is small, as the prediction assumes), scored
by their norms s_i. The prediction is r of the mean moments over the presamples (`draw_moments`), as
upper_bound averages them while training. The measured ratio is the mean squared error of IS's estimate
of the data's mean gradient (a uniform presample of B = p b without replacement, then the draw of b and
its weights: the library's own functions) over that of a uniform batch of b without replacement
(exact: (N - b) / (N - 1) S^2 / b)."""

import math

import pytest
import torch

from isample.methods.speedup import draw_moments, predicted_speedup, variance_ratio, variance_ratio_of
from isample.sampling import importance_draw, importance_draw_without_replacement, variance_reduction

DRAWS = {"with_replacement": importance_draw, "without_replacement": importance_draw_without_replacement}
N, B_SMALL, DIMENSIONS, TRIALS = 20_000, 32, 256, 4000


def synthetic_gradients(tail: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(N, DIMENSIONS, generator=generator, dtype=torch.float64))
    if tail == "light":  # norms in [0.5, 1.5]: tau about 1.04
        norms = 0.5 + torch.rand(N, generator=generator, dtype=torch.float64)
    else:  # lognormal, sigma 1: tau about 1.6, a few norms 20 times the median
        norms = torch.exp(torch.randn(N, generator=generator, dtype=torch.float64))
    return norms.unsqueeze(1) * directions, norms


def measured_and_predicted(tail: str, draw: str, ratio: int, b: int = B_SMALL, smoothing: float = 0.1, seed: int = 0):
    gradients, norms = synthetic_gradients(tail)
    mean = gradients.mean(0)
    spread = ((gradients - mean) ** 2).sum(1).sum() / (N - 1)
    uniform = (N - b) / (N - 1) * spread / (N * b) * N
    generator = torch.Generator().manual_seed(seed)
    size = ratio * b
    errors, moments = torch.empty(TRIALS, dtype=torch.float64), torch.empty(TRIALS, 2, dtype=torch.float64)
    for trial in range(TRIALS):
        presample = torch.randperm(N, generator=generator)[:size]
        scores = norms[presample]
        positions, weights = DRAWS[draw](scores.float(), b, generator, smoothing)
        estimate = (weights.double().unsqueeze(1) * gradients[presample[positions]]).mean(0)
        errors[trial] = ((estimate - mean) ** 2).sum()
        moments[trial] = draw_moments(scores, b, draw, smoothing)
    measured = float(errors.mean() / uniform)
    standard_error = float(errors.std() / math.sqrt(TRIALS) / uniform)
    return measured, standard_error, float(variance_ratio_of(moments.mean(0), b, size))


@pytest.mark.parametrize("draw", list(DRAWS))
@pytest.mark.parametrize("tail", ["light", "heavy"])
@pytest.mark.parametrize("ratio", [2, 3, 5, 8])
def test_the_predicted_variance_ratio_matches_the_measured_one_within_5_percent(draw, tail, ratio):
    measured, standard_error, predicted = measured_and_predicted(tail, draw, ratio)
    assert standard_error < 0.02 * measured  # the Monte Carlo resolves 5%
    assert predicted == pytest.approx(measured, rel=0.05), (measured, standard_error, predicted)


def test_flat_scores_predict_the_repeats_of_the_draw_with_replacement_and_none_without():
    scores = torch.ones(256)
    assert float(variance_ratio(scores, 128, "without_replacement", 0.1)) == pytest.approx(1.0)
    assert float(variance_ratio(scores, 128, "with_replacement", 0.1)) == pytest.approx(1 + 127 / 256)
    assert float(variance_ratio(torch.zeros(256), 128, "without_replacement")) == pytest.approx(1.0)
    assert float(predicted_speedup(variance_ratio(scores, 128, "with_replacement"))) < 1


def test_without_smoothing_or_caps_the_ratio_is_the_2018_tau_to_the_minus_2():
    scores = 0.5 + torch.rand(512, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tau = variance_reduction(scores)
    assert float(variance_ratio(scores, 64, "without_replacement")) == pytest.approx(tau**-2, rel=1e-6)
    assert float(variance_ratio(scores, 64, "with_replacement")) == pytest.approx(tau**-2 + 63 / 512, rel=1e-6)
    assert float(predicted_speedup(variance_ratio(scores, 64, "without_replacement"))) == pytest.approx(tau)


def test_scores_taken_for_sure_add_no_variance_of_the_draw_and_b_of_b_is_the_presample_alone():
    scores = torch.tensor([100.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # b = 8 of B = 8: every example taken, weight 1: the presample's variance alone, b / B = 1.
    assert float(variance_ratio(scores, 8, "without_replacement")) == pytest.approx(1.0)
    # b = 2: the first is taken for sure; the draw's variance comes from the other seven.
    pi = torch.tensor([1.0] + [1 / 7] * 7, dtype=torch.float64)
    expected = 2 * float((scores.double() ** 2 / pi).sum()) / (8 * float((scores.double() ** 2).sum()))
    assert float(variance_ratio(scores, 2, "without_replacement")) == pytest.approx(expected)


def test_training_scores_stand_for_a_presample_repeated_up_to_it():
    scores = torch.tensor([1.0, 2.0, 3.0, 4.0])
    repeated = variance_ratio(scores.repeat(3), 4, "with_replacement", 0.1)
    assert float(variance_ratio(scores, 4, "with_replacement", 0.1, presample_size=12)) == pytest.approx(
        float(repeated)
    )
    with pytest.raises(ValueError, match="draw = 'systematic'"):
        variance_ratio(scores, 2, "systematic")
