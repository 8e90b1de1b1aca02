"""timing: experiments 6-8 as a measurement; per-phase times per presample ratio, and of every method listed
in compare.methods -> results/timing.xlsx."""

import shutil

import torch
from dvclive import Live

from isample.experiment.config import ConfigError, Params, method_options
from isample.experiment.data import BatchTransform, load_prepared
from isample.experiment.models import build_model
from isample.experiment.profiling import fit, measure, summarize
from isample.report.records import flatten, params_frame, write_workbook
from isample.experiment.train import resolve_device
from stages.common import RESULTS_DIR, prepared_path, replace_directory, run_stage

TIMING_FILE = RESULTS_DIR / "timing.xlsx"
LIVE_DIR = RESULTS_DIR / "timing_live"


def main(params: Params) -> None:
    data = load_prepared(prepared_path(params))
    device = resolve_device(params.train.device)
    largest = round(max(params.timing.presamples) * params.batch_size)
    if largest > len(data.train_x):
        raise ConfigError(f"params.yaml: timing.presamples: B = {largest} exceeds the {len(data.train_x)} prepared images")
    torch.manual_seed(0)
    memory_format = torch.channels_last if params.train.channels_last else torch.contiguous_format
    model = build_model(params.model.name, len(data.classes)).to(device, memory_format=memory_format)
    iterations = measure(
        model,
        lambda m: torch.optim.SGD(m.parameters(), lr=params.train.lr * params.train.lr_scale,
                                  momentum=params.train.momentum, weight_decay=params.train.weight_decay),
        data.train_x.to(device),
        data.train_y.to(device),
        params.batch_size,
        params.timing.presamples,
        # Batch-mode scoring forwards chunks of b, whatever the chunk setting.
        forward_chunks=params.timing.forward_chunks if params.sampler.score_mode == "eval" else [params.batch_size],
        warmup=params.timing.warmup,
        iterations=params.timing.iterations,
        transform=BatchTransform(data.mean, data.std, params.data.augment, params.train.channels_last),
        score=params.sampler.score,
        importance_options={"score_mode": params.sampler.score_mode, "smoothing": params.sampler.smoothing,
                            "presample_bf16": params.sampler.presample_bf16},
        methods={name: method_options(params, name) for name in params.compare.methods},
        autocast_dtype=torch.bfloat16 if params.train.amp else None,
        generator=torch.Generator().manual_seed(0),
    )
    resets = int(iterations.groupby(["run", "presample", "forward_chunk"], dropna=False)["diverged_resets"].max().sum())
    if resets:
        print(f"note: the model diverged {resets} time(s) at lr {params.train.lr * params.train.lr_scale:g}; its weights "
              "were reset to the initial ones each time and timing went on (cost needs no finite model)")
    per_ratio = summarize(iterations, params.batch_size)
    fitted = fit(iterations, per_ratio)
    info = flatten(params.model_dump(include={"presample", "batch_size", "data", "model", "train", "sampler", "timing",
                                               "compare", "methods"}))
    info.update(device=str(device), torch=torch.__version__, threads=torch.get_num_threads())
    write_workbook(
        TIMING_FILE, {"iterations": iterations, "per_ratio": per_ratio, "fit": fitted, "params": params_frame(info)}
    )
    staging = RESULTS_DIR / ".timing_live.staging"
    shutil.rmtree(staging, ignore_errors=True)
    live = Live(dir=str(staging), save_dvc_exp=False, dvcyaml=False)
    for metric, value in zip(fitted["metric"], fitted["value"]):
        live.summary[metric] = float(value)
    live.end()
    replace_directory(staging, LIVE_DIR)
    columns = ["run", "presample", "measured_seconds", "a", "a_per_p", "k", "non_model_share", "prediction_error",
               "prediction_error_measured"]
    print(per_ratio[columns].to_string(index=False, float_format="%.3f"))
    print(fitted.to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    run_stage(main)
