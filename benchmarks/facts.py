"""A study's facts file: one row per point (or several), with its status and where it ran, written
all or nothing; and the checks that keep one file to one machine and one set of shared arguments."""

import os
import platform
import subprocess
from pathlib import Path

import pandas as pd

FAILED = "failed"


class HarnessError(Exception):
    """A bad argument or facts file, said in one line."""


def canonical(value) -> str:
    """A key's value as text, one way whatever the facts file read it as: 0, 0.0 and "0" are "0"."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def point_key(point: dict, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(canonical(point[key]) for key in keys)


def read_facts(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()


def write_facts(frame: pd.DataFrame, path: Path) -> None:
    """All or nothing: a kill mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)


def this_machine() -> dict:
    """Where this process trains: the GPU when there is one, else the CPU's model name."""
    import torch

    if torch.cuda.is_available():
        machine = torch.cuda.get_device_name(0)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        machine = names[0] if names else platform.processor() or platform.machine()
    return {"machine": machine, "torch": torch.__version__}


def current_commit() -> str:
    """The commit, "-dirty" when code differs from it (the facts files this harness writes do not count)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/data"],
            capture_output=True,
            text=True,
        ).stdout
        return (commit.strip() or "unknown") + ("-dirty" if changed.strip() else "")
    except OSError:
        return "unknown"


def machines_of(facts: pd.DataFrame) -> set[tuple[str, str]]:
    """The (machine, torch) pairs facts came from; rows written before the harness recorded them count
    as one unrecorded machine."""
    if facts.empty:
        return set()
    machine = facts["machine"] if "machine" in facts else pd.Series("unrecorded", index=facts.index)
    version = facts["torch"] if "torch" in facts else pd.Series("unrecorded", index=facts.index)
    return set(zip(machine.fillna("unrecorded").astype(str), version.fillna("unrecorded").astype(str)))


def check_one_machine(facts: pd.DataFrame, joining: set[tuple[str, str]], allow: bool, where: str) -> None:
    together = machines_of(facts) | joining
    if len(together) > 1 and not allow:
        listed = "; ".join(f"{machine}, torch {version}" for machine, version in sorted(together))
        raise HarnessError(
            f"{where}: facts from different machines ({listed}) would be summarised together; "
            "a priced run's accuracy differs across CPUs (pass --allow-mixed-machines to merge them anyway)"
        )


def check_settings(facts: pd.DataFrame, settings: dict, where: str) -> None:
    """Refuse to add points trained with other shared arguments (rows without the column predate it)."""
    for name, value in settings.items():
        if facts.empty or name not in facts:
            continue
        recorded = {canonical(v) for v in facts[name].dropna().unique()}
        if recorded and recorded != {canonical(value)}:
            raise HarnessError(
                f"{where}: its points were trained with {name} = {', '.join(sorted(recorded))}, "
                f"not {canonical(value)}; use another --out for these"
            )
