"""benchmarks/harness.py: each point trained once and resumed, failures recorded, one machine's facts,
the dry run, and the same facts whether the grid runs in one process, on two workers or as two shards."""

import os

import pandas as pd
import pytest

from benchmarks import harness
from benchmarks.facts import HarnessError, write_facts
from tests.common import synthetic_data

CALLS = []  # the points this process trained


def toy_train(point: dict, args) -> dict:
    CALLS.append(point)
    if point["variant"] == "boom":
        raise ValueError("a bad\nvalue")
    import torch

    return {
        "final_accuracy": point["seed"] / 10 + len(point["variant"]) / 100,
        "cores": len(os.sched_getaffinity(0)),
    } | {"torch_threads": torch.get_num_threads()}


def toy_arguments(parser):
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["a", "bb"])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--clock", default="priced")


TOY = harness.Study(
    name="toy",
    doc="a toy study",
    keys=("variant", "seed"),
    grid=lambda args: [{"variant": v, "seed": s} for s in args.seeds for v in args.variants],
    train=toy_train,
    summarize=lambda facts, args: [
        ("means:", facts.groupby("variant", sort=False)["final_accuracy"].mean().reset_index())
    ],
    add_arguments=toy_arguments,
    exclusive=lambda point: False,
    settings=lambda args: {"budget": args.budget},
    estimate_seconds=lambda point, args: 60.0,
    module=__name__,
)
STUDY = TOY  # what a worker process imports


def run(tmp_path, *arguments, study=TOY):
    args = harness.parser_for(study).parse_args(["--out", str(tmp_path / "facts.csv"), *arguments])
    return harness.run(study, args)


@pytest.fixture(autouse=True)
def no_calls():
    CALLS.clear()


def test_each_point_trains_once_and_a_rerun_resumes_from_the_facts_file(tmp_path):
    facts = run(tmp_path)
    assert len(CALLS) == 4 and len(facts) == 4
    assert set(facts["status"]) == {"completed"} and facts["commit"].notna().all()
    assert {"machine", "threads", "torch", "budget"} <= set(facts.columns)
    run(tmp_path)
    assert len(CALLS) == 4  # nothing trained again
    facts = run(tmp_path, "--seeds", "0", "1", "2")
    assert [point["seed"] for point in CALLS[4:]] == [2, 2] and len(facts) == 6
    assert pd.read_csv(tmp_path / "facts.csv")["seed"].tolist() == [0, 0, 1, 1, 2, 2]


def test_a_failed_point_is_recorded_in_one_line_and_retried_only_when_asked(tmp_path, capsys):
    facts = run(tmp_path, "--variants", "a", "boom", "--seeds", "0")
    failed = facts[facts["variant"] == "boom"].iloc[0]
    assert failed["status"] == "failed" and failed["error"] == "ValueError: a bad value"
    assert "failed: ('boom', '0'): ValueError: a bad value" in capsys.readouterr().out
    run(tmp_path, "--variants", "a", "boom", "--seeds", "0")
    assert len(CALLS) == 2  # not retried silently
    facts = run(tmp_path, "--variants", "a", "boom", "--seeds", "0", "--retry-failed")
    assert len(CALLS) == 3 and CALLS[-1]["variant"] == "boom" and len(facts) == 2


def test_facts_of_another_machine_or_other_shared_arguments_are_refused(tmp_path, capsys):
    run(tmp_path, "--seeds", "0")
    facts = pd.read_csv(tmp_path / "facts.csv")
    with pytest.raises(HarnessError, match="budget = 1, not 2;"):
        run(tmp_path, "--seeds", "0", "1", "--budget", "2")
    write_facts(facts.assign(machine="Another CPU"), tmp_path / "facts.csv")
    with pytest.raises(HarnessError, match="different machines.*Another CPU"):
        run(tmp_path, "--seeds", "0", "1")
    run(tmp_path, "--seeds", "0", "1", "--allow-mixed-machines")
    assert "these facts come from 2 machines" in capsys.readouterr().out
    assert len(CALLS) == 4


def test_keys_read_back_from_the_facts_file_match_the_grid_whatever_their_type(tmp_path):
    """A column of numbers only (prices 0 and 0.5) reads back as floats: 0.0 is the grid's "0"."""
    run(tmp_path, "--variants", "0", "0.5", "--seeds", "0")
    assert pd.read_csv(tmp_path / "facts.csv")["variant"].tolist() == [0.0, 0.5]
    run(tmp_path, "--variants", "0", "0.5", "--seeds", "0", "0")  # a repeated point is one point
    assert len(CALLS) == 2


