"""One harness for the studies: a study declares its grid, how one point trains and how its facts are
summarised; the harness trains each point once, keeps the facts in one file and prints the summary.

- **Facts** live in `docs/data/<study>.csv`, one row per point (or several, when a point measures
  several things), with the point's keys, its status (`completed`, `diverged`: results; `failed`: the
  error, in one line) and where it ran: the commit, the CPU or GPU, the threads, the torch version.
- **Resume**: a point already in the facts file is not trained again, whatever its status (a priced run
  gives the same record every time; a failed one is retried only with `--retry-failed`). Each point's
  rows are written as soon as it ends, atomically.
- **One machine's facts**: a priced run's accuracy differs by up to 1.2 points across CPUs, so facts
  from another machine (another CPU or GPU, or torch) are refused unless `--allow-mixed-machines`, and
  the summary then says which machines the facts came from.
- **In parallel**: `--jobs N` runs N points side by side, each pinned to its share of the cores (and,
  with GPUs, to one GPU each). Only priced points can share a machine without changing their facts;
  a grid with wall-clock or CPU-second points keeps `--jobs 1`.
- **Beyond one machine**: `--shard i/n` trains every n-th point of the grid from the i-th (0-based;
  one SLURM array task each) into a facts file of its own; `--merge` gathers the shards' files into
  `--out` (docs/bench.md).
- `--dry-run` lists the grid, what is done and the estimated hours; `--summary-only` summarises the
  facts file without training.
"""

import argparse
import concurrent.futures
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.facts import (
    FAILED,
    HarnessError,
    canonical,
    check_one_machine,
    check_settings,
    current_commit,
    machines_of,
    point_key,
    read_facts,
    this_machine,
    write_facts,
)


@dataclass(frozen=True)
class Study:
    """What a study declares. `grid(args)`: its points, each a dict of `keys` (in the order they train);
    `train(point, args)`: one point's facts (a dict, or a list of dicts when a point measures several
    things); `summarize(facts, args)`: the tables it publishes, as (title, table) pairs (a title of None
    prints the table alone); `exclusive(point)`: whether the point's budget is measured time (wall
    clock or CPU seconds), which another run on the machine would change; `estimate_seconds(point, args)`:
    its run time when no done point of the same grid line says; `settings(args)`: the arguments every
    point of one facts file shares (a budget, a price), recorded in each row: resuming with others is refused."""

    name: str
    doc: str
    keys: tuple[str, ...]
    grid: Callable[[argparse.Namespace], list[dict]]
    train: Callable[[dict, argparse.Namespace], dict | list[dict]]
    summarize: Callable[[pd.DataFrame, argparse.Namespace], list[tuple[str | None, pd.DataFrame]]]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    exclusive: Callable[[dict], bool] = lambda point: False
    estimate_seconds: Callable[[dict, argparse.Namespace], float] = lambda point, args: math.nan
    settings: Callable[[argparse.Namespace], dict] = lambda args: {}
    floatfmt: str = ".3f"
    module: str = ""

    @property
    def out(self) -> str:
        return f"docs/data/{self.name}.csv"

    @property
    def module_name(self) -> str:
        return self.module or f"benchmarks.{self.name}"


# --- one point, in this process or a worker ---------------------------------------------------------------


def _pin(slots, threads: int, gpus: list[str]) -> None:
    """A worker's share of the machine: its cores (and its GPU), taken once when it starts."""
    import torch

    slot = slots.get()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    mine = cores[slot * threads : (slot + 1) * threads] or cores[slot % len(cores) : slot % len(cores) + 1]
    if mine:
        os.sched_setaffinity(0, mine)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    torch.set_num_threads(threads)


def run_point(module: str, point: dict, args: argparse.Namespace) -> tuple[list[dict], float]:
    """Train one point; its rows carry the status (a failure is a row too, with its error in one line)."""
    import importlib

    import torch

    study = importlib.import_module(module).STUDY
    started = time.perf_counter()
    try:
        facts = study.train(dict(point), args)
        rows = facts if isinstance(facts, list) else [facts]
        rows = [{"status": row.pop("run_status", "completed"), **row} for row in rows]
    except Exception as error:  # recorded, never retried silently
        message = " ".join(f"{type(error).__name__}: {error}".split())
        rows = [{"status": FAILED, "error": message}]
    where = {**this_machine(), "threads": torch.get_num_threads()}
    return [{**point, **row, **where} for row in rows], time.perf_counter() - started


# --- the command ------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise HarnessError(f"--shard {text}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise HarnessError(f"--shard {text}: i must be 0 ... n - 1")
    return index, count


def shard_path(out: Path, index: int, count: int) -> Path:
    return out.with_name(f"{out.stem}.shard{index}of{count}{out.suffix}")


