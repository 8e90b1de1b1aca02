import numpy as np
import pandas as pd
import pytest
import torch

from isample import costmodel
from isample.experiment.timing import IMPORTANCE, IMPORTANCE_OFF, UNIFORM, configurations, measure
from isample.experiment.timing_summary import fit, least_squares, summarize
from isample.methods.catalog import UpperBoundOptions
from isample.methods.switching import TAU_EVERY
from isample.phases import PHASES
from isample.trainer import Trainer


def toy_measure(presamples, *, forward_chunks=(0,), lr=0.01, scale=1.0, others=None, warmup=1, iterations=4):
    """measure() on a small MLP, every configuration's sampler built the one way the stage builds them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)
    )
    x, y = scale * torch.randn(400, 3, 8, 8), torch.randint(4, (400,))

    def make_sampler(configuration):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        return Trainer(configuration.run, model, optimizer, x, y, 16, options=configuration.options)

    measured = configurations(UpperBoundOptions(presample_bf16=False), presamples, forward_chunks, others=others)
    return measure(make_sampler, measured, warmup=warmup, iterations=iterations, progress=False)


@pytest.fixture(scope="module")
def measured():
    iterations = toy_measure([1, 2, 4], forward_chunks=[0, 16])
    return iterations, summarize(iterations, 16)


def test_every_configuration_and_column_is_measured(measured):
    iterations, per_ratio = measured
    assert len(iterations) == (2 + 3 * 2) * 4  # uniform, IS on at 3 ratios x 2 chunk sizes, IS off
    assert {f"time_{p}" for p in PHASES} <= set(iterations.columns)
    assert (iterations["total_seconds"] > 0).all()
    importance = iterations[iterations["run"] == IMPORTANCE]
    assert (importance["time_presample_forward"] > 0).all()
    assert (iterations.loc[iterations["run"] == UNIFORM, "time_presample_forward"] == 0).all()
    share = importance["non_model_share"]
    assert ((share > -0.5) & (share < 1)).all()
    assert len(per_ratio) == 8
    switched_off = iterations[iterations["run"] == IMPORTANCE_OFF]
    # IS off: a scoring forward of one chunk only where tau is sampled (iteration 1 and every TAU_EVERY)
    assert (switched_off["time_presample_forward"] > 0).sum() <= len(switched_off) / TAU_EVERY + 1
    for column in (
        "t",
        "T",
        "k",
        "a",
        "a_per_p",
        "a_predicted",
        "predicted_seconds",
        "speedup_u",
        "tau_th",
        "non_model_share",
        "non_model_share_iqr",
        "measured_seconds",
    ):
        assert column in per_ratio


def test_derived_quantities_follow_the_cost_model(measured):
    iterations, per_ratio = measured
    for row in per_ratio[per_ratio["run"] == IMPORTANCE].itertuples():
        assert row.k == pytest.approx(row.T / row.t)
        assert row.a_predicted == pytest.approx(costmodel.ratio_from_k(row.presample, row.k))
        assert row.predicted_seconds == pytest.approx(costmodel.iteration_time(row.presample, row.k, 16, row.t))
        assert row.speedup_u == pytest.approx(costmodel.speedup_vs_full_batch(row.presample, row.k))
        assert row.tau_th == pytest.approx(costmodel.tau_threshold(row.a))
        assert row.a_per_p == pytest.approx(row.a / row.presample)
        group = iterations[
            (iterations["presample"] == row.presample) & (iterations["forward_chunk"] == row.forward_chunk)
        ]
        assert row.t == pytest.approx(group["time_train_forward"].median() / 16)


def test_measured_model_predicts_each_ratio_from_pooled_rates(measured):
    iterations, per_ratio = measured
    uniform = per_ratio[per_ratio["run"] == UNIFORM].iloc[0]
    importance = per_ratio[per_ratio["run"] == IMPORTANCE]
    t_p, t_s = importance["t_p"].median(), importance["t_s"].median()
    for row in importance.itertuples():
        group = iterations[
            (iterations["presample"] == row.presample) & (iterations["forward_chunk"] == row.forward_chunk)
        ]
        assert row.t_p == pytest.approx(group["time_presample_forward"].median() / round(16 * row.presample))
        expected = costmodel.measured_iteration_time(
            row.presample,
            16,
            t_p,
            t_s,
            uniform["t"],
            uniform["T"],
            uniform["time_optimizer_step"],
            uniform["non_model_seconds"],
        )
        assert row.predicted_seconds_measured == pytest.approx(expected)
        assert row.prediction_error_measured == pytest.approx(expected / row.measured_seconds - 1)
        assert row.a_measured_model == pytest.approx(
            costmodel.measured_ratio(row.presample, t_p, t_s, uniform["t"], uniform["T"])
        )
    # The pooled t_p is what a presample costs: predictions grow with p by b t_p per unit of p.
    slope = np.polyfit(importance["presample"], importance["predicted_seconds_measured"], 1)[0]
    assert slope == pytest.approx(16 * (t_p + t_s))


def test_fit_recovers_a_known_slope_from_synthetic_timings():
    rng = np.random.default_rng(0)
    rows = []
    for p in (2.0, 3.0, 5.0, 7.0):
        for i in range(20):
            presample = 0.03 * p + 0.004 + rng.normal(0, 0.001)
            train = 0.1 + rng.normal(0, 0.002)
            rows.append(
                {
                    "run": IMPORTANCE,
                    "presample": p,
                    "forward_chunk": 0,
                    "iteration": i,
                    "total_seconds": presample + train + 0.002,
                    "non_model_share": 0.002 / (presample + train),
                    **{f"time_{name}": 0.0 for name in PHASES},
                    "time_presample_forward": presample,
                    "time_train_forward": train / 3,
                    "time_backward": 2 * train / 3,
                }
            )
    iterations = pd.DataFrame(rows)
    per_ratio = summarize(iterations, 128)
    values = dict(zip(*fit(iterations, per_ratio).to_dict("list").values()))
    assert values["presample_slope_seconds_per_p"] == pytest.approx(0.03, rel=0.03)
    assert values["presample_intercept_seconds"] == pytest.approx(0.004, abs=0.003)
    assert values["presample_r2"] > 0.99
    slope, intercept, r2 = least_squares([1, 2, 3], [2, 4, 6.5])
    assert slope == pytest.approx(2.25) and r2 < 1


def test_ratio_below_one_is_refused():
    with pytest.raises(ValueError, match=">= 1"):
        configurations(UpperBoundOptions(), [0.5, 2], [0])


def test_timing_goes_on_when_the_model_diverges():
    """Cost needs no finite model: at lr 1e6 the scores stop being finite, the weights are reset
    and every configuration still gets its measured iterations."""
    iterations = toy_measure([2], lr=1e6, scale=100.0, iterations=6)
    assert len(iterations) == 3 * 6  # uniform, IS on, IS off
    assert iterations["diverged_resets"].max() > 0
    per_ratio = summarize(iterations, 16)
    assert (per_ratio["diverged_resets"] > 0).any() and per_ratio["measured_seconds"].notna().all()


def test_other_methods_get_a_row_with_their_whole_cost_over_the_training_step():
    from isample.methods import ReuseOptions, SelectiveBackpropOptions

    others = {"reuse": ReuseOptions(), "selective_backprop": SelectiveBackpropOptions()}  # the authors' beta 3
    iterations = toy_measure([2], others=others)
    per_ratio = summarize(iterations, 16).set_index("run")
    assert {"uniform", "upper_bound", IMPORTANCE_OFF, "reuse", "selective_backprop"} == set(per_ratio.index)
    for method in ("uniform", IMPORTANCE_OFF, "reuse", "selective_backprop"):
        row = per_ratio.loc[method]
        assert row["a"] == pytest.approx(
            (row["measured_seconds"] - row["train_step_seconds"]) / row["train_step_seconds"]
        )
    # Selective-Backprop (timed after its priming pass) forwards candidates without gradients; reuse never
    # does. (Which of the two costs more is a timing question, not asked of a toy MLP's microseconds.)
    assert (
        per_ratio.loc["selective_backprop", "time_presample_forward"]
        > 0
        == per_ratio.loc["reuse", "time_presample_forward"]
    )


def test_the_timing_stage_measures_rho_loss_beside_uniform_without_its_tables():
    """timing_peer@rho_loss builds rho_loss as training does, with zero IL losses (its cost does not
    depend on them): a row of its own, costing its ten candidate forwards per trained batch."""
    from isample.experiment.timing import measure_params
    from tests.common import synthetic_data, tiny_params

    params = tiny_params().model_copy(
        update={"timing": tiny_params().timing.model_copy(update={"warmup": 1, "iterations": 3})}
    )
    per_ratio = summarize(measure_params(params, synthetic_data(), peer="rho_loss", progress=False), 32)
    assert set(per_ratio["run"]) == {UNIFORM, "rho_loss"}
    a = float(per_ratio.loc[per_ratio["run"] == "rho_loss", "a"].iloc[0])
    assert a > 1  # 320 candidates scored per 32 trained: more than one training step's time


def test_configurations_take_turns_after_their_warm_up():
    """Round-robin: each configuration warms up, then they alternate `turn` iterations at a time, so drift
    or other load lands on all of them alike."""
    order = []
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x, y = torch.randn(200, 3, 8, 8), torch.randint(4, (200,))

    def make_sampler(configuration):
        sampler = Trainer(configuration.run, model, torch.optim.SGD(model.parameters(), lr=0.01), x, y, 16)
        step = sampler.step
        sampler.step = lambda: (order.append(configuration.name), step())[1]
        return sampler

    measured = configurations(UpperBoundOptions(presample_bf16=False), [2], [0])  # uniform, IS off, IS at p = 2
    rows = measure(make_sampler, measured, warmup=1, iterations=4, turn=2, progress=False)
    names = [configuration.name for configuration in measured]
    turns = [name for name in names for _ in range(2)]
    assert order == names + turns + turns  # warm-ups, then two turns of two
    assert len(rows) == 3 * 4 and rows.groupby("run", sort=False).size().tolist() == [4, 4, 4]


def test_the_median_interval_covers_the_median_95_percent_of_the_time():
    from isample.experiment.timing_summary import median_interval

    generator = np.random.default_rng(0)
    true_median = np.log(2)  # of an exponential with rate 1 (skewed, as iteration times are)
    covered = [
        low <= true_median <= high
        for low, high in (median_interval(pd.Series(generator.exponential(size=30))) for _ in range(2000))
    ]
    assert 0.93 <= np.mean(covered) <= 0.99  # order statistics: at least 95%, a little more at n = 30


def test_machine_prices_price_each_configuration_at_about_its_measured_time():
    """Synthetic timings with known rates: t and T per example, 0.004 s of loop per iteration, and IS
    paying 0.0002 s per presampled example; the prices recover them, and price each run near its time."""
    from isample.experiment.timing_summary import machine_prices
    from isample.pricing import Prices, Work

    rng = np.random.default_rng(1)
    rows, b = [], 128
    for run, p in [(UNIFORM, np.nan), (IMPORTANCE, 2.0), (IMPORTANCE, 3.0), (IMPORTANCE, 5.0)]:
        for i in range(25):
            forward, backward = b * 0.0003 * rng.normal(1, 0.01), b * 0.0005 * rng.normal(1, 0.01)
            presample = 0.0 if run == UNIFORM else p * b * 0.0002 * rng.normal(1, 0.01)
            total = forward + backward + presample + 0.004
            rows.append(
                {
                    "run": run,
                    "presample": p,
                    "forward_chunk": 0,
                    "iteration": i,
                    "total_seconds": total,
                    "non_model_share": 0.004 / total,
                    **{f"time_{name}": 0.0 for name in PHASES},
                    "time_presample_forward": presample,
                    "time_train_forward": forward,
                    "time_backward": backward,
                }
            )
    per_ratio = summarize(pd.DataFrame(rows), b)
    prices = machine_prices(per_ratio, b)
    assert prices["forward"] == pytest.approx(0.0003, rel=0.01) and prices["backward"] == pytest.approx(
        0.0005, rel=0.01
    )
    assert prices["iteration"] == pytest.approx(0.004, rel=0.25) and prices["score"] == pytest.approx(0.0002, rel=0.03)
    priced = Prices(**prices)
    for _, row in per_ratio.iterrows():
        scored = 0 if row["run"] == UNIFORM else round(row["presample"] * b)
        assert priced.seconds(Work(b, b, 1, scored)) == pytest.approx(row["measured_seconds"], rel=0.02)