def test_merge_keeps_the_grid_order_lets_a_completed_row_replace_a_failed_one_and_refuses_conflicts(tmp_path):
    run(tmp_path, "--seeds", "0", "1", "--variants", "a", "boom")
    facts = pd.read_csv(tmp_path / "facts.csv")
    shard = facts.iloc[[3, 0]].assign(status="completed", error=float("nan"), final_accuracy=[0.7, 0.01])
    write_facts(shard, tmp_path / "shard.csv")  # seed 1's boom, completed now; seed 0's a, the same again
    merged = run(tmp_path, "--seeds", "0", "1", "--variants", "a", "boom", "--merge", str(tmp_path / "shard.csv"))
    assert merged[["variant", "seed"]].values.tolist() == [["a", 0], ["boom", 0], ["a", 1], ["boom", 1]]
    assert merged["status"].tolist() == ["completed", "failed", "completed", "completed"]
    write_facts(shard.assign(final_accuracy=0.9), tmp_path / "other.csv")
    with pytest.raises(HarnessError, match=r"point \('boom', '1'\) differs"):
        run(tmp_path, "--seeds", "0", "1", "--variants", "a", "boom", "--merge", str(tmp_path / "other.csv"))
    write_facts(shard.assign(budget=2.0), tmp_path / "budget.csv")
    with pytest.raises(HarnessError, match="budget = 1, not 2"):
        run(tmp_path, "--merge", str(tmp_path / "budget.csv"))


def test_the_dry_run_lists_the_grid_what_is_done_and_the_hours_left(tmp_path, capsys):
    run(tmp_path, "--seeds", "0")
    capsys.readouterr()
    run(tmp_path, "--seeds", "0", "1", "2", "--dry-run")
    out = capsys.readouterr().out
    assert len(CALLS) == 2
    assert out.count("| done") == 2 and out.count("| pending") == 4
    assert "6 points: 2 done, 4 pending, about 0.07 hours at --jobs 1" in out  # 4 x 60 s


def test_measured_time_points_keep_one_job(tmp_path):
    exclusive = harness.Study(**{**TOY.__dict__, "exclusive": lambda point: True})
    with pytest.raises(HarnessError, match="--jobs 1 on a quiet machine"):
        run(tmp_path, "--jobs", "2", study=exclusive)
    assert not CALLS


def comparable(facts: pd.DataFrame) -> pd.DataFrame:
    """The facts but for what differs between two runs of the same point: its seconds, where it ran."""
    drop = [c for c in facts if c in ("run_seconds", "wall_seconds", "threads", "cores", "torch_threads")]
    return facts.drop(columns=drop).sort_values(["variant", "seed"]).reset_index(drop=True)


def test_two_workers_give_the_facts_of_one_sequential_run_each_on_its_share_of_the_cores(tmp_path):
    sequential = run(tmp_path / "one", "--seeds", "0", "1", "2")
    parallel = run(tmp_path / "two", "--seeds", "0", "1", "2", "--jobs", "2")
    pd.testing.assert_frame_equal(comparable(sequential), comparable(parallel))
    if len(os.sched_getaffinity(0)) == 2:
        assert parallel["cores"].eq(1).all() and parallel["torch_threads"].eq(1).all()
    written = pd.read_csv(tmp_path / "two" / "facts.csv")
    assert written["seed"].tolist() == [0, 0, 1, 1, 2, 2]  # in the grid's order, whichever ended first


def test_shards_merged_give_the_facts_of_one_sequential_run(tmp_path):
    sequential = run(tmp_path / "one", "--seeds", "0", "1", "2")
    for index in range(2):
        run(tmp_path / "two", "--seeds", "0", "1", "2", "--shard", f"{index}/2")
    shards = sorted((tmp_path / "two").glob("facts.shard*of2.csv"))
    assert [len(pd.read_csv(path)) for path in shards] == [3, 3]
    run(tmp_path / "two", "--merge", *map(str, shards))
    merged, sequential = (pd.read_csv(tmp_path / name / "facts.csv") for name in ("two", "one"))
    pd.testing.assert_frame_equal(comparable(sequential), comparable(merged))
    with pytest.raises(HarnessError, match="--shard 2/2: i must be"):
        run(tmp_path, "--shard", "2/2")