def parser_for(study: Study) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{study.name}",
        description=study.doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    study.add_arguments(parser)
    bench = parser.add_argument_group("the harness (benchmarks/harness.py, docs/bench.md)")
    bench.add_argument("--out", default=study.out, help="the facts file (resumes from it)")
    bench.add_argument("--summary-only", action="store_true", help="summarise --out without training")
    bench.add_argument("--dry-run", action="store_true", help="list the grid, what is done and the hours left")
    bench.add_argument("--jobs", type=int, default=1, help="points side by side (priced points only)")
    bench.add_argument("--shard", help="i/n: train every n-th point from the i-th, into a facts file of its own")
    bench.add_argument("--merge", nargs="+", type=Path, help="gather these facts files (the shards') into --out")
    bench.add_argument("--retry-failed", action="store_true", help="train again the points recorded as failed")
    bench.add_argument("--allow-mixed-machines", action="store_true", help="keep facts from different machines")
    return parser


def main(study: Study, argv: list[str] | None = None) -> None:
    args = parser_for(study).parse_args(argv)
    try:
        run(study, args)
    except HarnessError as error:
        sys.exit(f"error: {error}")


def run(study: Study, args: argparse.Namespace) -> pd.DataFrame:
    out = Path(args.out)
    if args.merge:
        facts = merge(study, args, [*args.merge], out)
    elif args.summary_only:
        facts = read_facts(out)
        if facts.empty:
            raise HarnessError(f"{out}: no facts to summarise")
    else:
        facts = train_grid(study, args, out)
        if args.dry_run or args.shard:
            return facts
    print_summary(study, facts, args)
    return facts


TIMES = ("run_seconds", "wall_seconds", "curves", "commit", "threads")  # what two runs of one point may differ in


def same_facts(one: dict, other: dict) -> bool:
    """Two rows of one point with the same results (NaN equal to NaN; their seconds and commit aside)."""
    shared = (set(one) & set(other)) - set(TIMES)
    return all(canonical(one[name]) == canonical(other[name]) for name in shared)


def merge(study: Study, args: argparse.Namespace, paths: list[Path], out: Path) -> pd.DataFrame:
    """--out's facts and the shards', each point once and in the grid's order: a completed row replaces
    a failed one; a point two files hold with other results, or shards of another machine or other
    shared arguments, are refused."""
    facts = read_facts(out)
    rows = {point_key(row, study.keys): [row] for row in facts.to_dict("records")} if not facts.empty else {}
    for path in paths:
        if not path.is_file():
            raise HarnessError(f"--merge {path}: no such file")
        shard = read_facts(path)
        check_one_machine(facts, machines_of(shard), args.allow_mixed_machines, f"--merge {path}")
        for name in study.settings(args):
            if name in shard and not shard[name].dropna().empty:
                check_settings(facts, {name: shard[name].dropna().iloc[0]}, f"--merge {path}")
        for key, group in shard.groupby(list(study.keys), sort=False, dropna=False):
            fresh, earlier = group.to_dict("records"), rows.get(point_key(group.iloc[0], study.keys))
            if earlier is None or all(row.get("status") == FAILED for row in earlier):
                rows[point_key(group.iloc[0], study.keys)] = fresh
            elif fresh[0].get("status") != FAILED and not same_facts(fresh[0], earlier[0]):
                raise HarnessError(f"--merge {path}: point {point_key(fresh[0], study.keys)} differs from --out's")
        facts = pd.concat([facts, shard], ignore_index=True)  # for the next shard's checks
    order = {point_key(point, study.keys): index for index, point in enumerate(study.grid(args))}
    ranked = sorted(rows.items(), key=lambda item: order.get(item[0], len(order)))
    merged = pd.DataFrame([row for _, group in ranked for row in group])
    write_facts(merged, out)
    return merged


