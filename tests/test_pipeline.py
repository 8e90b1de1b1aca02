"""The real pipeline end to end in a fresh copy of the repository: dvc repro, then
dvc exp run -S presample=7, then bad values. Uses a tiny generated CIFAR-10 archive (400 training and
200 test images: every run's final evaluation reads the whole test set, and prepare decodes the whole
archive; tests/experiment/test_data.py reads the real one) and a tiny override of params.yaml."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.common import CIFAR10_CLASSES, make_archive, merge, stopped_at_budget

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "presample": 2,
    "batch_size": 32,
    "data": {"train_subset": 400, "test_subset": 200},
    "train": {"budgets": ["4s"], "eval_batch_size": 200},
    "sampler": {"tau_th": 0.5},  # low, so IS runs and presample changes the IS record
    "timing": {"presamples": [2, 3], "warmup": 1, "iterations": 3},
}


# Two clones per worker of `make test` (pytest-xdist), so that no test depends on which worker runs it:
# the DVC runs (the first repro of the fresh clone, then the experiments on its committed baseline, made
# by whichever comes first on the worker) and the runs over several processes or nodes. The groups
# (--dist loadgroup) keep each clone to one worker where xdist honours them.
REPRO = pytest.mark.xdist_group("pipeline_repro")
PROCESSES = pytest.mark.xdist_group("pipeline_processes")

STAGES = ("prepare", "train_is", "train_uniform", "train_peer@reuse", "timing", "timing_peer@reuse", "report")


def stages_run(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_project(tmp_path_factory):
    """A copy of the repository's files (not its results) with the tiny data and params, committed."""
    clone = tmp_path_factory.mktemp("pipeline") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file() and not name.startswith(("results/", "reports/")):
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    raw = clone / "data" / "raw"
    raw.mkdir(parents=True)
    make_archive(raw / "cifar10-tiny.tar.gz", CIFAR10_CLASSES, per_class=(40, 20))
    params = merge(yaml.safe_load((clone / "params.yaml").read_text()), TINY)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "DVC_NO_ANALYTICS": "1",
    }

    def run(*command, check=True):
        result = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        if check and result.returncode:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    run.env = env
    run("git", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "fresh clone")
    return clone, run


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return fresh_project(tmp_path_factory)


def on_baseline(project):
    """The clone at its committed baseline: test_repro_then_presample_experiment's, or, where another
    worker ran that test, `dvc repro` committed as a user would. Each experiment restores it after."""
    clone, run = project
    run("git", "checkout", "--", ".")
    if "baseline results" not in run("git", "log", "--format=%s").stdout:
        run(sys.executable, "-m", "dvc", "repro")
        run("git", "add", "-A")
        run("git", "commit", "-qm", "baseline results")
    return clone, run


@pytest.fixture(scope="module")
def processes_project(tmp_path_factory):
    """The multi-process runs' own clone (two groups may share a worker, never a clone)."""
    return fresh_project(tmp_path_factory)


