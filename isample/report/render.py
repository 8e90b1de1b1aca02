"""The markdown report and its headline metrics, from the facts and rules alone; one section a function."""

import math

import pandas as pd

from isample.report.facts import (
    IMPORTANCE, NOTEBOOK_A_PER_P, UNIFORM, Facts, compare_runs, lr_activation, timing_facts,
)  # fmt: skip
from isample.report.all_methods import TARGET_SHARES, compare_methods
from isample.report.records import Run
from isample.report.speedup import speedups
from isample.report.text import TEXT

PARAMETERS_SHOWN = [
    "data.name", "model.name", "train.budget", "presample", "batch_size", "train.lr", "train.lr_scale",
    "train.lr_schedule", "train.lr_milestones", "train.lr_gamma", "train.seeds", "data.augment", "sampler.tau_th",
    "sampler.score", "sampler.score_mode", "sampler.smoothing", "train_examples", "test_examples", "device_name",
    "torch",
]  # fmt: skip


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value, digits=4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _milliseconds(seconds) -> str:
    return "-" if seconds is None or math.isnan(seconds) else f"{1000 * seconds:.1f}"


def _percent(value) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.1%}"


def _with_spread(mean: float, spread: float, seeds: int, digits: int = 4) -> str:
    if seeds > 1 and not math.isnan(spread):
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"
    return _number(mean, digits)


def _finite_or_none(numbers: dict) -> dict:
    return {key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in numbers.items()}


def _name(text: dict, method: str) -> str:
    return text.get(f"method_{method}", method)


def _conclude(text: dict, facts: Facts, values: dict) -> list[str]:
    lines = []
    for rule, extra in facts.conclusions.values():
        merged = {**values, **extra}
        if "higher" in merged:
            merged["higher_text"] = text[f"higher_{merged['higher']}"]
        lines.append(f"- {text[rule].format(**merged)}")
    return lines


def _missing(text: dict, facts: Facts) -> list[str]:
    return [line for what in facts.missing for line in (text["missing"].format(what=text[f"missing_{what}"]), "")]


def _figures(text: dict, figures: dict[str, str], names: tuple[str, ...]) -> list[str]:
    lines = [f"![{name}]({path})" for name, path in figures.items() if name in names]
    return [text["figures"], ""] + lines + [""] if lines else []


def parameters_section(text: dict, runs: list[Run], files: list[str]) -> list[str]:
    out = [text["parameters"], ""]
    if runs:
        params = runs[0].params
        out += [_table(["parameter", "value"], [[key, params.get(key, "-")] for key in PARAMETERS_SHOWN]), ""]
    return out + [text["files"], ""] + [f"- `{f}`" for f in files] + [""]


