import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from isample.report import figures, timing_figures
from isample.report.activation import lr_activation
from isample.report.common import time_to_reach
from isample.report.cost import timing_facts
from isample.report.equal_time import compare_runs
from isample.report.records import RecordError, read_run, read_timing, write_workbook
from tests.common.records import epochs, pairs, report, run, timing_tables


@pytest.mark.parametrize(
    "is_accuracies, uniform_accuracies, rule",
    [
        ([0.62, 0.63, 0.61], [0.60, 0.60, 0.59], "accuracy_is_better"),
        ([0.58, 0.57, 0.56], [0.60, 0.60, 0.59], "accuracy_is_worse"),
        ([0.62, 0.58, 0.60], [0.60, 0.60, 0.59], "accuracy_within_noise"),
        ([0.62], [0.60], "one_seed"),
    ],
)
def test_accuracy_conclusion_follows_the_numbers(is_accuracies, uniform_accuracies, rule):
    facts = compare_runs(*pairs(is_accuracies, uniform_accuracies))
    assert facts.conclusions["accuracy"][0] == rule


def test_train_metric_conclusion_compares_with_the_sampling_bias_undone():
    # Plain accuracy on hard-example batches is low, the weighted one is not: nothing collapsed.
    misleading = compare_runs(
        *pairs([0.6, 0.6], [0.6, 0.6], train_accuracy=0.7, weighted_accuracy=0.92, weighted_loss=0.2)
    )
    assert misleading.conclusions["train_metrics"][0] == "train_accuracy_misleading"
    worse = compare_runs(*pairs([0.6, 0.6], [0.6, 0.6], train_accuracy=0.7, weighted_accuracy=0.8, weighted_loss=0.5))
    assert worse.conclusions["train_metrics"][0] == "train_fit_worse"
    fine = compare_runs(*pairs([0.6, 0.6], [0.6, 0.6], train_accuracy=0.95))
    assert fine.conclusions["train_metrics"][0] == "train_fit_not_worse"


def test_a_diverged_run_gets_no_accuracy_conclusion_in_either_language():
    is_runs, uniform_runs = pairs([0.1, 0.1], [0.6, 0.61])
    is_runs[1] = run("upper_bound", 1, epochs(0.1), status="diverged at epoch 3, iteration 95, lr 1000")
    facts = compare_runs(is_runs, uniform_runs)
    assert "accuracy" not in facts.conclusions and "time_to_accuracy" not in facts.conclusions
    assert facts.conclusions["diverged"][0] == "runs_diverged"
    english, metrics = report(is_runs, uniform_runs, None, "en", {})
    assert "seed 1: diverged at epoch 3, iteration 95, lr 1000" in english
    assert "No accuracy conclusion" in english and "lower test accuracy" not in english
    assert metrics["comparison"]["diverged"] == ["upper_bound seed 1: diverged at epoch 3, iteration 95, lr 1000"]
    chinese, _ = report(is_runs, uniform_runs, None, "zh", {})
    assert "发散" in chinese and "diverged at epoch 3" in chinese


def test_regime_and_time_to_accuracy():
    facts = compare_runs(*pairs([0.7, 0.7], [0.6, 0.6], is_share_by_lr=(0.0, 0.0, 1.0)))
    assert facts.conclusions["regime"][0] == "regime_partial"
    assert facts.conclusions["time_to_accuracy"][0] == "tta_faster"
    never = compare_runs(*pairs([0.5, 0.5], [0.6, 0.6]))
    assert never.conclusions["time_to_accuracy"] == ("tta_never", {"never": 2})
    same = compare_runs(*pairs([0.605, 0.605], [0.6, 0.6]))  # reaches it 10 s sooner, an epoch lasts 10 s
    assert same.conclusions["time_to_accuracy"][0] == "tta_same"
    off = compare_runs(*pairs([0.5, 0.55], [0.6, 0.62], is_share_by_lr=(0.0, 0.0, 0.0)))
    # No IS-vs-uniform claim; the noise level is the spread of uniform's seeds.
    assert off.conclusions == {
        "regime": ("regime_off", {"gap": pytest.approx(8.5), "spread": pytest.approx(1.414, rel=1e-3)})
    }
    one = compare_runs(*pairs([0.5], [0.6], is_share_by_lr=(0.0, 0.0, 0.0)))
    assert one.conclusions == {"regime": ("regime_off_one_seed", {"gap": pytest.approx(10.0)})}
    assert time_to_reach(epochs(0.6), 0.55) == 120  # the 3-epoch mean passes 0.55 only at the last epoch
    assert math.isnan(time_to_reach(epochs(0.6), 0.6))  # and never reaches the last epoch's own 0.6


