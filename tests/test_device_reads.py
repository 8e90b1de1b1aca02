import math

import torch

from isample.device_reads import LaggedReads


def test_without_a_lag_an_entry_is_read_as_it_is_put():
    reads = LaggedReads(0)
    reads.put("facts", {"tau_squared": torch.tensor(2.25, dtype=torch.float32), "count": 3, "none": math.nan})
    facts, values = reads.take()
    assert facts == "facts" and values["tau_squared"] == 2.25 and values["count"] == 3.0
    assert math.isnan(values["none"]) and reads.take() is None


def test_with_a_lag_each_entry_is_read_lag_entries_later_in_order_and_exactly():
    """float32 values come back as the same numbers (widened exactly to float64), after `lag` more puts."""
    reads, lag = LaggedReads(2), 2
    values = torch.rand(6, generator=torch.Generator().manual_seed(0))
    taken = []
    for i, value in enumerate(values):
        reads.put(i, {"value": value, "index": float(i)})
        taken.append(reads.take())
    assert taken[:lag] == [None] * lag
    assert [facts for facts, _ in taken[lag:]] == list(range(len(values) - lag))
    assert [read["value"] for _, read in taken[lag:]] == values[:-lag].tolist()
