"""report: the .xlsx records become reports/README.md, reports/figures/*.png, reports/metrics.json (every
number) and metrics.json (the headline numbers `dvc exp show` puts first)."""

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt

from isample.report import figures
from isample.report.facts import IMPORTANCE, UNIFORM
from isample.report.records import read_run, read_timing, write_atomically
from isample.report.render import longest_budget, render
from isample.experiment.config import parse_duration
from stages.common import REPORTS_DIR, RESULTS_DIR, replace_directory, run_stage

TIMING_FILE = RESULTS_DIR / "timing.xlsx"
HEADLINE_FILE = Path("metrics.json")


def method_runs(method: str, params) -> list:
    """The records of this params' budgets and seeds (a folder may keep others from earlier runs)."""
    budgets = {parse_duration(budget) for budget in params.train.budget_list}
    runs = [read_run(path) for path in sorted((RESULTS_DIR / method).glob("*.xlsx"))]
    return [run for run in runs if run.seed in params.train.seeds and run.budget_seconds in budgets]


def headline(metrics: dict) -> dict:
    """The few numbers that answer the question, keyed short so they fit `dvc exp show`'s first columns:
    final test accuracy per method, its difference from uniform (points), the IS share, each method's
    cost a and its speed-up at equal accuracy when a budget sweep ran."""
    methods = metrics.get("methods", {})
    numbers = {
        "acc": {m: row["final"] for m, row in methods.items()},
        "diff": {m: None if row["difference"] is None else round(100 * row["difference"], 2)
                 for m, row in methods.items() if m != UNIFORM},
        "is_share": methods.get(IMPORTANCE, {}).get("selection_share"),
        "a": {m: row["a"] for m, row in methods.items() if m != UNIFORM},
    }
    if metrics.get("speedup"):
        numbers["speedup"] = metrics["speedup"]
    return numbers


def main(params) -> None:
    is_runs, uniform_runs = method_runs(IMPORTANCE, params), method_runs(UNIFORM, params)
    peer_runs = {method: runs for method in params.compare.methods if (runs := method_runs(method, params))}
    timing = read_timing(TIMING_FILE) if TIMING_FILE.is_file() else None

    staging = REPORTS_DIR.with_name(f".{REPORTS_DIR.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    made = {}
    runs = longest_budget(is_runs) + longest_budget(uniform_runs)
    every_run = is_runs + uniform_runs + [run for runs in peer_runs.values() for run in runs]
    wanted = []
    if runs:
        wanted += [("accuracy", lambda: figures.accuracy_and_loss(runs)), ("train_loss", lambda: figures.train_loss(runs))]
    if is_runs:
        wanted.append(("activation", lambda: figures.is_activation(longest_budget(is_runs))))
    if every_run:
        wanted.append(("all_methods", lambda: figures.all_methods(longest_budget(every_run))))
    if len({run.budget_seconds for run in every_run}) > 1:
        wanted.append(("accuracy_vs_budget", lambda: figures.accuracy_vs_budget(every_run)))
    if timing is not None:
        fit = dict(zip(timing["fit"]["metric"], timing["fit"]["value"]))
        wanted += [
            ("phases", lambda: figures.timing_phases(timing["per_ratio"])),
            ("presample_fit", lambda: figures.presample_fit(
                timing["per_ratio"], fit["presample_slope_seconds_per_p"], fit["presample_intercept_seconds"],
                fit["presample_r2"])),
            ("presample_vs_train", lambda: figures.presample_vs_train(timing["iterations"])),
        ]  # fmt: skip
    for name, draw in wanted:
        figure = draw()
        figure.savefig(staging / "figures" / f"{name}.png", dpi=110)
        plt.close(figure)
        made[name] = f"figures/{name}.png"

    markdown, metrics = render(is_runs, uniform_runs, timing, params.report.lang, made, str(TIMING_FILE), peer_runs)
    (staging / "README.md").write_text(markdown)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    headline_text = json.dumps(headline(metrics), indent=2) + "\n"
    write_atomically(HEADLINE_FILE, lambda temporary: Path(temporary).write_text(headline_text))
    replace_directory(staging, REPORTS_DIR)
    missing = metrics["missing"]
    print(f"report written to {REPORTS_DIR}/README.md" + (f" (missing: {', '.join(missing)})" if missing else ""))


if __name__ == "__main__":
    run_stage(main)
