"""tau measured five ways along one uniform run, by learning-rate phase: does the way tau is read move
the point where importance sampling would switch on?

Every `--every` iterations of a uniform run (params.yaml's model and schedule; by default the
memorising regime of the switching-rule study, `memorise_cpu`: 4,000 images, no augmentation), the
model just stepped scores:
- the trained batch with batch statistics, as the training forward does (the 2018 code's tau; no
  buffer changes),
- the trained batch in eval mode (running statistics), all b examples,
- the first chunk of it in eval mode (`sampler.forward_chunk` examples: what `tau_source: scoring`
  samples),
- a fresh presample of B = p b examples drawn at random, in eval mode: the tau IS would see.
Per lr phase (the last phase in halves): the mean of each, the train accuracy of the presample, how
often each exceeded the rule's threshold tau_th (`--tau-th`, the mean measured by the switching-rule
runs), and the peaks. The budget is counted in CPU seconds of this process (--jobs 1); the scoring
forwards are extra work inside it (about 5% more CPU at --every 10). About 5 minutes a point on 2 CPU
cores. Measured: docs/switching-rule.md.
"""

import argparse

import pandas as pd
import torch

import isample.experiment.train as train_module
from benchmarks.harness import Study, main
from benchmarks.regimes import REGIMES, data_of, params_of, train_timed
from isample.methods.base import scoring_mode
from isample.sampling import variance_reduction
from isample.scores import gnorm_upper_bound

READINGS = ("batch_statistics", "eval_trained_batch", "eval_one_chunk", "eval_fresh_presample")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=["memorise_cpu"], choices=list(REGIMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cpu-budget", type=float, default=300.0)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--tau-th", type=float, default=1.55)


def grid(args) -> list[dict]:
    return [{"regime": regime, "seed": seed} for regime in args.regimes for seed in args.seeds]


def taus(model, x: torch.Tensor, y: torch.Tensor, presample: torch.Tensor, presample_y, chunk: int) -> dict:
    def tau(mode: str, inputs, targets) -> float:
        with scoring_mode(model, mode), torch.inference_mode():
            return variance_reduction(gnorm_upper_bound(model(inputs), targets))

    with scoring_mode(model, "eval"), torch.inference_mode():
        accuracy = (model(presample).argmax(1) == presample_y).float().mean().item()
    return {
        "batch_statistics": tau("batch", x, y),
        "eval_trained_batch": tau("eval", x, y),
        "eval_one_chunk": tau("eval", x[:chunk], y[:chunk]),
        "eval_fresh_presample": tau("eval", presample, presample_y),
        "presample_accuracy": accuracy,
    }


def probed(args, seed: int, presample_size: int, chunk: int, rows: list):
    """train_module.build_setup, with a probe after every step of the run that reads tau five ways."""
    real_build, generator = train_module.build_setup, torch.Generator().manual_seed(seed + 99)

    def build_with_probe(*positional, **keywords):
        setup = real_build(*positional, **keywords)
        sampler, step, count = setup.sampler, setup.sampler.step, {"steps": 0}

        def step_and_probe():
            it = step()
            count["steps"] += 1
            if count["steps"] % args.every == 0:
                examples, model = sampler.examples, sampler.train_step.model
                x, y = examples.gather(it.indices)
                drawn = torch.randperm(len(examples), generator=generator)[:presample_size]
                presample, presample_y = examples.gather(drawn)
                lr = sampler.train_step.optimizer.param_groups[0]["lr"]
                rows.append({"iteration": count["steps"], "lr": lr, **taus(model, x, y, presample, presample_y, chunk)})
            return it

        sampler.step = step_and_probe
        return setup

    return build_with_probe


def train(point: dict, args) -> list[dict]:
    raw = params_of(point["regime"])
    presample_size = round(raw["presample"] * raw["batch_size"])
    chunk = raw["sampler"]["forward_chunk"] or 10**9
    rows, real_build = [], train_module.build_setup
    train_module.build_setup = probed(args, point["seed"], presample_size, chunk, rows)
    try:
        run, _, _ = train_timed(
            raw, "uniform", point["seed"], data_of(point["regime"]), clock="cpu", budget=args.cpu_budget
        )
    finally:
        train_module.build_setup = real_build
    frame = pd.DataFrame(rows)
    last = frame["lr"] == frame["lr"].iloc[-1]
    half = frame.loc[last, "iteration"].median()
    frame["phase"] = frame["lr"].map(lambda lr: f"lr {lr:g}")
    frame.loc[last & (frame["iteration"] <= half), "phase"] += " (first half)"
    frame.loc[last & (frame["iteration"] > half), "phase"] += " (second half)"
    phases = frame.groupby("phase", sort=False)
    means = phases[[*READINGS, "presample_accuracy"]].mean()
    above = phases[list(READINGS)].agg(lambda v: (v > args.tau_th).mean()).add_suffix("_above_tau_th")
    peaks = phases[list(READINGS)].max().add_suffix("_peak")
    table = means.join(above).join(peaks).reset_index()
    common = {
        "run_status": run.status,
        "final_accuracy": run.final_accuracy,
        "iterations": int(run.epochs["iterations"].sum()),
        "examples": len(data_of(point["regime"]).train_x),
        "augment": raw["data"]["augment"],
        "b": raw["batch_size"],
        "presample_size": presample_size,
        "chunk": min(chunk, raw["batch_size"]),
    }
    return [{**common, **row} for row in table.to_dict("records")]


def summarize(facts: pd.DataFrame, args) -> list:
    tables = []
    for (regime, seed), rows in facts.groupby(["regime", "seed"], sort=False):
        run = rows.iloc[0]  # what the run's rows share
        where = (
            f"{regime}, seed {seed}: {run['examples']} images, augment {run['augment']}, {run['iterations']} "
            f"iterations, final test accuracy {run['final_accuracy']:.4f}; b = {run['b']}, "
            f"B = {run['presample_size']}, chunk {run['chunk']}; every {run['every']} iterations"
        )
        tables.append((f"mean tau by phase ({where}):", rows[["phase", *READINGS, "presample_accuracy"]]))
        above = rows[["phase", *(f"{r}_above_tau_th" for r in READINGS)]]
        tables.append((f"share of samples above tau_th = {run['tau_th']:g}:", above))
        peaks = rows[[f"{r}_peak" for r in READINGS]].max().to_frame().T  # over the whole run
        tables.append(("peak:", peaks.rename(columns=lambda name: name.removesuffix("_peak"))))
    return tables


STUDY = Study(
    name="tau_estimates",
    doc=__doc__,
    keys=("regime", "seed"),
    grid=grid,
    train=train,
    summarize=summarize,
    add_arguments=add_arguments,
    exclusive=lambda point: True,
    settings=lambda args: {"cpu_budget": args.cpu_budget, "every": args.every, "tau_th": args.tau_th},
    estimate_seconds=lambda point, args: args.cpu_budget / 2 + 60,
)

if __name__ == "__main__":
    main(STUDY)
