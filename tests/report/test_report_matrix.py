"""The report never concludes more than its records show: a generated matrix of synthetic records.

For every combination of IS share (0 / partial / full), seeds (1 / 3), presample ratios (1 / 4),
a diverged run or not, a timing record or none, and IS forced on beside the rule or not, in both
languages: no sentence states a
direction unless the rule's evidence holds; no nan, inf, None or empty value outside tables;
every section ends in a conclusion or a "missing" line.
"""

import itertools
import re

import pytest

from isample.report.records import FORCED_ARM as ARM
from tests.common.records import epochs, forced_runs, report, run, timing_tables

SHARES = {"off": (0.0, 0.0, 0.0), "partial": (0.0, 0.6, 0.6), "full": (1.0, 1.0, 1.0)}
DIRECTION = {
    "en": re.compile(r"\b(higher|lower|sooner|later|faster|slower|better|worse)\b", re.I),
    "zh": re.compile(r"更高|更低|更快|更慢|更好|更差|更早|更晚|高于|低于"),
}
FIT_CLAIM = {"en": re.compile(r"\b(linear|proportional)\b", re.I), "zh": re.compile(r"线性|成正比")}
NOT_A_VALUE = re.compile(r"\b(nan|inf|None)\b|:\s*[.;,]|\(\s*\)|=\s*[,.;)]|\{\w*\}")
CONCLUSION = {"en": ("### Conclusion", "**Missing:**"), "zh": ("### 结论", "**缺少：**")}
RULES_HEADING = {"en": "## How the conclusions are drawn", "zh": "## 结论的判定规则"}
FORCED_HEADING = {"en": "### IS forced on at every iteration", "zh": "### 每次迭代都强制启用重要性采样"}


def sections(markdown: str, lang: str) -> dict[str, list[str]]:
    """Prose lines per numbered section (tables, images and the rules list left out)."""
    found, current = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = line if re.match(r"## \d\.", line) else None
            if current:
                found[current] = []
            continue
        if current and line.strip() and not line.startswith(("|", "![")):
            found[current].append(line)
    assert not any(RULES_HEADING[lang] in heading for heading in found)
    return found


def split_at(lines: list[str], heading: str) -> tuple[list[str], list[str]]:
    """The lines before a subsection's heading, and the subsection's up to the next one."""
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    if not starts:
        return lines, []
    after = lines[starts[0] + 1 :]
    end = next((i for i, line in enumerate(after) if line.startswith("### ")), len(after))
    return lines[: starts[0]] + after[end:], after[:end]


CASES = list(itertools.product(SHARES, (1, 3), (1, 4), (False, True), (True, False), (False, True), ("en", "zh")))


@pytest.mark.parametrize("share, seeds, ratios, diverged, with_timing, forced, lang", CASES)
def test_no_conclusion_beyond_the_records(share, seeds, ratios, diverged, with_timing, forced, lang):
    is_accuracies, uniform_accuracies = [0.66, 0.65, 0.67][:seeds], [0.60, 0.61, 0.60][:seeds]
    is_runs = [run("upper_bound", s, epochs(a, is_share_by_lr=SHARES[share])) for s, a in enumerate(is_accuracies)]
    uniform_runs = [run("uniform", s, epochs(a)) for s, a in enumerate(uniform_accuracies)]
    if diverged:
        is_runs[0] = run(
            "upper_bound",
            0,
            epochs(0.1, is_share_by_lr=SHARES[share]),
            status="diverged at epoch 12, iteration 360, lr 1000",
        )
    timing = timing_tables(ratios=[2.0, 3.0, 5.0, 7.0][:ratios]) if with_timing else None
    arms = {ARM: forced_runs([0.70, 0.69, 0.71][:seeds])} if forced else {}
    markdown, _ = report(is_runs, uniform_runs, timing, lang, {}, arms)
    found = sections(markdown, lang)
    assert len(found) == 5, list(found)
    comparison, activation, cost, all_methods, speedup = found.values()
    comparison, forced_part = split_at(comparison, FORCED_HEADING[lang])
    assert bool(forced_part) == forced

    evidence = share != "off" and seeds >= 2 and not diverged
    for line in comparison if not evidence else []:
        assert not DIRECTION[lang].search(line), line
    for line in forced_part if seeds < 2 else []:  # forced on: always IS, so seeds are the evidence
        assert not DIRECTION[lang].search(line), line
    if forced and seeds >= 2:  # the check is not vacuous: IS forced on 10 points above uniform is stated
        assert any(DIRECTION[lang].search(line) for line in forced_part), forced_part
    for line in activation + cost + speedup:  # one budget: no speed-up claim
        assert not DIRECTION[lang].search(line), line
    healthy_pairs = seeds - diverged
    for line in all_methods if healthy_pairs < 2 else []:
        assert not DIRECTION[lang].search(line), line
    if ratios == 1:
        for line in cost:
            assert not FIT_CLAIM[lang].search(line), line
    for lines in found.values():
        for line in lines:
            assert not NOT_A_VALUE.search(line), line
        assert any(line.startswith(CONCLUSION[lang]) for line in lines), lines
    if not with_timing:
        assert any(line.startswith(CONCLUSION[lang][1]) for line in cost)


def test_the_matrix_can_fail():
    """With the evidence there, a direction is stated: the direction check is not vacuous."""
    is_runs = [
        run("upper_bound", s, epochs(a, is_share_by_lr=SHARES["full"])) for s, a in enumerate([0.66, 0.65, 0.67])
    ]
    uniform_runs = [run("uniform", s, epochs(a)) for s, a in enumerate([0.60, 0.61, 0.60])]
    markdown, _ = report(is_runs, uniform_runs, timing_tables(), "en", {})
    comparison = next(iter(sections(markdown, "en").values()))
    assert any(DIRECTION["en"].search(line) for line in comparison)
    assert any(
        FIT_CLAIM["en"].search(line)
        for line in sections(markdown, "en")["## 3. What the sampling costs (notebook experiments 6-8)"]
    )
    assert NOT_A_VALUE.search("Presample time = nan ms x p") and NOT_A_VALUE.search("at: never s, off: .")
