"""dvc.yaml's deps cover every project module that a stage's command imports, directly or through
other modules, so no code edit can leave a stale result behind (issue: results go stale)."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("isample", "stages")


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Dotted names a file imports, `from a.b import c` giving both a.b and a.b.c."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_closure(module: str) -> set[Path]:
    """Every project file loaded by `python -m module`, parents' __init__.py included."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            path = module_file(".".join(parts[:depth]))
            if path is not None and path not in seen:
                seen.add(path)
                pending.extend(imported_modules(path))
    return seen


def stage_specs() -> dict[str, dict]:
    """Every stage's definition; a foreach stage's is its `do` template."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def stage_modules() -> dict[str, str]:
    return {name: stage["cmd"].split("-m ", 1)[1].split()[0] for name, stage in stage_specs().items()}


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO).as_posix()
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", list(stage_modules()))
def test_every_imported_module_is_a_dep(stage):
    spec = stage_specs()[stage]
    deps = [dep if isinstance(dep, str) else next(iter(dep)) for dep in spec.get("deps", [])]
    missing = sorted(p.relative_to(REPO).as_posix() for p in import_closure(stage_modules()[stage]) if not covered(p, deps))
    assert not missing, f"stage {stage} imports files that are not among its deps: {', '.join(missing)}"


def test_the_closure_follows_imports_through_other_modules():
    closure = {p.relative_to(REPO).as_posix() for p in import_closure("stages.report")}
    # stages.report -> isample.report.render -> isample.report.facts -> isample.report.records
    assert {"stages/report.py", "isample/report/render.py", "isample/report/facts.py",
            "isample/report/records.py", "isample/__init__.py", "isample/report/__init__.py"} <= closure  # fmt: skip
    assert "isample/experiment/profiling.py" not in closure