def test_lr_conclusion_flips_with_is_share_at_milestones():
    sharp = lr_activation([run("upper_bound", 0, epochs(0.6, is_share_by_lr=(0.1, 0.9, 0.9)))])
    assert sharp.conclusions["lr"][0] == "lr_affects_is"
    assert sharp.tables["milestones"]["sharp_change"].tolist() == [True, False]
    steady = lr_activation([run("upper_bound", 0, epochs(0.6, is_share_by_lr=(0.6, 0.7, 0.8)))])
    assert steady.conclusions["lr"][0] == "lr_no_effect"
    assert steady.numbers["first_on_seconds"] == [10.0]


def test_timing_conclusions_flip():
    good = timing_facts(timing_tables())
    assert good.conclusions["fit"][0] == "presample_proportional"
    assert good.conclusions["non_model"][0] == "non_model_negligible"
    assert good.conclusions["prediction"][0] == "both_models_fit"
    bad = timing_facts(timing_tables(slope=0.001, noise=0.02, non_model=0.2, error=0.4))
    assert bad.conclusions["fit"][0] == "presample_not_linear"
    assert bad.conclusions["non_model"][0] == "non_model_large"
    assert bad.conclusions["prediction"][0] == "neither_model_fits"
    assert timing_facts(timing_tables(error=0.3, measured_error=0.04)).conclusions["prediction"] == (
        "measured_model_fits",
        {},
    )
    assert (
        timing_facts(timing_tables(error=0.3, measured_error=-0.2)).conclusions["prediction"][0] == "neither_model_fits"
    )
    assert (
        timing_facts(timing_tables(error=0.05, measured_error=0.04)).conclusions["prediction"][0] == "both_models_fit"
    )
    text, _ = report([], [], timing_tables(error=0.3, measured_error=0.04), "en", {})
    assert "The measured cost model fits: it predicts every ratio within 4%" in text and "| +4.0% |" in text
    offset = timing_facts(timing_tables(intercept=0.1))
    assert offset.conclusions["fit"][0] == "presample_linear_offset"


def test_iteration_times_too_noisy_to_judge_a_cost_model_say_so():
    """A loaded machine: the medians' 95% intervals wider than the 10% a model is judged by; no model is then
    said to fit or to miss."""
    tables = timing_tables(error=0.3, measured_error=0.04)
    per_ratio = tables["per_ratio"]
    for half in (0.04, 0.27):
        tables["per_ratio"] = per_ratio.assign(
            measured_seconds_low=per_ratio["measured_seconds"] * (1 - half),
            measured_seconds_high=per_ratio["measured_seconds"] * (1 + half),
            iterations=30,
        )
        rule, values = timing_facts(tables).conclusions["prediction"]
        assert (rule == "prediction_too_noisy") == (half > 0.1) and values.get("interval", half) == pytest.approx(half)
    text, _ = report([], [], tables, "en", {})
    assert "reach ±27%, wider than the 10%" in text and "The measured cost model fits" not in text


