"""timing: experiments 6-8 as a measurement -> results/timing.xlsx: per-phase times of uniform SGD and of
upper_bound with IS on at every presample ratio. timing_peer@<method> (`--method`): uniform beside one
more method, measured side by side in one process -> results/timing_<method>.xlsx. Every sampler is built
by the training set-up itself (`isample.experiment.setup`), so what is timed is what trains."""

import argparse
import shutil
import sys

import pandas as pd
import torch
from dvclive import Live

from isample.experiment import launch
from isample.experiment.config import ConfigError, Params
from isample.experiment.prepared import load_prepared
from isample.experiment.runs import params_values, stage_params
from isample.experiment.setup import resolve_device
from isample.experiment.timing import IMPORTANCE, UNIFORM, measure_params
from isample.experiment.timing_summary import fit, machine_prices, summarize
from isample.methods.catalog import CATALOG
from isample.report.records import params_frame, timing_path, write_workbook
from stages.common import RESULTS_DIR, prepared_path, replace_directory, run_stage

LIVE_DIR = RESULTS_DIR / "timing_live"
SHOWN = [
    "run",
    "presample",
    "measured_seconds",
    "a",
    "a_per_p",
    "k",
    "non_model_share",
    "prediction_error",
    "prediction_error_measured",
]


def _write_live(fitted) -> None:
    staging = RESULTS_DIR / ".timing_live.staging"
    shutil.rmtree(staging, ignore_errors=True)
    live = Live(dir=str(staging), save_dvc_exp=False, dvcyaml=False)
    for metric, value in zip(fitted["metric"], fitted["value"], strict=True):
        live.summary[metric] = float(value)
    live.end()
    replace_directory(staging, LIVE_DIR)


def main(params: Params, peer: str | None = None) -> None:
    gpus = launch.hold_gpus(params, count=1)  # noqa: F841 (a GPU no training stage holds, to the end)
    data = load_prepared(prepared_path(params))
    largest = round(max(params.timing.presamples) * params.batch_size)
    if peer is None and largest > data.train_size:
        raise ConfigError(
            f"params.yaml: timing.presamples: B = {largest} exceeds the {data.train_size} prepared images"
        )
    progress = sys.stderr.isatty()  # a log gets the table below, not a frame per iteration
    iterations = measure_params(params, data, peer, progress=progress)
    resets = int(iterations.groupby(["run", "presample", "forward_chunk"], dropna=False)["diverged_resets"].max().sum())
    if resets:
        print(
            f"note: the model diverged {resets} time(s) at lr {params.train.lr * params.train.lr_scale:g}; its weights "
            "were reset to the initial ones each time and timing went on (cost needs no finite model)"
        )
    per_ratio = summarize(iterations, params.batch_size)
    info = params_values(params, stage_params("timing_peer" if peer else "timing", peer))
    info.update(
        device=str(resolve_device(params.train.device)), torch=torch.__version__, threads=torch.get_num_threads()
    )
    sheets = {"iterations": iterations, "per_ratio": per_ratio, "params": params_frame(info)}
    if peer is None:
        sheets["fit"] = fitted = fit(iterations, per_ratio)
        prices = machine_prices(per_ratio, params.batch_size)
        sheets["prices"] = pd.DataFrame({"price": list(prices), "seconds": list(prices.values())})
        _write_live(fitted)
    write_workbook(timing_path(RESULTS_DIR, peer), sheets)
    print(per_ratio[[column for column in SHOWN if column in per_ratio]].to_string(index=False, float_format="%.3f"))
    if peer is None:  # in the form params.yaml takes, to price runs as this machine runs them
        print("this machine's prices (params.yaml, train.prices):")
        print("\n".join(f"    {name}: {seconds:.3g}" for name, seconds in prices.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=sorted(set(CATALOG) - {UNIFORM, IMPORTANCE}))
    peer = parser.parse_args().method
    run_stage(lambda params: main(params, peer))