@REPRO
def test_repro_then_presample_experiment(project):
    clone, run = project
    dvc = [sys.executable, "-m", "dvc"]
    repro = run(*dvc, "repro")
    for stage in STAGES:
        assert f"Running stage '{stage}'" in repro.stdout
    is_record = clone / "results/upper_bound/cifar10.is.4s.0.xlsx"
    forced_record = clone / "results/upper_bound/cifar10.is-forced.4s.0.xlsx"  # compare.forced_is, the default
    uniform_record = clone / "results/uniform/cifar10.un.4s.0.xlsx"
    reuse_record = clone / "results/reuse/cifar10.reuse.4s.0.xlsx"
    for path in (
        is_record,
        forced_record,
        uniform_record,
        reuse_record,
        clone / "results/timing.xlsx",
        clone / "results/timing_reuse.xlsx",
        clone / "reports/README.md",
        clone / "reports/metrics.json",
        clone / "metrics.json",
        clone / "reports/figures/accuracy.png",
        clone / "reports/figures/all_methods.png",
    ):
        assert path.is_file(), path
    report = (clone / "reports/README.md").read_text()
    assert "Missing" not in report and "| importance sampling |" in report and "| score reuse |" in report
    assert "IS forced on minus the rule's run" in report.split("### IS forced on at every iteration")[1]
    import pandas as pd

    timing = pd.read_excel(clone / "results/timing_reuse.xlsx", sheet_name="per_ratio").set_index("run")
    assert timing.loc["reuse", "a"] < 0.5  # measured beside uniform (the benchmark gives the real figure)
    assert {"uniform", "reuse"} == set(timing.index)
    headline = json.loads((clone / "metrics.json").read_text())
    assert set(headline["acc"]) == {"upper_bound", "upper_bound_forced", "uniform", "reuse"}
    assert set(headline["diff"]) == {"upper_bound", "upper_bound_forced", "reuse"}
    assert headline["scored_share"]["upper_bound_forced"] == 1.0
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline results")
    before = {path: digest(path) for path in (is_record, forced_record, uniform_record)}

    # A fresh clone of committed results reruns nothing (what `make run` does there); `make rerun` forces it.
    again = run(*dvc, "repro")
    assert "Running stage" not in again.stdout and "up to date" in again.stdout, again.stdout
    fresh = clone.parent / "fresh"  # a real clone: no DVC cache, no data/prepared
    run("git", "clone", "-q", str(clone), str(fresh))
    (fresh / "data" / "raw").mkdir(parents=True)
    for archive in (clone / "data" / "raw").iterdir():
        (fresh / "data" / "raw" / archive.name).symlink_to(archive.resolve())
    in_fresh = subprocess.run(
        [*dvc, "repro"], cwd=fresh, env=run.env, capture_output=True, text=True, timeout=600, check=True
    )
    assert stages_run(in_fresh.stdout) == {"prepare"}, in_fresh.stdout  # prepare writes the same bytes
    status = subprocess.run(["git", "status", "--porcelain"], cwd=fresh, capture_output=True, text=True, check=True)
    assert status.stdout == "", status.stdout
    rerun = subprocess.run(["make", "-n", "rerun"], cwd=clone, capture_output=True, text=True, check=True).stdout
    assert "dvc repro -f" in rerun

    # An edit to a method no stage runs reruns nothing; an edit to a listed one, only its own stages.
    for method, expected in (
        ("infobatch", set()),
        ("rho_loss", set()),  # its stages (tables@, train_peer@, timing_peer@rho_loss) are not in the DAG
        ("reuse", {"train_peer@reuse", "timing_peer@reuse"}),
    ):
        module = clone / f"isample/methods/{method}.py"
        module.write_text(module.read_text() + "# an edit\n")
        status = json.loads(run(*dvc, "status", "--json").stdout or "{}")
        assert set(status) == expected, (method, status)
        run("git", "checkout", "--", f"isample/methods/{method}.py")

    experiment = run(*dvc, "exp", "run", "-S", "presample=7")
    assert stages_run(experiment.stdout) == {"train_is", "report"}, experiment.stdout
    assert digest(is_record) != before[is_record] and digest(forced_record) != before[forced_record]
    assert digest(uniform_record) == before[uniform_record]

    params = pd.read_excel(is_record, sheet_name="params")
    assert dict(zip(params["parameter"], params["value"]))["presample"] == "7"

    shown = json.loads(run(*dvc, "exp", "show", "--json").stdout)
    metric_sets = []
    for entry in shown:
        for experiment_entry in [entry] + [
            e for group in entry.get("experiments") or [] for e in group.get("revs", [])
        ]:
            data = experiment_entry.get("data") or {}
            metrics = data.get("metrics") or {}
            if metrics:
                metric_sets.append(metrics)
    assert len(metric_sets) >= 2, shown
    for metrics in metric_sets:  # the headline file only, so the table stays narrow
        assert set(metrics) == {"metrics.json"} and "upper_bound" in metrics["metrics.json"]["data"]["acc"]

    # A peer's own parameter changes that peer's stages only (the report follows their outputs).
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["methods"]["reuse"]["smoothing"] = 0.5
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(run(*dvc, "status", "--json").stdout or "{}")
    assert set(status) == {"train_peer@reuse", "timing_peer@reuse"}, status
    run("git", "checkout", "--", "params.yaml")