def test_with_data_from_disk_the_report_says_whether_loading_or_the_forward_dominates():
    assert "loading" not in timing_facts(timing_tables()).conclusions  # in memory: nothing loaded, nothing said
    slow_disk = timing_facts(timing_tables(loading=0.05)).conclusions["loading"]
    assert slow_disk == ("loading_dominates", {"loading": 50.0, "forward": 10.0, "p_max": 7.0})
    assert timing_facts(timing_tables(loading=0.004)).conclusions["loading"][0] == "forward_dominates"
    english, _ = report([], [], timing_tables(loading=0.05), "en", {})
    assert (
        "at p = 7, loading them took 50.0 ms of an IS iteration against 10.0 ms for the presample forward, so "
        in english
    )
    assert "loading dominates" in english
    chinese, _ = report([], [], timing_tables(loading=0.004), "zh", {})
    assert "读取样本占一次重要性采样迭代的 4.0 ms，预采样前向占 10.0 ms，因此预采样前向是" in chinese


def test_both_languages_from_the_same_numbers():
    is_runs, uniform_runs = pairs([0.62, 0.63, 0.61], [0.60, 0.60, 0.59], is_share_by_lr=(0.1, 0.9, 0.9))
    english, metrics = report(is_runs, uniform_runs, timing_tables(), "en", {"accuracy": "figures/accuracy.png"})
    chinese, _ = report(is_runs, uniform_runs, timing_tables(), "zh", {"accuracy": "figures/accuracy.png"})
    assert "## 1. Equal training time" in english and "larger than the seed noise" in english
    assert "## 1. 等训练时间" in chinese and "大于种子噪声" in chinese
    difference = f"{100 * metrics['comparison']['accuracy_difference']:+.2f}"
    assert difference == "+2.33"
    assert difference in english and difference in chinese
    assert "![accuracy](figures/accuracy.png)" in english
    assert metrics["missing"] == []
    flipped, _ = report(*pairs([0.58, 0.57, 0.56], [0.60, 0.60, 0.59]), None, "en", {})
    assert "lower test accuracy than uniform" in flipped and "higher test accuracy than uniform" not in flipped


def test_missing_inputs_are_reported_not_fatal():
    is_runs, _ = pairs([0.6], [])
    text, metrics = report(is_runs, [], None, "en", {})
    assert "no uniform record" in text and "no timing record" in text
    assert set(metrics["missing"]) == {"uniform", "timing"}
    empty, metrics = report([], [], None, "zh", {})
    assert "缺少" in empty and set(metrics["missing"]) == {"upper_bound", "uniform", "timing"}


def test_records_round_trip_and_foreign_files_are_named(tmp_path):
    frame = epochs(0.6)
    params = pd.DataFrame({"parameter": ["seed", "presample", "method"], "value": ["3", "2.0", "upper_bound"]})
    path = tmp_path / "cifar10.is.2m.3.xlsx"
    write_workbook(path, {"epochs": frame, "params": params})
    loaded = read_run(path)
    assert loaded.seed == 3 and len(loaded.epochs) == len(frame)
    assert loaded.method == "upper_bound" and loaded.status == "completed" and not loaded.diverged
    foreign = tmp_path / "foreign.xlsx"
    write_workbook(foreign, {"epochs": frame.drop(columns=["test_accuracy", "lr"]), "params": params})
    with pytest.raises(RecordError, match=r"foreign.xlsx.*lacks columns lr, test_accuracy"):
        read_run(foreign)
    write_workbook(tmp_path / "timing.xlsx", {"per_ratio": pd.DataFrame({"x": [1]})})
    with pytest.raises(RecordError, match="timing.xlsx: sheet 'iterations' is missing"):
        read_timing(tmp_path / "timing.xlsx")


def test_figures_are_real_png_files(tmp_path):
    is_runs, uniform_runs = pairs([0.62, 0.61], [0.60, 0.59], is_share_by_lr=(0.1, 0.9, 0.9))
    tables = timing_tables()
    words = figures.labels("en")
    made = {
        "accuracy": figures.accuracy_and_loss(is_runs + uniform_runs, words),
        "train_loss": figures.train_loss(is_runs + uniform_runs, words),
        "activation": figures.is_activation(is_runs, words),
        "phases": timing_figures.timing_phases(tables["per_ratio"], words),
        "fit": timing_figures.presample_fit(tables["per_ratio"], 0.03, 0.0, 0.99, words),
        "scatter": timing_figures.presample_vs_train(tables["iterations"], words),
    }
    for name, figure in made.items():
        path = tmp_path / f"{name}.png"
        figure.savefig(path, dpi=80)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 10_000 < path.stat().st_size < 2_000_000, name
        width, height = Image.open(path).size
        assert width >= 400 and height >= 300
    assert figures.lr_changes(is_runs) == pytest.approx([60.0, 90.0])