def train_grid(study: Study, args: argparse.Namespace, out: Path) -> pd.DataFrame:
    grid = list({point_key(point, study.keys): point for point in study.grid(args)}.values())  # each once
    target = out
    if args.shard:
        index, count = parse_shard(args.shard)
        grid = grid[index::count]
        target = shard_path(out, index, count)
    facts = read_facts(target)
    known = pd.concat([read_facts(out), facts]) if target != out else facts
    failed = set()
    if not known.empty and "status" in known:
        failed = {point_key(row, study.keys) for row in known[known["status"] == FAILED].to_dict("records")}
    if args.retry_failed and failed:
        if not facts.empty:
            facts = facts[[point_key(row, study.keys) not in failed for row in facts.to_dict("records")]]
        known = known[[point_key(row, study.keys) not in failed for row in known.to_dict("records")]]
        failed = set()
    done = {point_key(row, study.keys) for row in known.to_dict("records")}
    pending = [point for point in grid if point_key(point, study.keys) not in done]
    if args.dry_run:
        print_plan(study, args, grid, done, failed, known)
        return facts
    exclusive = [point for point in pending if study.exclusive(point)]
    if args.jobs > 1 and exclusive:
        raise HarnessError(
            f"--jobs {args.jobs}: {len(exclusive)} of the points have a wall-clock or CPU-second budget, which "
            "another run on the machine would change; run them with --jobs 1 on a quiet machine"
        )
    if not pending:
        print(f"{study.name}: all {len(grid)} points of the grid are in {target}", file=sys.stderr)
        return facts
    check_one_machine(known, {tuple(this_machine().values())}, args.allow_mixed_machines, str(target))
    settings = study.settings(args)
    check_settings(known, settings, str(target))
    commit = current_commit()
    print(f"{study.name}: {len(pending)} of {len(grid)} points to train, --jobs {args.jobs}", file=sys.stderr)
    new: dict[int, list[dict]] = {}
    order = {point_key(point, study.keys): index for index, point in enumerate(pending)}

    def keep(rows: list[dict], seconds: float) -> None:
        new[order[point_key(rows[0], study.keys)]] = [{**row, **settings, "commit": commit} for row in rows]
        rows_so_far = [row for index in sorted(new) for row in new[index]]
        write_facts(pd.concat([facts, pd.DataFrame(rows_so_far)], ignore_index=True), target)
        shown = {key: value for key, value in rows[0].items() if key in (*study.keys, "status", "final_accuracy")}
        print(f"[{len(new)}/{len(pending)}] {shown} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    module = study.module_name
    if args.jobs == 1:
        for point in pending:
            keep(*run_point(module, point, args))
    else:
        train_in_parallel(module, pending, args, keep)
    rows_all = [row for index in sorted(new) for row in new[index]]
    return pd.concat([facts, pd.DataFrame(rows_all)], ignore_index=True)


def train_in_parallel(module: str, pending: list[dict], args: argparse.Namespace, keep) -> None:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = [str(index) for index in range(torch.cuda.device_count())]
    context = multiprocessing.get_context("spawn")
    slots = context.Queue()
    for slot in range(args.jobs):
        slots.put(slot)
    threads = max(1, cores // args.jobs)
    pool = concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_pin, initargs=(slots, threads, gpus)
    )
    futures, kept = [pool.submit(run_point, module, point, args) for point in pending], set()
    try:
        for future in concurrent.futures.as_completed(futures):
            keep(*future.result())
            kept.add(future)
    except BaseException:  # Ctrl-C, a dead worker: keep what ended, stop the rest
        for future in futures:
            if future not in kept and future.done() and not future.cancelled() and future.exception() is None:
                keep(*future.result())
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # the points in flight stay pending: a rerun trains them
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    slots.close()
    slots.join_thread()


def print_plan(study, args, grid, done, failed, known) -> None:
    """The grid, point by point: done, failed or pending, and the hours the pending ones should take."""
    line_keys = tuple(key for key in study.keys if key != "seed")  # a grid line: its points but for the seed
    spent = {}
    if not known.empty and "run_seconds" in known:
        for row in known.to_dict("records"):
            if row.get("status") != FAILED and math.isfinite(row["run_seconds"]):
                spent.setdefault(point_key(row, line_keys), []).append(row["run_seconds"])
    rows, total = [], 0.0
    for point in grid:
        key = point_key(point, study.keys)
        measured = spent.get(point_key(point, line_keys))
        seconds = statistics.median(measured) if measured else study.estimate_seconds(point, args)
        state = FAILED if key in failed else "done" if key in done else "pending"
        if state == "pending":
            total += seconds if math.isfinite(seconds) else 0.0
        rows.append({**point, "state": state, "estimated_s": seconds})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".0f"))
    pending = sum(row["state"] == "pending" for row in rows)
    print(
        f"\n{len(grid)} points: {len(grid) - pending} done, {pending} pending, "
        f"about {total / 3600 / args.jobs:.2f} hours at --jobs {args.jobs}"
    )


def print_summary(study: Study, facts: pd.DataFrame, args: argparse.Namespace) -> None:
    machines = machines_of(facts)
    if len(machines) > 1:
        listed = "; ".join(f"{machine}, torch {version}" for machine, version in sorted(machines))
        print(f"note: these facts come from {len(machines)} machines: {listed}")
    if "status" in facts:
        failed = facts[facts["status"] == FAILED]
        for row in failed.to_dict("records"):
            print(f"failed: {point_key(row, study.keys)}: {row.get('error')}")
        facts = facts[facts["status"] != FAILED]
    for title, table in study.summarize(facts.reset_index(drop=True), args):
        print(("\n" + title if title else "") + "\n" + table.to_markdown(index=False, floatfmt=study.floatfmt))
