import pytest

from isample import costmodel


def test_default_threshold_is_2018_formula():
    assert costmodel.default_tau_threshold(384, 128) == pytest.approx(2.0)
    assert costmodel.default_tau_threshold(128, 128) == pytest.approx(4 / 3)


def test_ratio_and_k_are_inverse():
    for p in (1, 2, 3, 5, 7):
        for k in (1.0, 2.0, 2.7):
            a = costmodel.ratio_from_k(p, k)
            assert a == pytest.approx(p / (1 + k))
            assert costmodel.k_from_ratio(p, a) == pytest.approx(k)


def test_iteration_time_and_speedup():
    assert costmodel.iteration_time(p=3, k=2, b=128, t=1e-3) == pytest.approx(6 * 128e-3)
    # u = [B t + b (t + T)] / [B (t + T)] written out in times
    p, k, b, t = 5, 2.5, 128, 2e-4
    B, T = p * b, k * t
    assert costmodel.speedup_vs_full_batch(p, k) == pytest.approx((B * t + b * (t + T)) / (B * (t + T)))


def test_threshold_is_one_plus_a_and_with_k_2_matches_default():
    assert costmodel.tau_threshold(0.5) == 1.5
    p, b = 3, 128
    assert costmodel.tau_threshold(costmodel.ratio_from_k(p, 2.0)) == pytest.approx(
        costmodel.default_tau_threshold(p * b, b)
    )


@pytest.mark.parametrize("call", [lambda: costmodel.tau_threshold(-1), lambda: costmodel.k_from_ratio(2, 0)])
def test_invalid_values_raise(call):
    with pytest.raises(ValueError):
        call()


def test_measured_model_adds_the_presample_at_its_own_rate():
    # t_p = t / 3 (no autograd, chunked), t_s small: a far below the notebook's p / (1 + k).
    t, big_t, t_p, t_s = 1e-3, 2e-3, 1e-3 / 3, 1e-5
    a = costmodel.measured_ratio(3, t_p, t_s, t, big_t)
    assert a == pytest.approx(3 * (t_p + t_s) / (t + big_t))
    assert a < costmodel.ratio_from_k(3, big_t / t)
    predicted = costmodel.measured_iteration_time(3, 128, t_p, t_s, t, big_t, step=0.004, non_model=0.002)
    assert predicted == pytest.approx(3 * 128 * (t_p + t_s) + 128 * (t + big_t) + 0.006)
    # With t_p = t and no scoring, step or non-model time it is the notebook's (p + 1 + k) b t.
    assert costmodel.measured_iteration_time(3, 128, t, 0, t, big_t) == pytest.approx(
        costmodel.iteration_time(3, big_t / t, 128, t)
    )


def test_loading_from_disk_enters_the_measured_model_as_the_presample_loads_it():
    """An IS iteration loads its B = p b examples where the uniform one (whose non-model time holds
    its own b) loaded b: (p - 1) b t_l more; a counts the loading of B."""
    t_p, t_s, t, big_t, t_l = 1e-4, 1e-5, 3e-4, 6e-4, 2e-4
    in_memory = costmodel.measured_iteration_time(3, 128, t_p, t_s, t, big_t, step=0.004, non_model=0.02)
    from_disk = costmodel.measured_iteration_time(3, 128, t_p, t_s, t, big_t, step=0.004, non_model=0.02, t_l=t_l)
    assert from_disk - in_memory == pytest.approx(2 * 128 * t_l)
    uniform = costmodel.measured_iteration_time(0, 128, t_p, t_s, t, big_t, step=0.004, non_model=0.02, t_l=t_l)
    assert uniform == pytest.approx(128 * (t + big_t) + 0.004 + 0.02)  # its loading is in its non-model time
    assert costmodel.measured_ratio(3, t_p, t_s, t, big_t, t_l) == pytest.approx(3 * (t_p + t_s + t_l) / (t + big_t))