def test_the_activation_figure_draws_the_ratio_auto_chose_when_the_records_have_it():
    is_runs, _ = pairs([0.62, 0.61], [0.60, 0.59], is_share_by_lr=(0.1, 0.9, 0.9))
    words = figures.labels("en")
    assert len(figures.is_activation(is_runs, words).axes) == 3  # a fixed p: no ratio to draw
    for record in is_runs:
        record.epochs["presample_ratio"] = [2.0 + epoch % 3 for epoch in range(len(record.epochs))]
    axes = figures.is_activation(is_runs, words).axes
    assert len(axes) == 4 and axes[3].get_title() == words["p chosen"]
    drawn = {float(y) for line in axes[3].get_lines() if line.get_marker() == "o" for y in line.get_ydata()}
    assert drawn == {2.0, 3.0, 4.0}


def test_the_report_loads_no_torch():
    from tests.test_package import loaded_after

    modules = loaded_after(
        "import isample.report.render, isample.report.equal_time, isample.report.records, isample.report.figures"
    )
    assert "pandas" in modules and "torch" not in modules


def test_how_far_is_was_from_paying_comes_from_the_records_numbers():
    """Section 2's conclusion: tau's peak, tau_th there, the peak of s / (1 + a) and the share of
    iterations above 1, each equal to what the records hold; the rule flips with them."""
    from isample.report import activation
    from isample.report.render import words

    frames = []
    for seed, top in enumerate((1.3, 1.1)):
        frame = epochs(0.6)
        frame["iterations"] = [20, 40] * 6
        frame["tau"] = np.linspace(1.0, top, 12)
        frame["tau_threshold"] = np.linspace(1.6, 1.5, 12)
        frame["predicted_speedup"] = np.linspace(0.6, 0.9, 12) + 0.05 * seed
        frames.append(run("upper_bound", seed, frame))
    section = activation.section(words("en"), frames, {})
    text = "\n".join(section.lines)
    for frame, r in zip((f.epochs for f in frames), section.metrics["activation"]["tau_peak"], strict=True):
        assert r == frame["tau"].max()
        peak = frame["tau"].idxmax()
        assert f"tau peaked at {frame['tau'].max():.3f} against tau_th {frame.loc[peak, 'tau_threshold']:.3f}" in text
        assert f"s / (1 + a) at most {frame['predicted_speedup'].max():.3f}" in text
    assert "above 1 for 0% of the iterations" in text and "IS would not have paid" in text
    assert f"{1 - 0.95:.0%} short at its closest" in text  # the best seed's 0.95
    frames[1].epochs["predicted_speedup"] = [0.9] * 10 + [1.2, 1.2]  # the last two epochs: 20 + 40 of 360
    facts = activation.lr_activation(frames)
    assert facts.tables["distance"]["paying_share"].tolist() == [0.0, pytest.approx(60 / 360)]
    assert facts.conclusions["distance"][0] == "never_above"
    frames[0].epochs["scored_share"] = 0.5
    assert activation.lr_activation(frames).conclusions["distance"][0] == "on_distance"
    zh = "\n".join(activation.section(words("zh"), frames, {}).lines)
    assert "tau 峰值 1.300" in zh and "大于 1 的迭代占 17%" in zh


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table of a markdown text, as rows of cells (the separator line left out)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_table_of_the_report_has_unique_headers_and_rows_as_wide(language):
    is_runs, uniform_runs = pairs([0.62, 0.63, 0.61], [0.60, 0.60, 0.59], is_share_by_lr=(0.1, 0.9, 0.9))
    text, _ = report(is_runs, uniform_runs, timing_tables(), language, {})
    tables = markdown_tables(text)
    assert len(tables) >= 3  # equal time, the switching rule's, the cost's
    for header, *rows in tables:
        assert len(set(header)) == len(header), header
        assert all(len(row) == len(header) for row in rows), header