def test_a_real_priced_study_sharded_gives_the_facts_of_one_sequential_run(tmp_path, monkeypatch):
    """break_even itself, on tiny data: priced runs are deterministic, so two shards give every fact
    of one sequential run, bit for bit, but for their seconds."""
    from benchmarks import break_even, regimes

    monkeypatch.setitem(regimes.REGIMES, "tiny", {"data": {"train_subset": 0, "test_subset": 0, "augment": False}})
    monkeypatch.setattr(regimes, "_full_data", lambda: synthetic_data(n_train=256, n_test=64))
    monkeypatch.setattr(regimes, "_base", lambda: {**_params(), "batch_size": 32})
    arguments = ["--regimes", "tiny", "--seeds", "0", "1", "--budget", "0.6", "--prices", "0", "--rule-prices"]
    arguments += ["--figure", str(tmp_path / "figure.png")]
    sequential = run(tmp_path / "one", *arguments, study=break_even.STUDY)
    for index in range(2):
        run(tmp_path / "two", *arguments, "--shard", f"{index}/2", study=break_even.STUDY)
    shards = [str(path) for path in sorted((tmp_path / "two").glob("*.shard*"))]
    run(tmp_path / "two", *arguments, "--merge", *shards, study=break_even.STUDY)
    merged = pd.read_csv(tmp_path / "two" / "facts.csv")
    sequential = pd.read_csv(tmp_path / "one" / "facts.csv")
    assert sequential["status"].eq("completed").all() and sequential["iterations"].gt(0).all()
    assert len(sequential) == 6  # uniform and IS forced on with either draw, two seeds
    pd.testing.assert_frame_equal(comparable(sequential), comparable(merged))


def _params() -> dict:
    import yaml

    raw = yaml.safe_load(open("params.yaml"))
    raw["train"].pop("budgets", None)
    raw["data"].update(train_eval_subset=64)
    raw["train"]["device"] = "cpu"
    return raw


SUMMARIES = [
    ("break_even", "docs/break-even.md", ["--figure", "{tmp}/figure.png"]),
    ("break_even", "docs/break-even.md", ["--out", "docs/data/break_even_2018.csv", "--figure", "{tmp}/f.png"]),
    ("break_even_causes", "docs/break-even.md", []),
    ("presample_auto", "docs/presample-auto.md", ["--figure", "{tmp}/ratios.png"]),
]


def summary_tables(study: str, extra: list[str], tmp_path, capsys) -> list[str]:
    """What `python -m benchmarks.<study> --summary-only` prints from the committed facts, table by table."""
    import importlib

    module = importlib.import_module(f"benchmarks.{study}")
    args = harness.parser_for(module.STUDY).parse_args(["--summary-only", *(e.format(tmp=tmp_path) for e in extra)])
    harness.run(module.STUDY, args)
    return [block.strip() for block in capsys.readouterr().out.split("\n\n") if block.strip()]


@pytest.mark.parametrize("study, doc, extra", SUMMARIES)
def test_the_summary_alone_reproduces_the_committed_tables_from_the_committed_facts(
    study, doc, extra, tmp_path, capsys
):
    tables = summary_tables(study, extra, tmp_path, capsys)
    page = open(doc).read()
    assert tables and all(table in page for table in tables), f"{study}: a table differs from {doc}'s"
    assert f"python -m benchmarks.{study}" in page  # the page states the command that makes them


