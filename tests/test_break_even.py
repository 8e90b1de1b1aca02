"""benchmarks/break_even.py's arithmetic: where the gain crosses zero, and its summary per regime and price."""

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
    table, verdicts = summarize(facts)
    forced = table[table["variant"] == "forced"].set_index("price")
    assert forced.loc["0", "gain"] == pytest.approx(0.02) and forced.loc["0", "seeds"] == 3
    assert forced.loc["0.1", "predicted_speedup"] == pytest.approx(1.2 / 1.1)
    verdict = verdicts.iloc[0]
    assert verdict["a_star"] == pytest.approx(0.2)
    assert verdict["rule_break_even_tau_minus_1"] == pytest.approx(0.2)
