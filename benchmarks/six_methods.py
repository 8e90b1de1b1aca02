"""All six methods at equal wall-clock time: uniform (random reshuffling), importance sampling (by its
rule), score reuse, Selective-Backprop, InfoBatch and RHO-LOSS, from the same initial weights per seed.

The default params (10,000 images with augmentation, resnet8, 200 s per run). RHO-LOSS reads its
irreducible losses (two IL models, each trained on one half of the data and scoring the other, as the
`tables@rho_loss` stage trains them), trained once per process; `rho_loss_charged` is RHO-LOSS with
their training time charged to its budget, as a user training once pays it. Per method: final test
accuracy (whole test set), best per-epoch test accuracy, the paired difference from uniform with its
95% interval, and the iterations trained against uniform's. Wall-clock time: --jobs 1 on a quiet
machine; about 80 minutes for 3 seeds on 2 CPU cores. The pipeline's report of the same comparison
(`dvc exp run -S 'compare.methods=[...]'`, with each method's measured a and time to accuracy):
docs/comparison.md.
"""

import argparse
import functools

import pandas as pd

from benchmarks.harness import Study, main
from benchmarks.paired import interval_text, paired
from benchmarks.regimes import data_of, params_of, train_timed
from isample.experiment.config import validate
from isample.experiment.irreducible import IrreducibleSpec, halves, irreducible_losses, train_half

METHODS = ("uniform", "upper_bound", "reuse", "selective_backprop", "infobatch", "rho_loss", "rho_loss_charged")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--budget", type=float, default=200.0, help="wall-clock seconds of training per run")


def grid(args) -> list[dict]:
    return [{"method": method, "seed": seed} for seed in args.seeds for method in args.methods]


@functools.cache
def irreducible_tables() -> tuple[dict, float]:
    """rho_loss's irreducible losses on the default data, and the seconds they took."""
    data = data_of("params")
    spec = IrreducibleSpec.from_params(validate(params_of("params", {"train": {"budget": "1s"}})))  # any budget
    first, second = halves(data.train_y)
    models = [
        train_half(spec, data, trained, scored, half)
        for half, (trained, scored) in enumerate(((first, second), (second, first)))
    ]
    return {"irreducible_loss": irreducible_losses(models, len(data.train_y))}, sum(m.seconds for m in models)


def train(point: dict, args) -> dict:
    method, budget, tables, charged = point["method"], args.budget, None, 0.0
    if method.startswith("rho_loss"):
        tables, seconds = irreducible_tables()
        charged = seconds if method == "rho_loss_charged" else 0.0
        method, budget = "rho_loss", budget - charged
        if budget <= 0:
            raise ValueError(f"the IL models took {charged:.0f} s, the whole budget: no charged run")
    run, _, seconds = train_timed(
        params_of("params"), method, point["seed"], data_of("params"), clock="wall", budget=budget, tables=tables
    )
    epochs = run.epochs
    return {
        "run_status": run.status,
        "final_accuracy": run.final_accuracy,
        "best_accuracy": epochs["test_accuracy"].max(),
        "iterations": int(epochs["iterations"].sum()),
        "tables_seconds_charged": charged,
        "run_seconds": seconds,
    }


def summarize(facts: pd.DataFrame, args) -> list:
    """Per method, best first: its accuracy and its difference from uniform, seed by seed."""
    uniform = facts[facts["method"] == "uniform"].set_index("seed")
    runs = facts.rename(columns={"method": "variant"})
    rows = []
    for method, group in facts.groupby("method", sort=False):
        differences = paired(runs, method, uniform["final_accuracy"]) if method != "uniform" else []
        rows.append(
            {
                "method": method,
                "seeds": len(group),
                "final_accuracy": group["final_accuracy"].mean(),
                "best_accuracy": group["best_accuracy"].mean(),
                "minus_uniform_points": interval_text(differences) if len(differences) > 1 else "",
                "iterations_against_uniform": group["iterations"].mean() / uniform["iterations"].mean(),
            }
        )
    return [("", pd.DataFrame(rows).sort_values("final_accuracy", ascending=False))]


STUDY = Study(
    name="six_methods",
    doc=__doc__,
    keys=("method", "seed"),
    grid=grid,
    train=train,
    summarize=summarize,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"budget": args.budget},
    estimate_seconds=lambda point, args: args.budget + 30 + (80 if point["method"].startswith("rho") else 0),
    floatfmt=".4f",
)

if __name__ == "__main__":
    main(STUDY)
