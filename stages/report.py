"""report: the .xlsx records become reports/README.md, reports/figures/*.png, reports/metrics.json (every
number) and metrics.json (the headline numbers `dvc exp show` puts first, written by the sections that
compute them)."""

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from isample.experiment.train_config import parse_duration
from isample.files import write_text_atomically
from isample.names import IMPORTANCE, UNIFORM
from isample.report import figures, timing_figures
from isample.report.records import FORCED_ARM, fit_values, read_run, read_timing, timing_path
from isample.report.render import longest_budget, render
from stages.common import REPORTS_DIR, RESULTS_DIR, replace_directory, run_stage

HEADLINE_FILE = Path("metrics.json")


def method_runs(method: str, params) -> list:
    """The records of this params' budgets and seeds (a folder may keep others from earlier runs)."""
    budgets = {parse_duration(budget) for budget in params.train.budget_list}
    runs = [read_run(path) for path in sorted((RESULTS_DIR / method).glob("*.xlsx"))]
    return [run for run in runs if run.seed in params.train.seeds and run.budget_seconds in budgets]


def read_timings(params) -> tuple[dict | None, list[str]]:
    """results/timing.xlsx with every listed method's row (from its own results/timing_<method>.xlsx,
    measured beside a uniform row of its own) added to `per_ratio`; and the files read."""
    main = timing_path(RESULTS_DIR)
    if not main.is_file():
        return None, []
    timing, files = read_timing(main), [str(main)]
    for method in params.compare.methods:
        path = timing_path(RESULTS_DIR, method)
        if path.is_file():
            rows = read_timing(path, peer=True)["per_ratio"]
            timing["per_ratio"] = pd.concat([timing["per_ratio"], rows[rows["run"] == method]], ignore_index=True)
            files.append(str(path))
    return timing, files


def figure_makers(runs: dict, timing: dict | None, words: dict) -> dict:
    """Each figure the records allow, by name, as a function that draws it."""
    longest = {method: longest_budget(method_runs) for method, method_runs in runs.items()}
    pair = longest[IMPORTANCE] + longest.get(FORCED_ARM, []) + longest[UNIFORM]
    every_run = [run for method_runs in runs.values() for run in method_runs if not run.charged_seconds]
    wanted = {}
    if pair:
        wanted["accuracy"] = lambda: figures.accuracy_and_loss(pair, words)
        wanted["train_loss"] = lambda: figures.train_loss(pair, words)
    if longest[IMPORTANCE]:
        wanted["activation"] = lambda: figures.is_activation(longest[IMPORTANCE], words)
    if every_run:
        wanted["all_methods"] = lambda: figures.all_methods(longest_budget(every_run), words)
    if len({run.budget_seconds for run in every_run}) > 1:
        wanted["accuracy_vs_budget"] = lambda: figures.accuracy_vs_budget(every_run, words)
    if timing is not None:
        fit, per_ratio = fit_values(timing), timing["per_ratio"]
        slope, intercept = fit["presample_slope_seconds_per_p"], fit["presample_intercept_seconds"]
        wanted["phases"] = lambda: timing_figures.timing_phases(per_ratio, words)
        wanted["presample_fit"] = lambda: timing_figures.presample_fit(
            per_ratio, slope, intercept, fit["presample_r2"], words
        )
        wanted["presample_vs_train"] = lambda: timing_figures.presample_vs_train(timing["iterations"], words)
    return wanted


def arms(params) -> dict[str, list]:
    """Every method's records by arm: a method's own name, and beside it `<method>_charged` for its runs
    with time charged before training (rho_loss with its IL models' time) and `upper_bound_forced` for IS
    forced on (compare.forced_is), each compared as a method of its own."""
    runs = {}
    for method in params.compared_methods:
        runs[method] = []
        for run in method_runs(method, params):
            runs.setdefault(run.arm, []).append(run)
    return runs


def main(params) -> None:
    runs = arms(params)
    timing, timing_files = read_timings(params)
    staging = REPORTS_DIR.with_name(f".{REPORTS_DIR.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    made = {}
    for name, draw in figure_makers(runs, timing, figures.labels(params.report.lang)).items():
        figure = draw()
        figure.savefig(staging / "figures" / f"{name}.png", dpi=110)
        plt.close(figure)
        made[name] = f"figures/{name}.png"
    files = [str(run.path) for method_runs in runs.values() for run in method_runs] + timing_files
    markdown, metrics, headline = render(runs, timing, params.report.lang, made, files)
    (staging / "README.md").write_text(markdown)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_text_atomically(HEADLINE_FILE, json.dumps(headline, indent=2) + "\n")
    replace_directory(staging, REPORTS_DIR)
    missing = metrics["missing"]
    print(f"report written to {REPORTS_DIR}/README.md" + (f" (missing: {', '.join(missing)})" if missing else ""))


if __name__ == "__main__":
    run_stage(main)