@REPRO
def test_budget_sweep_runs_every_pair_and_keeps_finished_ones(project):
    clone, run = on_baseline(project)
    import pandas as pd

    run("git", "checkout", "--", ".")
    run(sys.executable, "-m", "dvc", "repro")  # back to the committed baseline
    record = clone / "results/uniform/cifar10.un.4s.0.xlsx"
    finished = pd.read_excel(record, sheet_name="epochs")
    # IS forced on trains as IS does (test_repro_then_presample_experiment has it): off here, for CI's time.
    sweep = run(
        sys.executable, "-m", "dvc", "exp", "run", "-S", "train.budgets=[2s,4s]", "-S", "compare.forced_is=false"
    )
    assert "Running stage 'train_uniform'" in sweep.stdout
    for method, tag in (("upper_bound", "is"), ("uniform", "un"), ("reuse", "reuse")):
        for budget in ("2s", "4s"):
            assert (clone / f"results/{method}/cifar10.{tag}.{budget}.0.xlsx").is_file()
    # The 4 s runs had finished: they came back from their checkpoints, epoch for epoch, not trained again.
    pd.testing.assert_frame_equal(pd.read_excel(record, sheet_name="epochs"), finished)
    short = pd.read_excel(clone / "results/uniform/cifar10.un.2s.0.xlsx", sheet_name="epochs")
    # Its own schedule, fully decayed by the end of its own 2 s (however few epochs a loaded machine gave it).
    assert stopped_at_budget(short, 2) and short["lr"].iloc[-1] == pytest.approx(0.1 * 0.2 * 0.2)
    report = (clone / "reports/README.md").read_text()
    assert "## 5. Speed-up at equal accuracy" in report and "| score reuse |" in report.split("## 5.")[1]
    assert (clone / "reports/figures/accuracy_vs_budget.png").is_file()
    run("git", "checkout", "--", ".")


