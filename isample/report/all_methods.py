"""Section 4, "All methods at equal time": every selection method against uniform, paired by seed, at
one budget: its facts, its named rules and its words."""

import math

import pandas as pd

from isample.names import UNIFORM
from isample.report.common import (
    MIN_SEEDS,
    SMOOTHING_EPOCHS,
    TARGET_SHARES,
    Facts,
    Section,
    figure_lines,
    finite_or_none,
    method_name,
    missing_lines,
    number,
    paired,
    queue_command,
    seeds_to_resolve,
    table,
    times_to_target,
)
from isample.report.records import CHARGED, Run


def method_cost(per_ratio: pd.DataFrame | None, method: str, presample: float | None) -> float:
    """a of `method` from the timing records: its own row (upper_bound: the row of its presample ratio)."""
    if per_ratio is None:
        return math.nan
    rows = per_ratio[per_ratio["run"] == method]
    if presample is not None and (rows["presample"] == presample).any():
        rows = rows[rows["presample"] == presample]
    return float(rows["a"].iloc[0]) if len(rows) else math.nan


def time_ratio(times: list[tuple[float, float]]) -> float:
    """Mean over seeds of the method's time over uniform's; a method that misses on any seed: nan."""
    ratios = [mine / reference for mine, reference in times]
    return float(pd.Series(ratios).mean()) if ratios and not any(math.isnan(r) for r in ratios) else math.nan


def method_row(method: str, runs: list[Run], uniform_runs: list[Run], per_ratio) -> dict:
    healthy = [run for run in runs if not run.diverged]
    pairs = paired(healthy, uniform_runs)
    low, high = pairs.interval
    presample = runs[0].params.get("presample")
    presample = float(presample) if presample not in (None, "auto") else None  # auto: no one ratio's row
    return {
        "method": method,
        "seeds": len(healthy),
        "diverged": len(runs) - len(healthy),
        "final": float(pd.Series([r.final_accuracy for r in healthy]).mean()),
        "best": float(pd.Series([r.epochs["test_accuracy"].max() for r in healthy]).mean()),
        "difference": pairs.difference,
        "ci_low": low,
        "ci_high": high,
        "pairs": pairs.n,
        "resolution": pairs.resolution,
        "seeds_for_1_point": seeds_to_resolve(pairs.spread),
        "a": method_cost(per_ratio, runs[0].method, presample),  # a charged arm costs as its method
        "scored_share": float(pd.Series([r.scored_share for r in healthy]).mean()),
        **{f"time_{share:.2f}": time_ratio(times_to_target(pairs, share)) for share in TARGET_SHARES},
    }


def method_rule(row: pd.Series) -> str:
    """A direction needs MIN_SEEDS paired seeds and a 95% interval that excludes zero."""
    if row["pairs"] < MIN_SEEDS:
        return "method_one_seed"
    if row["ci_low"] > 0:
        return "method_better"
    if row["ci_high"] < 0:
        return "method_worse"
    return "method_within_noise"


def overall_rule(ranked: pd.DataFrame, verdicts: dict[str, str]) -> tuple[str, dict] | None:
    better = [method for method in ranked.index if verdicts[method] == "method_better"]
    if better:
        return "methods_best", {"method": better[0]}
    if len(ranked) and (ranked["pairs"] >= MIN_SEEDS).all():
        return "methods_none_better", {}
    return ("methods_too_few_seeds", {}) if len(ranked) else None


def compare_methods(runs: dict[str, list[Run]], per_ratio: pd.DataFrame | None) -> Facts:
    """Per method: final and best test accuracy, the paired difference from uniform with its 95%
    interval, the cost a, and time to 90/95/100% of uniform's best smoothed accuracy as a ratio to
    uniform's own time; then the ranking and one verdict per method."""
    facts = Facts()
    if not runs.get(UNIFORM):
        facts.missing.append(UNIFORM)
        return facts
    table_ = pd.DataFrame([method_row(m, r, runs[UNIFORM], per_ratio) for m, r in runs.items()]).set_index("method")
    facts.tables["methods"] = table_
    ranked = table_.drop(index=UNIFORM).sort_values("difference", ascending=False)
    facts.numbers["ranking"] = ranked.index.tolist()
    verdicts = {method: method_rule(row) for method, row in ranked.iterrows()}
    for method, row in ranked.iterrows():
        facts.conclusions[f"method_{method}"] = (
            verdicts[method],
            {
                "method": method,
                "diff": 100 * row["difference"],
                "low": 100 * row["ci_low"],
                "high": 100 * row["ci_high"],
                "n": int(row["pairs"]),
            },
        )
    if overall := overall_rule(ranked, verdicts):
        facts.conclusions["overall"] = overall
    return facts


