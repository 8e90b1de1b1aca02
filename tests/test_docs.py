"""The README and docs/ stay true to the repository: every relative link leads to a file (and heading)
that exists, and every command and project path they name is there to run or open."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "isample/methods/README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
MODULE = re.compile(r"python -m ((?:benchmarks|stages)\.\w+)")
MAKE = re.compile(r"`make ([a-z][\w-]*)(?![\w=])")
ANSWER_COMMANDS_GLOSSARY = ("## The answer so far", "## Two commands", "## Words and symbols")
PATH = re.compile(r"`((?:isample|stages|tests|benchmarks|docs|recipes)/[\w/.\-]+)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def names(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_docs_pages_exist_and_the_readme_is_a_front_door():
    """nanoGPT's front door: within 40 lines what it does, the answer (at most 6 lines, its numbers linked)
    and the two commands; then the glossary; the detail in docs/, linked."""
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) < 200, len(readme)
    assert len(PAGES) > 5
    sections = [i for i, line in enumerate(readme) if line.startswith("## ")]
    answer, commands, glossary = (readme.index(title) for title in ANSWER_COMMANDS_GLOSSARY)
    assert answer < commands < glossary and sections[:3] == [answer, commands, glossary]
    assert answer <= 8 and glossary <= 40 and "make run" in readme[commands + 3] and "make test" in readme[commands + 4]
    answered = [line for line in readme[answer + 1 : commands] if line.strip()]
    assert len(answered) <= 6, answered
    bullets = "\n".join(answered).replace("\n  ", " ").splitlines()
    assert all("](" in bullet for bullet in bullets if re.search(r"\d\.\d", bullet))  # a number names its page


@pytest.mark.parametrize("page", PAGES, ids=names)
def test_every_relative_link_leads_somewhere(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{names(page)}: {target} leads nowhere"
        if anchor and destination.suffix == ".md":
            assert anchor in anchors(destination), f"{names(page)}: no heading #{anchor} in {path or names(page)}"


@pytest.mark.parametrize("page", PAGES, ids=names)
def test_every_command_and_path_named_exists(page):
    text = page.read_text()
    makefile = (ROOT / "Makefile").read_text()
    for module in MODULE.findall(text):
        assert importlib.util.find_spec(module) is not None, f"{names(page)}: python -m {module}"
    for target in MAKE.findall(text):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{names(page)}: make {target}"
    for path in PATH.findall(text):
        path = path.split("::")[0].rstrip(".")
        if "<" not in path and "*" not in path:
            assert (ROOT / path).exists(), f"{names(page)}: {path}"


def test_each_method_has_one_card():
    """isample/methods/README.md: one card per method, each opening with its name in bold (a copy of a card
    goes stale beside the one kept up to date)."""
    from isample.methods import METHODS

    text = (ROOT / "isample/methods/README.md").read_text()
    cards = re.findall(r"^\*\*(\w+)\*\* \(read against", text, flags=re.MULTILINE)
    assert sorted(cards) == sorted(set(cards)) and set(cards) >= set(METHODS) - {"uniform", "reuse"}, cards


# Tables a test renders from their data byte for byte, or checks against it: (page, header start) -> the test.
CHECKED_TABLES = {
    ("docs/break-even.md", ""): "tests/test_harness.py (break_even, break_even_causes: every table from docs/data)",
    ("docs/presample-auto.md", ""): "tests/test_harness.py (presample_auto: every table from docs/data)",
    ("docs/priced-clock.md", "| price | seconds |"): "test_the_priced_clocks_prices_are_params_yamls",
}
NOT_CHECKED = re.compile(
    r"^\*Not checked by a test: pasted from .*`(?P<command>(?:python -m|dvc exp run)[^`]*)`.*, published at commit "
    r"(?P<commit>[0-9a-f]{7,40}) \(\d{4}-\d\d-\d\d\); its records are not kept in the repository"
)
MEASURED_CELL = re.compile(r"^\**[+-]?\d*\.\d+")  # a cell that is a measured number: 0.6448, -13.32, **+1.12 ...


def measured_tables(page: Path) -> list[tuple[int, str, str]]:
    """(line, header, the first non-empty line after it) of every table with a measured number in its body."""
    lines, found, i = page.read_text().splitlines(), [], 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
        cells = [cell.strip() for row in lines[i + 2 : end] for cell in row.strip("|").split("|")]
        if any(MEASURED_CELL.match(cell) for cell in cells):
            found.append((i + 1, lines[i], next((line for line in lines[end:] if line.strip()), "")))
        i = end
    return found


@pytest.mark.parametrize("page", PAGES, ids=names)
def test_every_measured_table_is_checked_against_its_data_or_says_it_is_not(page):
    """A table of measured numbers is either rendered from (or checked against) a data file by a test, or
    is followed by a line naming the command that measured it and the commit that published it, saying
    that no test checks it (its records are not in the repository)."""
    import subprocess

    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    for line, header, after in measured_tables(page):
        if any(names(page) == p and header.startswith(start) for p, start in CHECKED_TABLES):
            continue
        note = NOT_CHECKED.match(after)
        assert note, f"{names(page)}:{line}: a measured table with no test and no 'Not checked by a test' line"
        command = note["command"]
        if command.startswith("python -m "):
            assert importlib.util.find_spec(command.split()[2]) is not None, f"{names(page)}:{line}: {command}"
        if shallow.stdout.strip() == "false":  # a full clone has every commit a page names
            known = subprocess.run(["git", "cat-file", "-e", f"{note['commit']}^{{commit}}"], cwd=ROOT)
            assert known.returncode == 0, f"{names(page)}:{line}: no commit {note['commit']}"


def test_the_priced_clocks_prices_are_params_yamls():
    """docs/priced-clock.md's prices table and its a at p = 2 are params.yaml's train.prices."""
    import yaml

    from isample.pricing import Prices

    stated = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["prices"]
    page = (ROOT / "docs/priced-clock.md").read_text()
    for name in ("forward", "backward", "iteration", "score"):
        assert re.search(rf"^\| {name} \| {stated[name]} \|", page, re.M), name
    prices = Prices(stated["forward"], stated["backward"], stated["iteration"], stated["score"])
    a = prices.presample_share(256, 128)
    step = prices.train_step(128)
    assert f"a = 256 x {stated['score']} / {step:.3f} = {a:.2f}" in page