def comparison_section(text: dict, is_runs: list[Run], uniform_runs: list[Run], figures: dict) -> tuple[list, dict]:
    """1. Equal training time: key numbers per method, the paired difference and its conclusions."""
    comparison = compare_runs(is_runs, uniform_runs)
    out = [text["s1"], ""] + _missing(text, comparison)
    per_seed = comparison.tables["per_seed"]
    tta = comparison.tables.get("time_to_accuracy")
    rows = []
    for method in (IMPORTANCE, UNIFORM):
        group = per_seed[per_seed["method"] == method] if len(per_seed) else per_seed
        if group.empty:
            continue
        seeds = len(group)
        cells = [text[f"method_{method}"], seeds]
        for column in ("train_accuracy", "train_accuracy_weighted", "train_loss", "train_loss_weighted",
                       "test_accuracy", "test_loss", "best_test_accuracy"):  # fmt: skip
            cells.append(_with_spread(group[column].mean(), group[column].std(), seeds))
        cells.append(_number(tta[method].mean(), 0) if tta is not None else "-")
        cells += [f"{group['is_share'].mean():.2f}", f"{group['epochs'].mean():.0f}"]
        rows.append(cells)
    if rows:
        out += [text["key"], "", _table(text["cols_runs"], rows), "", text["train_note"], ""]
    numbers, metrics = comparison.numbers, {}
    if "diverged" in numbers:
        diverged_text = "; ".join(f"{text[f'method_{m}']} seed {seed}: {status}" for m, seed, status in numbers["diverged"])
        out += [text["conclusion"], ""] + _conclude(text, comparison, {"diverged_text": diverged_text}) + [""]
        metrics = {"diverged": [f"{m} seed {seed}: {status}" for m, seed, status in numbers["diverged"]]}
    elif "accuracy_difference" in numbers:
        n = numbers["seeds"]
        values = {
            "diff": 100 * numbers["accuracy_difference"],
            "low": 100 * numbers["accuracy_ci_low"],
            "high": 100 * numbers["accuracy_ci_high"],
            "n": n,
            "share": numbers["is_share"],
            "tta_is": numbers["time_to_accuracy_is"],
            "tta_uniform": numbers["time_to_accuracy_uniform"],
            "epoch": numbers["epoch_seconds"],
        }
        ci = text["ci"].format(**values) if n > 1 else ""
        out += [text["difference"].format(ci=ci, **values), "", text["conclusion"], ""]
        out += _conclude(text, comparison, values) + [""]
        metrics = _finite_or_none(numbers)
    out += _figures(text, figures, ("accuracy", "train_loss"))
    return out, {"comparison": metrics, "missing": comparison.missing} if metrics else {"missing": comparison.missing}


def activation_section(text: dict, is_runs: list[Run], figures: dict) -> tuple[list, dict]:
    """2. When IS switched on and off, and its share around each lr change."""
    activation = lr_activation(is_runs)
    out = [text["s2"], ""] + _missing(text, activation)
    metrics = {"missing": activation.missing}
    if not activation.missing:
        milestones = activation.tables["milestones"]
        if len(milestones):
            rows = [[int(r.seed), f"{r.lr_before:g}", f"{r.lr_after:g}", f"{r.at_seconds:.0f}",
                     f"{r.is_share_before:.2f}", f"{r.is_share_after:.2f}", "✓" if r.sharp_change else ""]
                    for r in milestones.itertuples()]  # fmt: skip
            out += [_table(text["cols_milestones"], rows), ""]
        first_on = activation.numbers["first_on_seconds"]
        off = activation.numbers["switched_off_seconds"]
        seeds = [run.seed for run in is_runs]
        times = [text["never_seed"].format(seed=seed) if math.isnan(t) else text["first_on_seed"].format(time=f"{t:.0f}", seed=seed)
                 for t, seed in zip(first_on, seeds)]  # fmt: skip
        off = "; ".join(", ".join(f"{t:.0f} s" for t in seconds) or "-" for seconds in off)
        out += [text["first_on"].format(times=", ".join(times), off=off), ""]
        out += [text["conclusion"], ""] + _conclude(text, activation, {}) + [""]
        metrics["activation"] = {"first_on_seconds": [None if math.isnan(t) else t for t in first_on],
                                 "sharp_change_at_lr": activation.conclusions["lr"][0] == "lr_affects_is"}  # fmt: skip
    out += _figures(text, figures, ("activation",))
    return out, metrics


def _timing_row(text: dict, r: dict) -> list:
    importance = r["run"] == IMPORTANCE
    label = f"p = {r['presample']:g}" if importance else _name(text, r["run"])
    if importance and r.get("forward_chunk", 0):
        label += f", chunk {int(r['forward_chunk'])}"
    notebook = NOTEBOOK_A_PER_P.get(int(r["presample"])) if importance else None
    return [
        label, f"{1000 * r['measured_seconds']:.1f}",
        f"{1000 * r['presample_seconds']:.1f}" if importance else "-",
        f"{1000 * r['train_step_seconds']:.1f}" if "train_step_seconds" in r else "-",
        _number(r["a"], 3), _number(r["a_per_p"], 3), _number(notebook, 3), f"{r['k']:.2f}",
        f"{1000 * r['predicted_seconds']:.1f}", f"{r['prediction_error']:+.1%}",
        _milliseconds(r.get("predicted_seconds_measured")), _percent(r.get("prediction_error_measured")),
        _number(r["speedup_u"], 3),
        _number(r["tau_th"], 3), f"{r['non_model_share']:.1%} ({r['non_model_share_iqr']:.1%})",
    ]  # fmt: skip


