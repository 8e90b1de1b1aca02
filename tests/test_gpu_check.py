"""benchmarks/gpu_check.py end to end on the CPU, with a tiny budget and a small model: a test of the
script (its steps, its table, its files), not of a GPU."""

import json
import subprocess
import sys

from tests.common import CIFAR10_CLASSES, REPO, make_archive


def test_the_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    make_archive(tmp_path / "cifar10-tiny.tar.gz", CIFAR10_CLASSES, per_class=(40, 10))
    out = tmp_path / "check"
    command = [
        *(sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--model", "resnet8"),
        *("--budget", "2s", "--presamples", "2", "3", "--timing-iterations", "2", "--throughput-iterations", "2"),
        *("--data-root", str(tmp_path), "--out", str(out)),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert summary in result.stdout  # the one table, printed and kept
    assert "CUDA tests: 7 skipped" in summary  # they ran, and skip without CUDA
    for row in ("upper_bound (trained)", "uniform (trained)", "upper_bound p=2 (timed)", "upper_bound p=3 (timed)"):
        assert f"| {row} |" in summary, summary
    for loop in ("plain torch loop", "isample uniform", "isample IS forced on, p = 2"):
        assert f"| {loop} |" in summary, summary
    facts = json.loads((out / "summary.json").read_text())
    rates = facts["throughput_images_per_second"]
    assert len(rates) == 3 and all(rate > 0 for rate in rates.values())
    assert set(facts["trained"]) == {"upper_bound", "uniform"}
    for method in facts["trained"].values():
        assert method["status"] == "completed" and method["images_per_second"] > 0
        assert 0 <= method["final_test_accuracy"] <= 1
    timed = {row["presample"]: row for row in facts["per_ratio"] if row["run"] == "upper_bound"}
    assert set(timed) == {2.0, 3.0} and all(row["a"] > 0 and 0 <= row["non_model_share"] < 1 for row in timed.values())
    for name in ("upper_bound.epochs.csv", "uniform.epochs.csv", "timing.per_ratio.csv", "tests.log"):
        assert (out / name).is_file()


def test_bad_arguments_end_in_one_line_before_any_work(tmp_path):
    command = [
        sys.executable,
        "-m",
        "benchmarks.gpu_check",
        "--device",
        "cpu",
        "--budget",
        "soon",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: params.yaml: train.budgets = ['soon']: 'soon' must be a duration such as 90s, 4m, 3h or 1h30m"
    ], result.stderr
    assert not list(tmp_path.iterdir())