def _rows(words: dict, table_: pd.DataFrame, order: list[str]) -> list[list]:
    rows = []
    for method in order:
        r, reference = table_.loc[method], method == UNIFORM
        interval = (
            "-" if reference or math.isnan(r["ci_low"]) else f"[{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}]"
        )
        difference = "-" if reference or math.isnan(r["difference"]) else f"{100 * r['difference']:+.2f}"
        times = [
            "1.00"
            if reference
            else words["not_reached"]
            if math.isnan(r[f"time_{s:.2f}"])
            else f"{r[f'time_{s:.2f}']:.2f}"
            for s in TARGET_SHARES
        ]
        rows.append(
            [
                method_name(words, method),
                int(r["seeds"]),
                number(r["final"]),
                number(r["best"]),
                difference,
                interval,
                number(r["a"], 3),
                f"{r['scored_share']:.2f}",
                *times,
            ]
        )
    return rows


def resolution_line(words: dict, method: str, row: pd.Series) -> str:
    """What this method's seeds can resolve, and how many seeds would resolve one point."""
    name, n = method_name(words, method), int(row["pairs"])
    if n < MIN_SEEDS:
        return words["resolution_one_seed"].format(name=name, n=n, command=queue_command(3))
    half, seeds = 100 * row["resolution"], row["seeds_for_1_point"]
    if seeds <= n:
        return words["resolution_met"].format(name=name, n=n, half=half)
    if math.isinf(seeds):
        return words["resolution_far"].format(name=name, n=n, half=half)
    return words["resolution"].format(
        name=name, n=n, half=half, seeds=f"{seeds:.0f}", command=queue_command(int(seeds))
    )


def _tables_cost_lines(words: dict, runs: dict[str, list[Run]], order: list[str]) -> list[str]:
    """What a method's tables cost (rho_loss's IL models) against the budget, for every method that read
    some; with its charged row, or why there is none (the tables took the whole budget)."""
    lines = []
    for arm in (arm for arm in order if not arm.endswith(CHARGED)):
        seconds = pd.Series([run.tables_seconds for run in runs[arm]]).dropna()
        charged = pd.Series([run.charged_seconds for run in runs.get(f"{arm}{CHARGED}", [])])
        if seconds.empty and charged.empty:
            continue
        values = {
            "name": method_name(words, arm),
            "charged": method_name(words, f"{arm}{CHARGED}"),
            "seconds": seconds.mean() if len(seconds) else charged.mean(),
            "budget": pd.Series([run.budget_seconds for run in runs[arm]]).mean(),
        }
        if len(charged):
            rule = "charged_note"
        else:  # the stage trains no charged run when the tables took the budget or more
            rule = "no_charged_note" if values["seconds"] >= values["budget"] else "uncharged_note"
        lines += [words[rule].format(**values), ""]
    return lines


def section(words: dict, runs: dict[str, list[Run]], per_ratio, figures: dict) -> Section:
    facts = compare_methods(runs, per_ratio)
    out = [words["s4"], ""] + missing_lines(words, facts)
    if facts.missing:
        return Section(out, missing=facts.missing)
    table_ = facts.tables["methods"]
    order = [UNIFORM] + facts.numbers["ranking"]
    budget = next(run.budget_seconds for method_runs in runs.values() for run in method_runs)
    if not math.isnan(budget):
        out += [words["methods_budget"].format(budget=budget), ""]
    out += [table(words["cols_methods"], _rows(words, table_, order)), "", words["methods_note"], ""]
    out += _tables_cost_lines(words, runs, order)
    out += [words["resolution_title"], ""]
    out += [f"- {resolution_line(words, method, table_.loc[method])}" for method in facts.numbers["ranking"]] + [""]
    out += [words["conclusion"], ""]
    for rule, values in facts.conclusions.values():
        out.append(f"- {words[rule].format(name=method_name(words, values.get('method', '')), **values)}")
    seeds = len({run.seed for method_runs in runs.values() for run in method_runs})
    out += [""] + figure_lines(words, figures, ("all_methods",), seeds=seeds)
    metrics = {
        method: finite_or_none({key: float(value) for key, value in table_.loc[method].items()}) for method in order
    }
    headline = {
        "acc": {method: metrics[method]["final"] for method in order},
        "diff": {
            m: None if metrics[m]["difference"] is None else round(100 * metrics[m]["difference"], 2)
            for m in order
            if m != UNIFORM
        },
        "scored_share": {m: metrics[m]["scored_share"] for m in order if m != UNIFORM},
        "a": {m: metrics[m]["a"] for m in order if m != UNIFORM},
    }
    return Section(out, {"methods": metrics}, headline=headline)