@pytest.mark.parametrize("doc", sorted({doc for _, doc, _ in SUMMARIES}))
def test_every_interval_a_page_quotes_is_in_the_tables_its_facts_make(doc, tmp_path, capsys):
    """The prose of a measured page quotes its tables: each "-0.19 [-1.18, +0.81]" it writes is a cell of
    a table its studies make from the committed facts (a number retyped by hand would go stale)."""
    import re

    made = "\n".join(
        table
        for study, page, extra in SUMMARIES
        if page == doc
        for table in summary_tables(study, extra, tmp_path, capsys)
    )
    prose = "\n".join(line for line in open(doc).read().splitlines() if not line.startswith("|"))
    quoted = re.findall(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", prose)
    assert quoted and not [interval for interval in quoted if interval not in made], doc


STUDIES = ["break_even", "break_even_causes", "presample_auto", "switching_rule", "default_regime"]
STUDIES += ["switch_on", "reuse_choices", "tau_estimates", "six_methods"]
TINY = {  # study -> arguments for one or two points of a few seconds each
    "break_even": ["--regimes", "default", "--seeds", "0", "--prices", "0", "--rule-prices", "--budget", "0.5"],
    "break_even_causes": ["--seeds", "0", "--causes", "presample_flat", "lr_tau", "--budget", "0.5"],
    "presample_auto": [
        "--regimes",
        "default",
        "--clocks",
        "priced",
        "--seeds",
        "0",
        "--variants",
        "auto",
        "--budget",
        "0.5",
    ],
    "switching_rule": ["--regimes", "default_cpu", "--seeds", "0", "--cpu-budget-scale", "0.005"],
    "default_regime": ["--candidates", "4k", "--cpu-budget", "1.5"],
    "switch_on": ["--seeds", "0", "--variants", "eval:0.1", "--cpu-budget", "1.5"],
    "reuse_choices": ["--seeds", "0", "--variants", "max:0:0.2", "--cpu-budget", "1.5"],
    "tau_estimates": ["--cpu-budget", "1.5", "--every", "2"],
    "six_methods": ["--seeds", "0", "--methods", "uniform", "rho_loss", "--budget", "1.5"],
}


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_runs_on_the_harness_end_to_end(name, tmp_path, monkeypatch, capsys):
    """Each study trains its points on tiny data (every regime shrunk to it) and summarises them."""
    import importlib

    from benchmarks import regimes

    tiny = {"data": {"train_subset": 0, "test_subset": 0}}
    monkeypatch.setattr(regimes, "REGIMES", {regime: tiny for regime in regimes.REGIMES})
    monkeypatch.setattr(regimes, "_full_data", lambda: synthetic_data(n_train=512, n_test=64))
    monkeypatch.setattr(regimes, "_base", lambda: {**_params(), "batch_size": 32})
    regimes.data_of.cache_clear()
    study = importlib.import_module(f"benchmarks.{name}").STUDY
    drawn = name in ("break_even", "presample_auto")  # studies whose summary draws a figure: not into docs/
    extra = ["--figure", str(tmp_path / "figure.png")] if drawn else []
    # the committed baselines predate the machine column: merging them with this machine's is asked for
    extra += (
        ["--against", "docs/data/break_even_2018.csv", "--allow-mixed-machines"] if name == "break_even_causes" else []
    )
    try:
        facts = run(tmp_path, *TINY[name], *extra, study=study)
    finally:
        regimes.data_of.cache_clear()
    assert len(facts) and facts["status"].isin(["completed", "diverged"]).all(), facts.get("error")
    assert "|" in capsys.readouterr().out  # a summary table
    assert not drawn or (tmp_path / "figure.png").is_file()
    source = open(f"benchmarks/{name}.py").read()
    assert not [other for other in STUDIES if other != name and f"benchmarks.{other} import" in source]


def test_switch_on_from_the_pipelines_records_reads_the_rules_run_not_is_forced_on(tmp_path):
    """`benchmarks.switch_on --records results`: IS forced on (compare.forced_is) switches on at its first
    iteration, so only the rule's run says when IS switched on."""
    from benchmarks.switch_on import from_records
    from isample.report.records import write_run
    from tests.common.records import epochs, run

    records = {
        "upper_bound/cifar10.is.2m.0.xlsx": run("upper_bound", 0, epochs(0.6, is_share_by_lr=(0.0, 0.5, 0.5))),
        "upper_bound/cifar10.is-forced.2m.0.xlsx": run(
            "upper_bound", 0, epochs(0.5, is_share_by_lr=(1, 1, 1)), forced=True
        ),
        "uniform/cifar10.un.2m.0.xlsx": run("uniform", 0, epochs(0.62)),
    }
    for name, record in records.items():
        record.params["budget_seconds"] = "120"
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_run(tmp_path / name, record)
    rows = from_records(tmp_path)
    assert len(rows) == 1 and rows["final_is"].iloc[0] == pytest.approx(
        records["upper_bound/cifar10.is.2m.0.xlsx"].final_accuracy
    )
