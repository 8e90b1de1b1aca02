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