@PROCESSES  # needs no results
def test_bad_values_fail_fast_with_one_line(processes_project):
    clone, run = processes_project
    result = run(sys.executable, "-m", "dvc", "exp", "run", "-S", "presample=0.5", check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error: params.yaml")]
    assert errors and "presample = 0.5" in errors[0], result.stdout + result.stderr
    # DVC leaves the bad value in params.yaml; the error says so and how to restore it.
    assert "git checkout params.yaml" in result.stdout + result.stderr
    run("git", "checkout", "--", "params.yaml")
    # Any stage says it in one line before any work (straight from the stage's module: what dvc runs).
    for bad, said in [
        ({"budgets": ["soon"]}, "error: params.yaml: train.budgets = ['soon']"),
        ({"nodes": 2}, "error: params.yaml: train: train.nodes = 2 needs train.rdzv_endpoint"),
        ({"nodes": 2, "rdzv_endpoint": "node0"}, "error: params.yaml: train.rdzv_endpoint = 'node0': 'node0' is not"),
    ]:
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["train"].update(bad)
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        stage = run(sys.executable, "-m", "stages.train", "--method", "uniform", check=False)
        assert stage.returncode == 2 and said in stage.stderr, stage.stderr
        assert "torch.distributed" not in stage.stderr + stage.stdout  # no process was started
        run("git", "checkout", "--", "params.yaml")


@REPRO
def test_divergence_ends_as_a_result_not_a_traceback(project):
    """One stage diverges through dvc (tests/experiment/test_train.py covers every method's record); the
    report, run straight from its module on that record beside the baseline's IS record, says so."""
    clone, run = on_baseline(project)
    import pandas as pd

    run("git", "checkout", "--", ".")
    command = ("exp", "run", "-S", "train.lr=1000", "-S", "train.lr_schedule=constant", "train_uniform")
    result = run(sys.executable, "-m", "dvc", *command)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and stages_run(result.stdout) - {"prepare"} == {"train_uniform"}
    path = clone / "results/uniform/cifar10.un.4s.0.xlsx"
    status = dict(pd.read_excel(path, sheet_name="params").astype(str).values)["status"]
    assert status.startswith("diverged at epoch "), (path, status)
    assert f"seed 0: {status}" in output  # the one line the stage printed
    run(sys.executable, "-m", "stages.report")
    report = (clone / "reports/README.md").read_text()
    assert "Diverged" in report and "No accuracy conclusion" in report, report
    assert "test accuracy than uniform" not in report
    run("git", "checkout", "--", ".")


@REPRO
def test_a_priced_pipeline_runs_through_and_gives_identical_records_twice(project):
    """`dvc exp run -S train.clock=priced` reruns every stage that trains and the report; the train stage run
    again from scratch (no checkpoint to resume) writes the same record, wall-clock columns aside."""
    clone, run = on_baseline(project)
    import pandas as pd

    run("git", "checkout", "--", ".")
    # IS forced on off, for CI's time: the rule's run is the record compared below.
    result = run(sys.executable, "-m", "dvc", "exp", "run", "-S", "train.clock=priced", "-S", "compare.forced_is=false")
    assert stages_run(result.stdout) - {"prepare"} == {"train_is", "train_uniform", "train_peer@reuse", "report"}
    record = clone / "results/upper_bound/cifar10.is.4s.0.xlsx"
    first = pd.read_excel(record, sheet_name="epochs")
    shutil.rmtree(clone / "checkpoints")
    run(sys.executable, "-m", "stages.train", "--method", "upper_bound")
    second = pd.read_excel(record, sheet_name="epochs")
    machine = {"wall_seconds", "eval_seconds", "train_set_eval_seconds", "k"}
    same = [column for column in first.columns if not column.startswith("time_") and column not in machine]
    pd.testing.assert_frame_equal(first[same], second[same])
    assert (first["train_seconds"] == first["priced_seconds"]).all() and first["train_set_loss"].notna().all()
    assert "| clock | priced |" in (clone / "reports/README.md").read_text()
    run("git", "checkout", "--", ".")


@PROCESSES
def test_two_processes_write_one_record_per_run(processes_project):
    """`dvc exp run -S train.processes=2`: DDP over two gloo processes writes one record per (budget, seed).
    One stage proves it (reuse: its score table is gathered across ranks); tests/test_distributed.py
    checks the methods' agreement across ranks one by one."""
    clone, run = processes_project
    import pandas as pd

    run("git", "checkout", "--", ".")
    result = run(sys.executable, "-m", "dvc", "exp", "run", "-S", "train.processes=2", "train_peer@reuse")
    assert stages_run(result.stdout) - {"prepare"} == {"train_peer@reuse"}, result.stdout
    records = sorted((clone / "results" / "reuse").glob("*.xlsx"))
    assert [path.name for path in records] == ["cifar10.reuse.4s.0.xlsx"]
    params = dict(pd.read_excel(records[0], sheet_name="params").astype(str).values)
    assert params["processes"] == "2" and params["backend"] == "gloo" and params["status"] == "completed"
    epochs = pd.read_excel(records[0], sheet_name="epochs")
    assert epochs["test_accuracy"].notna().all() and stopped_at_budget(epochs, 4)
    run("git", "checkout", "--", ".")


@PROCESSES
def test_a_killed_rank_ends_the_run_with_one_clear_error(processes_project):
    clone, run = processes_project
    import psutil

    run("git", "checkout", "--", ".")
    if not (clone / "data/prepared").is_dir():  # on its own (or on its worker): prepare first
        run(sys.executable, "-m", "stages.prepare")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"].update(budgets=["60s"], processes=2)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    stage = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "--method", "uniform"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        victim = None
        for _ in range(600):  # wait until rank 1 runs (torchrun starts the workers)
            for child in psutil.Process(stage.pid).children(recursive=True):
                try:
                    if child.environ().get("RANK") == "1":
                        victim = child
                except psutil.Error:
                    pass
            if victim:
                break
            assert stage.poll() is None, stage.communicate()
            time.sleep(0.1)
        assert victim, "rank 1 never started"
        time.sleep(5)  # into training
        victim.kill()
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            stage.kill()
    assert stage.returncode == 2, stderr[-2000:]
    assert "error: a training process of uniform failed" in stderr, stderr[-2000:]
    run("git", "checkout", "--", ".")


@PROCESSES
def test_sigterm_stops_every_rank_at_one_iteration_with_a_checkpoint_the_rerun_resumes(processes_project):
    """A scheduler's preemption: SIGTERM to the stage (only; it passes it on to torchrun's processes)."""
    clone, run = processes_project
    import torch

    run("git", "checkout", "--", ".")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"].update(budgets=["6s"], processes=2, checkpoint_every="1h")
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (clone / "data/prepared").is_dir():  # this test alone: prepare first
        run(sys.executable, "-m", "stages.prepare")
    checkpoint = clone / "checkpoints/uniform/6s.seed0.pt"
    checkpoint.unlink(missing_ok=True)
    command = [sys.executable, "-m", "stages.train", "--method", "uniform"]
    stage = subprocess.Popen(command, cwd=clone, env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = []
        for line in stage.stderr:  # both ranks train once rank 0 has recorded an epoch
            said.append(line)
            if "train uniform 6s seed 0: epoch 1," in line:
                break
        assert stage.poll() is None, "".join(said)[-2000:]
        stage.send_signal(signal.SIGTERM)
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            stage.kill()
    assert stage.returncode == 143, stderr[-2000:]
    assert "stopped: uniform: its processes saved a checkpoint; rerun the stage to resume from it" in stderr
    saved = torch.load(checkpoint, weights_only=True)
    assert 0 < saved["elapsed"] < 6 and saved["status"] == ""
    ranks = [state["sampler"]["stream"]["position"] for state in saved["ranks"]]
    assert ranks[0] == ranks[1]  # both ranks stopped after the same iteration
    resumed = run(*command)
    assert "resumed uniform 6s seed 0" in resumed.stdout and "completed" in resumed.stdout, (
        resumed.stdout + resumed.stderr
    )
    run("git", "checkout", "--", ".")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@PROCESSES
def test_two_nodes_train_one_run_and_resume_after_a_node_dies(processes_project, tmp_path):
    """Two torchrun agents on 127.0.0.1 (one process each, gloo) meet at a c10d rendezvous as two nodes,
    each from its own copy of the repository as on two machines. Killing one node's processes ends the
    other's stage with one line; rerunning both resumes from the checkpoint and both write the record."""
    clone, run = processes_project
    import pandas as pd
    import psutil

    run("git", "checkout", "--", ".")
    if not (clone / "data" / "prepared" / "cifar10.pt").is_file():
        run(sys.executable, "-m", "stages.prepare")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    endpoint = f"127.0.0.1:{free_port()}"
    params["train"].update(budgets=["5s"], nodes=2, rdzv_endpoint=endpoint, checkpoint_every="1s")
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    other = tmp_path / "node1"
    shutil.copytree(clone, other, symlinks=True, ignore=shutil.ignore_patterns("results", "checkpoints"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def start(where: Path) -> subprocess.Popen:
        command = [sys.executable, "-m", "stages.train", "--method", "uniform"]
        return subprocess.Popen(command, cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    survivor, victim = start(clone), start(other)
    try:
        checkpoint = clone / "checkpoints" / "uniform" / "5s.seed0.pt"
        for _ in range(1200):  # until the first checkpoint, a second of training in
            if checkpoint.is_file() or survivor.poll() is not None:
                break
            time.sleep(0.1)
        assert checkpoint.is_file(), survivor.communicate()
        node = psutil.Process(victim.pid)
        for process in [node, *node.children(recursive=True)]:  # the whole node goes down
            process.kill()
        _, stderr = survivor.communicate(timeout=120)
    finally:
        for process in (survivor, victim):
            if process.poll() is None:
                process.kill()
    assert survivor.returncode == 2, stderr[-2000:]
    assert (
        stderr.rstrip()
        .splitlines()[-1]
        .startswith("error: a training process of uniform failed or another node went away")
    ), stderr[-2000:]

    nodes = [start(clone), start(other)]
    outputs = [process.communicate(timeout=300) for process in nodes]
    for process, (stdout, stderr) in zip(nodes, outputs):
        assert process.returncode == 0, stderr[-2000:]
        assert "resumed uniform 5s seed 0 from checkpoints/uniform/5s.seed0.pt" in stdout, stdout
    records = [where / "results" / "uniform" / "cifar10.un.5s.0.xlsx" for where in (clone, other)]
    params = [dict(pd.read_excel(path, sheet_name="params").astype(str).values) for path in records]
    assert params[0]["nodes"] == "2" and params[0]["processes_per_node"] == "1" and params[0]["processes"] == "2"
    assert params[0]["status"] == "completed" and params[0]["backend"] == "gloo"
    epochs = [pd.read_excel(path, sheet_name="epochs") for path in records]
    pd.testing.assert_frame_equal(epochs[0], epochs[1])  # every node writes rank 0's record
    assert params[0]["final_test_accuracy"] == params[1]["final_test_accuracy"]
    assert epochs[0]["test_accuracy"].notna().all() and stopped_at_budget(epochs[0], 5)
    run("git", "checkout", "--", ".")
