"""tau measured five ways along one uniform run, by learning-rate phase: does the way tau is read move
the point where importance sampling would switch on?

Every `--every` iterations of a uniform run (params.yaml's model and schedule; by default the
memorising regime of benchmarks/switching_rule.py: 4,000 images, no augmentation), the model just
stepped scores:
- the trained batch with batch statistics, as the training forward does (the 2018 code's tau; no
  buffer changes),
- the trained batch in eval mode (running statistics), all b examples,
- the first chunk of it in eval mode (`sampler.forward_chunk` examples: what `tau_source: scoring`
  samples),
- a fresh presample of B = p b examples drawn at random, in eval mode: the tau IS would see.
Printed: the mean of each per lr phase (the last phase in halves), the train accuracy of the
presample, and how often each exceeded the rule's threshold tau_th (`--tau-th`, the mean measured
by the switching-rule runs). The budget is counted in CPU seconds of this process; the scoring
forwards are extra work inside it (about 5% more CPU at --every 10).
Usage: python -m benchmarks.tau_estimates [--cpu-budget 300] [--train-subset 4000] [--no-augment]
       [--tau-th 1.55]   (about 4 minutes on 2 CPU cores)
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

import isample.experiment.train as train_module
from isample.experiment.config import validate
from isample.experiment.data import load_dataset, subset
from isample.experiment.runs import run_spec
from isample.methods.base import scoring_mode
from isample.sampling import variance_reduction
from isample.scores import gnorm_upper_bound


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-budget", type=float, default=300.0)
    parser.add_argument("--train-subset", type=int, default=4000)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--tau-th", type=float, default=1.55)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["train"].pop("budgets", None)
    raw["train"].update(budget=f"{args.cpu_budget:g}s", seeds=[args.seed])
    raw["data"].update(train_subset=args.train_subset, test_subset=1000, augment=args.augment)
    params = validate(raw)
    data = subset(load_dataset(params.data.name, params.data.root), params.data.train_subset, 1000)
    spec = run_spec(params, "uniform", params.train.budget_list[0], args.seed)
    presample_size, chunk = round(params.presample * params.batch_size), params.sampler["forward_chunk"] or 10**9
    rows, generator = [], torch.Generator().manual_seed(args.seed + 99)
    real_build = train_module.build_setup

    def build_with_probe(*positional, **keywords):
        setup = real_build(*positional, **keywords)
        sampler, iteration = setup.sampler, {"n": 0}

        def probe(it) -> None:  # after each step of the run
            iteration["n"] += 1
            if iteration["n"] % args.every:
                return
            examples, model = sampler.examples, sampler.train_step.model
            x, y = examples.gather(it.indices)
            drawn = torch.randperm(len(examples), generator=generator)[:presample_size]
            presample, presample_y = examples.gather(drawn)
            lr = sampler.train_step.optimizer.param_groups[0]["lr"]
            rows.append({"iteration": iteration["n"], "lr": lr, **taus(model, x, y, presample, presample_y, chunk)})

        step = sampler.step

        def step_and_probe():
            it = step()
            probe(it)
            return it

        sampler.step = step_and_probe
        return setup

    train_module.build_setup = build_with_probe
    record = train_module.train_run(spec, data, progress=False, clock=time.process_time)
    frame = pd.DataFrame(rows)
    last = frame["lr"] == frame["lr"].iloc[-1]
    half = frame.loc[last, "iteration"].median()
    frame["phase"] = frame["lr"].map(lambda lr: f"lr {lr:g}")
    frame.loc[last & (frame["iteration"] <= half), "phase"] += " (first half)"
    frame.loc[last & (frame["iteration"] > half), "phase"] += " (second half)"
    columns = ["batch_statistics", "eval_trained_batch", "eval_one_chunk", "eval_fresh_presample"]
    table = frame.groupby("phase", sort=False)[[*columns, "presample_accuracy"]].mean()
    above = frame.groupby("phase", sort=False)[columns].agg(lambda v: (v > args.tau_th).mean())
    print(
        f"{len(data.train_x)} images, augment {args.augment}, {record.epochs['iterations'].sum()} iterations, "
        f"final test accuracy {record.final_accuracy:.4f}; b = {params.batch_size}, B = {presample_size}, "
        f"chunk {min(chunk, params.batch_size)}; every {args.every} iterations\n"
    )
    print("mean tau by phase:\n" + table.to_markdown(floatfmt=".3f"))
    print(f"\nshare of samples above tau_th = {args.tau_th}:\n" + above.to_markdown(floatfmt=".2f"))
    print("\npeak:\n" + frame[columns].max().to_frame("peak").T.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
