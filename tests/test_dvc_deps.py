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


def stage_instances() -> dict[str, dict]:
    """Every stage as DVC runs it: a foreach stage once per method it may run (${item} filled in)."""
    from isample.methods.catalog import CATALOG

    peers = [name for name in CATALOG if name not in ("uniform", "upper_bound")]
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    instances = {}
    for name, stage in stages.items():
        if "foreach" not in stage:
            instances[name] = stage
            continue
        for method in peers:
            text = yaml.safe_dump(stage["do"]).replace("${item}", method)
            instances[f"{name}@{method}"] = yaml.safe_load(text)
    return instances


def methods_run(stage: dict) -> list[str]:
    """The selection methods a stage's command runs: its --method, and uniform and upper_bound for timing."""
    words = stage["cmd"].split()
    method = words[words.index("--method") + 1] if "--method" in words else None
    if words[2] == "stages.timing":
        return ["uniform", method or "upper_bound"]
    if words[2] == "stages.tables":  # the IL models train with uniform draws; the method itself never runs
        return ["uniform"]
    return [method] if method else []


def loaded_modules(stage: dict) -> set[Path]:
    """Every project file the stage's command loads: its module's import closure, with each method it
    runs (isample.methods loads a method's module when it is first used, which no import shows)."""
    from isample.methods.catalog import CATALOG

    roots = [stage["cmd"].split("-m ", 1)[1].split()[0]]
    roots += [CATALOG[method].implementation.split(":")[0] for method in methods_run(stage)]
    return {path for root in roots for path in import_closure(root)}


def deps_of(stage: dict) -> list[str]:
    return [(dep if isinstance(dep, str) else next(iter(dep))).split()[0] for dep in stage.get("deps", [])]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO).as_posix()
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", list(stage_instances()))
def test_every_loaded_module_is_a_dep_and_no_other_method_is(name):
    stage = stage_instances()[name]
    deps = deps_of(stage)
    missing = sorted(p.relative_to(REPO).as_posix() for p in loaded_modules(stage) if not covered(p, deps))
    assert not missing, f"stage {name} imports files that are not among its deps: {', '.join(missing)}"
    method_files = {dep for dep in deps if dep.startswith("isample/methods/") and dep.count("/") == 2}
    loaded = {p.relative_to(REPO).as_posix() for p in loaded_modules(stage)}
    assert method_files <= loaded, f"stage {name} depends on methods it never runs: {sorted(method_files - loaded)}"
    assert "isample/methods" not in deps  # the whole folder would rerun it for an edit to any method


@pytest.mark.parametrize("name", [n for n in stage_instances() if n.startswith(("train", "timing", "tables"))])
def test_stage_params_are_what_config_says_the_stage_reads(name):
    from isample.experiment.runs import stage_params

    stage = stage_instances()[name]
    kind = name.split("@")[0].removesuffix("_is").removesuffix("_uniform").removesuffix("_peer")
    kind = "timing_peer" if name.startswith("timing_peer") else kind
    method = (methods_run(stage) or [None])[-1]
    expected = stage_params(kind, None if name == "timing" else method)
    assert stage["params"] == expected


def test_the_closure_follows_imports_through_other_modules():
    closure = {p.relative_to(REPO).as_posix() for p in import_closure("stages.report")}
    # stages.report -> isample.report.render -> isample.report.equal_time -> isample.report.records
    assert {
        "stages/report.py",
        "isample/report/render.py",
        "isample/report/equal_time.py",
        "isample/report/records.py",
        "isample/__init__.py",
        "isample/report/__init__.py",
    } <= closure
    assert "isample/experiment/timing.py" not in closure


def test_the_committed_lock_matches_the_committed_code_params_and_results():
    """`dvc status` of this checkout, as a fresh clone sees it: every stage's code, params and outputs as
    dvc.lock recorded them, but for the prepared data, which git does not keep (prepare writes it byte
    for byte the same). A commit that edits a stage's code or params without its lock fails here."""
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    stale = {}
    for stage, changes in json.loads(result.stdout or "{}").items():
        for change in changes:
            kept = change
            if isinstance(change, dict):  # {"changed deps" | "changed outs": {path: why}}
                kept = {
                    kind: {path: why for path, why in paths.items() if path != "data/prepared"}
                    for kind, paths in change.items()
                }
                kept = {kind: paths for kind, paths in kept.items() if paths}
            if kept:
                stale.setdefault(stage, []).append(kept)
    assert not stale, f"dvc.lock no longer matches the code or params: {stale}; rerun or `dvc commit` the stages"