def cost_section(text: dict, timing: dict[str, pd.DataFrame] | None, figures: dict) -> tuple[list, dict]:
    """3. Per-phase times, a per ratio, the presample-time fit and the cost model."""
    cost = timing_facts(timing)
    out = [text["s3"], ""] + _missing(text, cost)
    metrics = {"missing": cost.missing}
    if not cost.missing:
        rows = [_timing_row(text, r) for r in cost.tables["per_ratio"].to_dict("records")]
        n = cost.numbers
        values = {
            "slope": 1000 * n.get("presample_slope_seconds_per_p", math.nan),
            "intercept": 1000 * n.get("presample_intercept_seconds", math.nan),
            "r2": n.get("presample_r2", math.nan),
            "corr": n.get("presample_train_step_correlation", math.nan),
            "worst": n["non_model_share_worst"],
            "error": n["prediction_error_worst"],
            "measured_error": n.get("prediction_error_measured_worst", math.nan),
        }
        out += [_table(text["cols_timing"], rows), "", text["model_note"], ""]
        if cost.conclusions["fit"][0] != "fit_one_ratio":
            out += [text["fit"].format(**values), ""]
        if not math.isnan(values["corr"]):
            out += [text["correlation"].format(**values), ""]
        out += [text["conclusion"], ""] + _conclude(text, cost, values) + [""]
        metrics["timing"] = {key: (None if isinstance(v, float) and math.isnan(v) else float(v))
                             for key, v in n.items() if isinstance(v, (int, float))}  # fmt: skip
    out += _figures(text, figures, ("phases", "presample_fit", "presample_vs_train"))
    return out, metrics


def _ratio(value: float, text: dict) -> str:
    return text["not_reached"] if math.isnan(value) else f"{value:.2f}"


def all_methods_section(text: dict, runs: dict[str, list[Run]], timing, figures: dict) -> tuple[list, dict]:
    """4. Every method against uniform at one budget, paired by seed, with its cost and time to accuracy."""
    facts = compare_methods(runs, timing)
    out = [text["s4"], ""] + _missing(text, facts)
    metrics: dict = {"missing": facts.missing}
    if facts.missing:
        return out, metrics
    table = facts.tables["methods"]
    budget = next(run.budget_seconds for method_runs in runs.values() for run in method_runs)
    order = ["uniform"] + facts.numbers["ranking"]
    rows = []
    for method in order:
        r = table.loc[method]
        interval = f"[{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}]" if not math.isnan(r["ci_low"]) else "-"
        difference = "-" if method == "uniform" or math.isnan(r["difference"]) else f"{100 * r['difference']:+.2f}"
        rows.append([_name(text, method), int(r["seeds"]), _number(r["final"]), _number(r["best"]), difference,
                     interval if method != "uniform" else "-", _number(r["a"], 3), f"{r['selection_share']:.2f}",
                     *[_ratio(r[f"time_{share:.2f}"], text) if method != "uniform" else "1.00"
                       for share in TARGET_SHARES]])  # fmt: skip
    if not math.isnan(budget):
        out += [text["methods_budget"].format(budget=budget), ""]
    out += [_table(text["cols_methods"], rows), "", text["methods_note"], "", text["conclusion"], ""]
    for rule, values in facts.conclusions.values():
        out.append(f"- {text[rule].format(name=_name(text, values.get('method', '')), **values)}")
    out += [""] + _figures(text, figures, ("all_methods",))
    metrics["methods"] = {method: _finite_or_none({key: float(value) for key, value in table.loc[method].items()})
                          for method in order}  # fmt: skip
    return out, metrics


