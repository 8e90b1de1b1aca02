"""The studies' paired statistics: a difference between two variants of the same seeds, with its 95%
interval (Student t, isample.report.common), written the one way every study's tables write it."""

import pandas as pd

from isample.report.common import confidence_interval


def interval_text(differences: list[float]) -> str:
    """Accuracy differences in points: mean [low, high]."""
    low, high = confidence_interval(differences)
    mean = sum(differences) / len(differences)
    return f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def loss_text(differences: list[float]) -> str:
    """Loss differences as they are: mean [low, high]; empty without any."""
    if not differences:
        return ""
    low, high = confidence_interval(differences)
    return f"{sum(differences) / len(differences):+.3f} [{low:+.3f}, {high:+.3f}]"


def paired(runs: pd.DataFrame, variant: str, reference: pd.Series, column: str = "final_accuracy") -> list[float]:
    """`variant`'s `column` minus `reference` (indexed by seed), seed by seed, over the seeds both have."""
    mine = runs[runs["variant"] == variant].set_index("seed")[column]
    seeds = mine.index.intersection(reference.dropna().index)
    return (mine.loc[seeds] - reference.loc[seeds]).tolist()
