"""report: the .xlsx records become reports/README.md, reports/figures/*.png and reports/metrics.json."""

import json
import shutil

import matplotlib.pyplot as plt

from isample.report import figures
from isample.report.facts import IMPORTANCE, UNIFORM
from isample.report.records import read_run, read_timing
from isample.report.render import render
from stages.common import REPORTS_DIR, RESULTS_DIR, replace_directory, run_stage

TIMING_FILE = RESULTS_DIR / "timing.xlsx"


def main(params) -> None:
    is_runs = [read_run(path) for path in sorted((RESULTS_DIR / IMPORTANCE).glob("*.xlsx"))]
    uniform_runs = [read_run(path) for path in sorted((RESULTS_DIR / UNIFORM).glob("*.xlsx"))]
    timing = read_timing(TIMING_FILE) if TIMING_FILE.is_file() else None

    staging = REPORTS_DIR.with_name(f".{REPORTS_DIR.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    made = {}
    runs = is_runs + uniform_runs
    wanted = []
    if runs:
        wanted += [("accuracy", lambda: figures.accuracy_and_loss(runs)), ("train_loss", lambda: figures.train_loss(runs))]
    if is_runs:
        wanted.append(("activation", lambda: figures.is_activation(is_runs)))
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

    markdown, metrics = render(is_runs, uniform_runs, timing, params.report.lang, made, str(TIMING_FILE))
    (staging / "README.md").write_text(markdown)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    replace_directory(staging, REPORTS_DIR)
    missing = metrics["missing"]
    print(f"report written to {REPORTS_DIR}/README.md" + (f" (missing: {', '.join(missing)})" if missing else ""))


if __name__ == "__main__":
    run_stage(main)