@pytest.mark.parametrize("missing", [("a", "predicted_speedup"), ("tau", "a", "predicted_speedup"), ("tau_threshold",)])
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("switched_on", [False, True])
def test_no_conclusion_rests_on_a_missing_value(missing, language, switched_on):
    """A fixed tau_th measures no a; a record may lack tau: the report says what is missing, never nan."""
    import re

    share = (0.0, 0.6, 0.6) if switched_on else (0.0, 0.0, 0.0)
    is_runs, uniform_runs = pairs([0.62, 0.63], [0.60, 0.61], is_share_by_lr=share)
    for r in is_runs:
        r.epochs["a"], r.epochs["predicted_speedup"] = 0.5, r.epochs["tau"] / 1.5
        for column in missing:
            r.epochs[column] = np.nan
    text, _ = report(is_runs, uniform_runs, timing_tables(), language, {})
    printed = re.compile(r"\bnan\b|\bNone\b")  # how Python prints a missing value (the rules say "NaN")
    assert not printed.search(text), [line for line in text.splitlines() if printed.search(line)]


@pytest.mark.parametrize(
    "column",
    ["a", "a_per_p", "prediction_error", "prediction_error_measured", "presample_seconds", "non_model_share", "k"],
)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_no_cost_conclusion_rests_on_a_missing_timing_value(column, language):
    """Section 3's rules with one of the timing record's inputs missing in every row: no nan or None."""
    import re

    timing = timing_tables()
    timing["per_ratio"][column] = np.nan
    text, _ = report(*pairs([0.62, 0.63], [0.60, 0.61]), timing, language, {})
    printed = re.compile(r"\bnan\b|\bNone\b")
    assert not printed.search(text), [line for line in text.splitlines() if printed.search(line)]


def test_a_panel_with_nothing_to_show_is_a_sentence_and_no_legend_carries_a_heading():
    """IS never on: no share panel (a line at 0 says nothing), the figure says so in words; every legend
    names what is drawn (the lr drops included), none of seaborn's column headings; several seeds: bands."""
    is_runs, uniform_runs = pairs([0.62, 0.61], [0.60, 0.59], is_share_by_lr=(0.0, 0.0, 0.0))
    words = figures.labels("en")
    activation = figures.is_activation(is_runs, words)
    assert len(activation.axes) == 2 and activation._suptitle.get_text() == words["never on"]
    on = figures.is_activation(pairs([0.62, 0.61], [0.60, 0.59], is_share_by_lr=(0.1, 0.9, 0.9))[0], words)
    assert len(on.axes) == 3 and on._suptitle is None
    for figure in (activation, figures.accuracy_and_loss(is_runs + uniform_runs, words)):
        for ax in figure.axes:
            names = [text.get_text() for text in ax.get_legend().get_texts()] if ax.get_legend() else []
            assert not set(names) & set(figures.HEADINGS) and (not names or words["lr change"] in names), names
    accuracy = figures.accuracy_and_loss(is_runs + uniform_runs, words).axes[0]
    assert accuracy.collections, "two seeds: the 95% interval is drawn as a band"
    assert {text.get_text() for text in accuracy.get_legend().get_texts()} >= {words["upper_bound_is_off"]}


def test_each_figure_has_a_caption_with_its_seeds_and_interval():
    from isample.report.common import figure_lines
    from isample.report.render import words

    english = words("en")
    lines = figure_lines(english, {"accuracy": "figures/accuracy.png"}, ("accuracy",), seeds=3)
    assert lines[2] == "![accuracy](figures/accuracy.png)" and "the mean over 3 seeds" in lines[4]
    assert "one seed, so no interval" in figure_lines(english, {"activation": "a.png"}, ("activation",), seeds=1)[4]
    chinese = words("zh")
    assert all(f"caption_{name}" in chinese for name in ("accuracy", "activation", "phases", "all_methods"))
