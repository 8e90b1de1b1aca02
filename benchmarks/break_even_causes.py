"""Why IS does not pay at zero price: one change at a time from IS forced on (or from uniform), each
against its own baseline of the same regime and seed, at an equal priced budget.

Each cause is trained at zero price; its baseline is the uniform run of the same regime and seed in
break_even's facts (--against), or, for LayerNorm, uniform with the same LayerNorm network.
`presample_flat` keeps IS's draw (b of B = p b, with replacement) but all but drops its scores
(smoothing 0.999: every weight within 0.1% of 1), so only the presample's repeats differ from uniform;
`lr_tau` scales the lr by --tau (the effective batch tau b). `weight_max`, `effective_share`
((sum w)^2 / (b sum w^2)) and `distinct_share` (distinct examples of an IS batch's b) are per-iteration
means over the iterations IS was on. Measured: docs/break-even.md.
"""

import argparse
from pathlib import Path

import pandas as pd

from benchmarks.facts import FAILED, HarnessError, check_one_machine, check_settings, machines_of, read_facts
from benchmarks.harness import Study, main
from benchmarks.paired import interval_text, loss_text
from benchmarks.regimes import REGIMES, WEIGHTS, data_of, merged, params_of, run_facts, train_timed

# name -> (method, IS forced on, params.yaml overrides, the method's option overrides).
CAUSES = {
    "no_smoothing": ("upper_bound", True, {"sampler": {"smoothing": 0.0}}, {}),
    "presample_flat": ("upper_bound", True, {"sampler": {"smoothing": 0.999}}, {}),
    "from_first_drop": ("upper_bound", True, {}, {"importance_from": "first_milestone"}),
    "lr_tau": ("upper_bound", True, {"train": {"lr_scale": "tau"}}, {}),
    "uniform_with_replacement": ("uniform", False, {}, {"with_replacement": True}),
    "layer_norm_uniform": ("uniform", False, {"model": {"norm": "layer"}}, {}),
    "layer_norm_forced": ("upper_bound", True, {"model": {"norm": "layer"}}, {}),
}
BASELINES = {"layer_norm_forced": "layer_norm_uniform"}  # a cause's uniform run when it is not plain uniform's


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=["memorise"], choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=60.0, help="priced seconds per run")
    parser.add_argument("--causes", nargs="+", default=list(CAUSES), choices=list(CAUSES))
    parser.add_argument("--tau", type=float, default=1.08, help="the lr scale of the lr_tau cause")
    parser.add_argument(
        "--against", default="docs/data/break_even_2018.csv", help="break_even's facts of the 2018 draw (the baselines)"
    )


def grid(args) -> list[dict]:
    return [
        {"regime": regime, "variant": cause, "price": "0", "seed": seed}
        for regime in args.regimes
        for seed in args.seeds
        for cause in args.causes
    ]


def train(point: dict, args) -> dict:
    method, forced, overrides, options = CAUSES[point["variant"]]
    raw = params_of(point["regime"], {"train": {"prices": {"presample_a": 0.0}}})
    if overrides.get("train", {}).get("lr_scale") == "tau":
        overrides = {"train": {"lr_scale": raw["train"]["lr_scale"] * args.tau}}
    if options.get("importance_from") == "first_milestone":
        options = {"importance_from": raw["train"]["lr_milestones"][0]}
    options = {**options, **({"always_importance": True} if forced else {})}
    raw = merged(raw, overrides)
    run, _, seconds = train_timed(
        raw, method, point["seed"], data_of(point["regime"]), clock="priced", budget=args.budget, options=options
    )
    return {**run_facts(run), "run_seconds": seconds, "a_priced": 0.0 if method == "upper_bound" else float("nan")}


def summarize_causes(causes: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Each cause's final accuracy against its baseline of the same regime and seed (uniform, or the
    uniform run with the same change), beside IS forced on at zero price against uniform."""
    runs = pd.concat(
        [
            facts[facts["variant"].isin(["uniform", "forced"]) & (facts["price"].astype(str) == "0")],
            facts[facts["variant"] == "uniform"],
            causes,
        ]
    ).drop_duplicates(["regime", "variant", "seed"])
    rows = []
    for (regime, variant), group in runs.groupby(["regime", "variant"], sort=False):
        if variant == "uniform" or variant == "layer_norm_uniform":
            continue
        baseline = runs[(runs["regime"] == regime) & (runs["variant"] == BASELINES.get(variant, "uniform"))]
        paired = group.set_index("seed")["final_accuracy"] - baseline.set_index("seed")["final_accuracy"]
        loss = group.set_index("seed")["train_set_loss"] - baseline.set_index("seed")["train_set_loss"]
        rows.append(
            {
                "regime": regime,
                "variant": variant,
                "against": BASELINES.get(variant, "uniform"),
                "seeds": int(paired.notna().sum()),
                "gain_points": interval_text(paired.dropna().tolist()),
                "train_set_loss_difference": loss_text(loss.dropna().tolist()),
                "tau": group["tau"].mean(),
                **{name: group[name].mean() for name in WEIGHTS if name in group},
            }
        )
    return pd.DataFrame(rows)


def baselines(causes: pd.DataFrame, args) -> pd.DataFrame:
    """break_even's facts (--against), refused when they come from another machine or budget."""
    facts = read_facts(Path(args.against))
    if facts.empty:
        raise HarnessError(f"--against {args.against}: no facts (run python -m benchmarks.break_even first)")
    check_one_machine(facts, machines_of(causes), args.allow_mixed_machines, f"--against {args.against}")
    if "budget" in causes and not causes["budget"].dropna().empty:
        check_settings(facts, {"budget": causes["budget"].dropna().iloc[0]}, f"--against {args.against}")
    return facts[facts["status"] != FAILED] if "status" in facts else facts


STUDY = Study(
    name="break_even_causes",
    doc=__doc__,
    keys=("regime", "variant", "price", "seed"),
    grid=grid,
    train=train,
    summarize=lambda causes, args: [("", summarize_causes(causes, baselines(causes, args)))],
    add_arguments=add_arguments,
    settings=lambda args: {"budget": args.budget, "tau_lr_scale": args.tau},
    estimate_seconds=lambda point, args: 4.5 * args.budget,
)

if __name__ == "__main__":
    main(STUDY)
