"""benchmarks/break_even.py's and break_even_causes.py's arithmetic: where the gain crosses zero, the
summary per regime and price, each cause against its baseline."""

import math

import pandas as pd
import pytest

from benchmarks.break_even import crossing, summarize


def test_the_break_even_price_is_where_the_gain_falls_to_zero_between_prices():
    assert crossing([0.0, 0.1, 0.5], [0.02, 0.01, -0.03]) == pytest.approx(0.1 + 0.4 * 0.01 / 0.04)
    assert crossing([0.0, 0.1, 0.5], [-0.01, -0.02, -0.03]) == -math.inf  # loses even when free
    assert crossing([0.0, 0.1, 0.5], [0.03, 0.02, 0.01]) == math.inf  # pays at every price tried


def test_summary_pairs_by_seed_and_gives_a_star_with_its_interval():
    rows = []
    for seed, noise in enumerate([0.0, 0.004, -0.004]):
        rows.append({"variant": "uniform", "price": "from_prices", "a_priced": math.nan, "final_accuracy": 0.5 + noise})
        for price, a, gain in [("0", 0.0, 0.02), ("0.1", 0.1, 0.01), ("from_prices", 0.5, -0.03)]:
            rows.append({"variant": "forced", "price": price, "a_priced": a, "final_accuracy": 0.5 + noise + gain})
    facts = pd.DataFrame(rows).assign(regime="r", seed=lambda f: [i // 4 for i in range(len(f))])
    facts = facts.assign(train_set_loss=1.0, is_share=1.0, tau=1.2, iterations=100)
    table, draws, verdicts = summarize(facts)  # facts without speed-ups or draws: the 2018 draw, tau's rule
    forced = table[table["variant"] == "forced"].set_index("price")
    assert forced.loc["0", "gain"] == pytest.approx(0.02) and forced.loc["0", "seeds"] == 3
    assert forced.loc["0.1", "predicted_speedup"] == pytest.approx(1.2 / 1.1)
    assert draws.empty and (forced["draw"] == "with_replacement").all()
    verdict = verdicts.iloc[0]
    assert verdict["a_star"] == pytest.approx(0.2)
    assert verdict["predicted_a_star"] == pytest.approx(0.2)


def test_each_draw_is_set_against_uniform_and_against_the_other_draw_seed_by_seed():
    rows = []
    for seed, noise in enumerate([0.0, 0.004, -0.004]):
        rows.append(
            {
                "variant": "uniform",
                "draw": "none",
                "price": "from_prices",
                "a_priced": math.nan,
                "final_accuracy": 0.5 + noise,
            }
        )
        for draw, gain, speedup in [("with_replacement", -0.02, 0.8), ("without_replacement", 0.01, 1.1)]:
            for price, a in [("0", 0.0), ("from_prices", 0.5)]:
                rows.append(
                    {
                        "variant": "forced",
                        "draw": draw,
                        "price": price,
                        "a_priced": a,
                        "speedup": speedup,
                        "variance_ratio": speedup**-2,
                        "final_accuracy": 0.5 + noise + gain - a / 10,
                    }
                )
    facts = pd.DataFrame(rows).assign(regime="r", seed=[i // 5 for i in range(15)])
    facts = facts.assign(train_set_loss=1.0, is_share=1.0, tau=1.2, iterations=100)
    table, draws, verdicts = summarize(facts)
    without = table[table["draw"] == "without_replacement"].set_index("price")
    assert without.loc["0", "gain"] == pytest.approx(0.01)
    assert without.loc["from_prices", "predicted_speedup"] == pytest.approx(1.1 / 1.5)
    assert without.loc["from_prices", "predicted_by_ratio"] == pytest.approx(1.21 / 1.5)
    assert draws.set_index("price").loc["0", "gain"] == pytest.approx(0.03)  # without minus with
    verdict = verdicts.set_index("draw").loc["without_replacement"]
    assert verdict["a_star"] == pytest.approx(0.5 * 0.01 / 0.05)  # gain 0.01 at a = 0, -0.04 at a = 0.5
    assert verdict["predicted_a_star"] == pytest.approx(0.1)
    assert verdict["predicted_a_star_by_ratio"] == pytest.approx(0.21)
    assert verdicts.set_index("draw").loc["with_replacement", "a_star"] == -math.inf


def test_each_cause_is_set_against_its_own_baseline_seed_by_seed():
    from benchmarks.break_even_causes import summarize_causes

    def run(variant, seed, accuracy, price="0"):
        return {
            "regime": "r",
            "variant": variant,
            "price": price,
            "seed": seed,
            "final_accuracy": accuracy,
            "train_set_loss": 1.0,
            "tau": 1.1,
        }

    facts = pd.DataFrame(
        [run("uniform", s, 0.5 + s / 100, "from_prices") for s in range(3)]
        + [run("forced", s, 0.48 + s / 100) for s in range(3)]
    )
    causes = pd.DataFrame(
        [run("no_smoothing", s, 0.51 + s / 100) for s in range(3)]
        + [run("layer_norm_uniform", s, 0.4) for s in range(3)]
        + [run("layer_norm_forced", s, 0.43) for s in range(3)]
    )
    table = summarize_causes(causes, facts).set_index("variant")
    assert table.loc["forced", "gain_points"].startswith("-2.00")
    assert table.loc["no_smoothing", "gain_points"].startswith("+1.00")
    assert table.loc["layer_norm_forced", "against"] == "layer_norm_uniform"
    assert table.loc["layer_norm_forced", "gain_points"].startswith("+3.00")
    assert "layer_norm_uniform" not in table.index and table["seeds"].eq(3).all()


def test_the_reports_opening_quotes_the_break_even_tables_of_the_committed_facts():
    """Every interval and bound the report's opening (en and zh) and the README's answer quote is in the tables that
    `python -m benchmarks.break_even --summary-only` makes from docs/data/break_even.csv."""
    import re
    from pathlib import Path

    from benchmarks.facts import read_facts
    from isample.report.common import WORDS

    table, draws, verdicts = summarize(read_facts(Path("docs/data/break_even.csv")))
    tables = "\n".join(frame.to_string() for frame in (table, draws, verdicts))
    readme = Path("README.md").read_text()
    answer = readme[readme.index("## The answer so far") : readme.index("## Two commands")]
    for lang, text in (("en", WORDS["en"]["break_even"]), ("zh", WORDS["zh"]["break_even"]), ("README", answer)):
        intervals = re.findall(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", text)
        assert len(intervals) >= 4 and all(interval in tables for interval in intervals), (lang, intervals)
        if lang == "README":
            continue
        for regime, bound in (("default", 0.402), ("memorise", 0.319)):
            row = verdicts[(verdicts["regime"] == regime) & (verdicts["draw"] == "without_replacement")].iloc[0]
            assert f"{bound:.3f}" in text and round(row["a_star_high"], 3) == bound and row["a_star"] == -math.inf
