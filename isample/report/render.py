"""The markdown report and its metrics, from the records alone: the parameters, then one section per
module (each holds its own facts, rules and words), then how every conclusion is drawn."""

import math

import pandas as pd

from isample.names import IMPORTANCE, UNIFORM
from isample.report import activation, all_methods, common, cost, equal_time, forced, speedup
from isample.report.records import FORCED_ARM, Run

SECTIONS = (equal_time, forced, activation, cost, all_methods, speedup)  # in the report's order
LANGUAGES = tuple(common.WORDS)
PARAMETERS_SHOWN = [
    "data.name",
    "model.name",
    "budget",
    "clock",  # what the budget counts: wall or priced seconds (docs/priced-clock.md)
    "presample",
    "sampler.draw",  # how IS drew b of its presample: with or without replacement
    "batch_size",
    "train.lr",
    "train.lr_scale",
    "train.lr_schedule",
    "train.lr_milestones",
    "train.lr_gamma",
    "data.augment",
    "sampler.tau_th",
    "sampler.score",
    "sampler.score_mode",
    "sampler.smoothing",
    "train_examples",
    "train_set_examples",
    "test_examples",
    "device_name",
    "torch",
]


def words(lang: str) -> dict:
    """Every word of the report in one language: the shared ones and each section's."""
    if lang not in common.WORDS:
        raise ValueError(f"unknown report language {lang!r}; known: {', '.join(LANGUAGES)}")
    merged = dict(common.WORDS[lang])
    for module in SECTIONS:
        merged.update(module.TEXT[lang])
    return merged


def rules(lang: str) -> list[str]:
    return [rule for module in SECTIONS for rule in getattr(module, "RULES", {}).get(lang, [])]


def parameters_section(text: dict, runs: list[Run], files: list[str]) -> list[str]:
    out = [text["parameters"], ""]
    if runs:
        shown = {**runs[0].params, "seeds": ", ".join(str(s) for s in sorted({run.seed for run in runs}))}
        rows = [[key, shown.get(key, "-")] for key in [*PARAMETERS_SHOWN, "seeds"]]
        out += [common.table(["parameter", "value"], rows), ""]
    return out + [text["files"], ""] + [f"- `{f}`" for f in files] + [""]


def longest_budget(runs: list[Run]) -> list[Run]:
    """The runs of the longest budget: sections 1-4 compare at one budget."""
    if not runs:
        return runs
    longest = max(run.budget_seconds for run in runs)
    return [run for run in runs if run.budget_seconds == longest or math.isnan(run.budget_seconds)]


def render(
    runs: dict[str, list[Run]],
    timing: dict[str, pd.DataFrame] | None,
    lang: str,
    figures: dict[str, str],
    files: list[str],
) -> tuple[str, dict, dict]:
    """The markdown report, every number (reports/metrics.json) and the headline (metrics.json).

    runs: every method's records by name (upper_bound and uniform among them); with several budgets,
    sections 1-4 use the longest. timing: the timing records, every method's rows in `per_ratio`."""
    text = words(lang)
    at_longest = {method: longest_budget(method_runs) for method, method_runs in runs.items() if method_runs}
    is_runs, uniform_runs = at_longest.get(IMPORTANCE, []), at_longest.get(UNIFORM, [])
    out = [text["title"], "", text["generated"], "", text["break_even"], ""]
    out += parameters_section(text, is_runs + uniform_runs, files)
    sections = [
        equal_time.section(
            text,
            is_runs,
            uniform_runs,
            figures,
            forced.section(text, at_longest.get(FORCED_ARM, []), is_runs, uniform_runs),
        ),
        activation.section(text, is_runs, figures),
        cost.section(text, timing, figures),
        all_methods.section(text, at_longest, timing["per_ratio"] if timing else None, figures),
        speedup.section(text, [run for arm in runs.values() for run in arm if not run.charged_seconds], figures),
    ]
    metrics, headline = {}, {}
    for section in sections:
        out += section.lines
        metrics.update(section.metrics)
        headline.update(section.headline)
    out += [text["rules"], ""] + [f"- {rule}" for rule in rules(lang)] + [""]
    metrics["missing"] = list(dict.fromkeys(m for section in sections for m in section.missing))
    return "\n".join(out), metrics, headline