TEXT = {
    "en": {
        "s4": "## 4. All methods at equal time",
        "methods_budget": "Every method trained from the same initial weights for {budget:g} s of training time per seed "
        "(the longest budget run), paired with the uniform run of the same seed.",
        "cols_methods": [
            "method",
            "seeds",
            "final test accuracy (whole test set)",
            "best test accuracy (per-epoch subset)",
            "minus uniform (points)",
            "95% interval",
            "a",
            "selected by score",
            "time to 90%",
            "time to 95%",
            "time to 100%",
        ],
        "charged_note": "{charged}: trained for the {budget:.0f} s budget less the {seconds:.0f} s its IL models took "
        "(tables@rho_loss), what a user training once pays; the amortised row trains for the whole budget, as the "
        "authors count (the IL models reused over many runs).",
        "no_charged_note": "{name}: its IL models took {seconds:.0f} s (tables@rho_loss), the whole {budget:.0f} s "
        "budget or more, so charged to it they leave no time to train: there is no charged row, and the row shown "
        "amortises them, as the authors count (the IL models reused over many runs).",
        "uncharged_note": "{name}: its IL models took {seconds:.0f} s (tables@rho_loss) of the {budget:.0f} s budget; "
        "these records hold no charged run, so the row shown amortises them, as the authors count.",
        "methods_note": "a is the method's iteration time minus the training step's, over the training step's (timing "
        "stage; for upper_bound the notebook's a at its presample ratio: the presample's time over the "
        "training step's). Time to X%: training time until the test accuracy, "
        f"averaged over the last {SMOOTHING_EPOCHS} epochs, first reaches X% of uniform's best such "
        "accuracy, as a ratio to uniform's own time (below 1: less time); `not reached` when it never does "
        "on some seed. 'Selected by score': the share of iterations whose batch the method chose by "
        "score (for IS, the iterations with IS on; for InfoBatch, those of epochs that pruned).",
        "method_better": "{name} ends above uniform by {diff:+.2f} points over {n} seeds; the 95% interval [{low:+.2f}, "
        "{high:+.2f}] excludes zero: better than uniform beyond the seed noise.",
        "method_worse": "{name} ends below uniform by {diff:+.2f} points over {n} seeds; the 95% interval [{low:+.2f}, "
        "{high:+.2f}] excludes zero: worse than uniform beyond the seed noise.",
        "method_within_noise": "{name} differs from uniform by {diff:+.2f} points over {n} seeds, but the 95% interval "
        "[{low:+.2f}, {high:+.2f}] includes zero: it cannot be told apart from uniform.",
        "method_one_seed": "{name}: {n} paired seed(s), too few for a direction (the difference between two seeds of one "
        "method can be as large). Run `dvc exp run -S 'train.seeds=[0,1,2]'`.",
        "resolution_title": "Resolution: the smallest difference from uniform the seeds can tell from zero (the 95% "
        "interval's half-width), and the seeds that would resolve 1 point at the measured spread of the paired "
        "differences (the literature's effects are 1-2 points):",
        "resolution": "{name}: with {n} seeds, a difference smaller than +-{half:.2f} points cannot be told from zero; "
        "{seeds} seeds would resolve 1 point: `{command}`.",
        "resolution_met": "{name}: with {n} seeds, differences beyond +-{half:.2f} points are resolved, 1 point among "
        "them.",
        "resolution_one_seed": "{name}: {n} paired seed(s) have no spread, so no resolution can be stated; 3 seeds give "
        "one: `{command}`.",
        "resolution_far": "{name}: with {n} seeds, a difference smaller than +-{half:.2f} points cannot be told from "
        "zero; more than 1000 seeds would be needed to resolve 1 point.",
        "methods_best": "Ranked by the mean difference from uniform, the best method beyond noise is {name}.",
        "methods_none_better": "No method beats uniform beyond the seed noise at this budget.",
        "methods_too_few_seeds": "With fewer than the seeds a direction needs, the methods are listed by their mean "
        "difference only; that order is not a ranking.",
    },
    "zh": {
        "s4": "## 4. 等训练时间下的所有方法",
        "methods_budget": "每种方法从相同的初始权重出发，每个种子训练 {budget:g} 秒（所运行的最长预算），并与同一种子的均匀采样运行配对。",
        "cols_methods": [
            "方法",
            "种子数",
            "最终测试精度（全部测试集）",
            "最佳测试精度（每轮子集）",
            "减去均匀（百分点）",
            "95% 区间",
            "a",
            "按分数选择",
            "达到 90% 的时间",
            "达到 95% 的时间",
            "达到 100% 的时间",
        ],
        "charged_note": "{charged}：训练时间为 {budget:.0f} 秒预算减去其 IL 模型所用的 {seconds:.0f} 秒（tables@rho_loss），"
        "即只训练一次的用户所付的代价；摊销一行用满整个预算，与作者的计法相同（IL 模型在多次运行中复用）。",
        "no_charged_note": "{name}：其 IL 模型用了 {seconds:.0f} 秒（tables@rho_loss），达到或超过整个 {budget:.0f} 秒预算，"
        "计入预算后已无训练时间：因此没有计入一行，所示一行按作者的计法摊销（IL 模型在多次运行中复用）。",
        "uncharged_note": "{name}：其 IL 模型用了 {budget:.0f} 秒预算中的 {seconds:.0f} 秒（tables@rho_loss）；这些记录中没有"
        "计入的运行，所示一行按作者的计法摊销。",
        "methods_note": "a 为该方法的迭代时间减去训练步时间，再除以训练步时间（timing 阶段；upper_bound 为其预采样比下笔记中的 a："
        "预采样时间除以训练步时间）。"
        f"达到 X% 的时间：测试精度（最近 {SMOOTHING_EPOCHS} 个 epoch 的平均）首次达到均匀采样最佳平均精度的 X% "
        "所需的训练时间，与均匀采样自身所需时间之比（小于 1 表示用时更少）；若某个种子始终未达到，记为“未达到”。"
        "“按分数选择”：方法按分数选择批次的迭代比例（IS 为开启的迭代，InfoBatch 为发生剪枝的 epoch 中的迭代）。",
        "method_better": "{name} 最终比均匀采样高 {diff:+.2f} 个百分点（{n} 个种子）；95% 区间 [{low:+.2f}, {high:+.2f}] "
        "不含零：优于均匀采样，超出种子噪声。",
        "method_worse": "{name} 最终比均匀采样低 {diff:+.2f} 个百分点（{n} 个种子）；95% 区间 [{low:+.2f}, {high:+.2f}] "
        "不含零：劣于均匀采样，超出种子噪声。",
        "method_within_noise": "{name} 与均匀采样相差 {diff:+.2f} 个百分点（{n} 个种子），但 95% 区间 [{low:+.2f}, "
        "{high:+.2f}] 包含零：无法与均匀采样区分。",
        "method_one_seed": "{name}：仅 {n} 个配对种子，不足以判断方向（同一方法两个种子之间的差异可能同样大）。运行 "
        "`dvc exp run -S 'train.seeds=[0,1,2]'`。",
        "resolution_title": "分辨率：这些种子能与零区分的与均匀采样的最小差值（95% 区间的半宽），以及按配对差值的实测离散度"
        "分辨 1 个百分点所需的种子数（文献报告的效应为 1-2 个百分点）：",
        "resolution": "{name}：{n} 个种子下，小于 +-{half:.2f} 个百分点的差值无法与零区分；{seeds} 个种子可分辨 1 个百分点："
        "`{command}`。",
        "resolution_met": "{name}：{n} 个种子下，超过 +-{half:.2f} 个百分点的差值可以分辨，包括 1 个百分点。",
        "resolution_one_seed": "{name}：{n} 个配对种子没有离散度，无法给出分辨率；3 个种子即可给出：`{command}`。",
        "resolution_far": "{name}：{n} 个种子下，小于 +-{half:.2f} 个百分点的差值无法与零区分；分辨 1 个百分点需要超过 1000 个种子。",
        "methods_best": "按与均匀采样的平均差值排序，超出噪声的最佳方法是 {name}。",
        "methods_none_better": "在此预算下，没有方法在种子噪声之外优于均匀采样。",
        "methods_too_few_seeds": "种子数不足以判断方向，方法仅按平均差值列出；该顺序不是排名。",
    },
}
RULES = {
    "en": [
        f"All methods: each one's final test accuracy minus uniform's, paired by seed; better or worse needs at least "
        f"{MIN_SEEDS} seeds and a Student-t 95% interval excluding zero, else it cannot be told apart from uniform.",
    ],
    "zh": [
        f"所有方法：各方法最终测试精度减去均匀采样的，按种子配对；判断优劣需要至少 {MIN_SEEDS} 个种子且 Student-t 95% 区间不含零，"
        "否则无法与均匀采样区分。",
    ],
}
