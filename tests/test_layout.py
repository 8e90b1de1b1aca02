"""What keeps the code readable as it grows: no function in the library or the stages over 60 lines,
and the style the formatter and linter configured in pyproject.toml hold (no markers that switch them off)."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LONGEST = 60


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_in_the_library_or_the_stages_is_over_60_lines():
    long = [
        f"{path.relative_to(REPO)}:{name} ({lines} lines)"
        for folder in ("isample", "stages")
        for path in sorted((REPO / folder).rglob("*.py"))
        for name, lines in functions(path)
        if lines > LONGEST
    ]
    assert not long, long


def test_no_formatter_switches():
    marked = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("isample", "stages", "tests", "benchmarks", "recipes")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt: skip" in line or "fmt: off" in line
    ]
    assert not marked, marked


def test_ruff_format_and_check_pass():
    ruff = str(Path(sys.executable).parent / "ruff")  # installed with the dev extra
    for command in ([ruff, "format", "--check", "."], [ruff, "check", "."]):
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