def speedup_section(text: dict, runs: list[Run], figures: dict) -> tuple[list, dict]:
    """5. Final accuracy against budget and the budget each method needs to match uniform's accuracy."""
    facts = speedups(runs)
    out = [text["s5"], ""] + _missing(text, facts)
    metrics: dict = {"missing": facts.missing}
    if facts.missing:
        return out, metrics
    table = facts.tables.get("speedup")
    if table is not None and len(table):
        final = facts.tables["final"]
        uniform = final[final["method"] == "uniform"].groupby("budget")["accuracy"].mean()
        rows = [[_name(text, r.method), f"{r.budget:g}" + (" †" if r.past_peak else ""),
                 _number(uniform.get(r.budget, math.nan)),
                 _ratio(r.speedup, text),
                 f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if not math.isnan(r.ci_low) else "-", int(r.not_reached)]
                for r in table.itertuples()]  # fmt: skip
        out += [_table(text["cols_speedup"], rows), "", text["speedup_note"], ""]
        concluded = table[~table["past_peak"]]  # the budgets the verdicts use
        metrics["speedup"] = {method: float(group["speedup"].median()) if group["speedup"].notna().all() else None
                              for method, group in concluded.groupby("method")}  # fmt: skip
    out += [text["conclusion"], ""]
    for rule, values in facts.conclusions.values():
        out.append(f"- {text[rule].format(name=_name(text, values.get('method', '')), **values)}")
    out += [""] + _figures(text, figures, ("accuracy_vs_budget",))
    return out, metrics


def longest_budget(runs: list[Run]) -> list[Run]:
    """The runs of the longest budget: sections 1-4 compare at one budget."""
    if not runs:
        return runs
    longest = max(run.budget_seconds for run in runs)
    return [run for run in runs if run.budget_seconds == longest or math.isnan(run.budget_seconds)]


def render(
    is_runs: list[Run],
    uniform_runs: list[Run],
    timing: dict[str, pd.DataFrame] | None,
    lang: str,
    figures: dict[str, str],
    timing_path: str = "results/timing.xlsx",
    peer_runs: dict[str, list[Run]] | None = None,
) -> tuple[str, dict]:
    """The markdown report and the headline metrics, from the records alone. peer_runs: the other
    methods' runs by name (compare.methods); with several budgets, sections 1-4 use the longest."""
    if lang not in TEXT:
        raise ValueError(f"unknown report language {lang!r}; known: {', '.join(TEXT)}")
    text = TEXT[lang]
    peer_runs = peer_runs or {}
    every_run = is_runs + uniform_runs + [run for runs in peer_runs.values() for run in runs]
    files = [str(run.path) for run in every_run] + ([timing_path] if timing is not None else [])
    is_runs, uniform_runs = longest_budget(is_runs), longest_budget(uniform_runs)
    by_method = {method: longest_budget(runs)
                 for method, runs in {"upper_bound": is_runs, "uniform": uniform_runs, **peer_runs}.items() if runs}
    out = [text["title"], "", text["generated"], ""] + parameters_section(text, is_runs + uniform_runs, files)
    metrics: dict = {}
    missing: list[str] = []
    for lines, section_metrics in (
        comparison_section(text, is_runs, uniform_runs, figures),
        activation_section(text, is_runs, figures),
        cost_section(text, timing, figures),
        all_methods_section(text, by_method, timing, figures),
        speedup_section(text, every_run, figures),
    ):
        out += lines
        missing += section_metrics.pop("missing")
        metrics.update(section_metrics)
    out += [text["rules"], ""] + [f"- {rule}" for rule in text["rule_list"]] + [""]
    metrics["missing"] = list(dict.fromkeys(missing))
    return "\n".join(out), metrics
