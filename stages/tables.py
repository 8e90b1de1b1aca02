"""tables@<method>: the per-example tables a method reads, before it trains -> results/tables/<method>/.
rho_loss: the irreducible losses of its two IL models (isample.experiment.irreducible), their cost in
seconds (charged to its budget in the report's "IL charged" rows) and each model's held-out accuracy,
in summary.json. A method that reads no table gets a summary saying so, at once. A killed stage
resumes: a finished IL model comes back from its checkpoint without training again."""

import argparse
import json
import shutil

import torch

from isample.experiment import launch
from isample.experiment.config import Params
from isample.experiment.irreducible import (
    HalfModel,
    IrreducibleDiverged,
    IrreducibleSpec,
    halves,
    irreducible_losses,
    train_half,
)
from isample.experiment.prepared import load_prepared
from isample.experiment.runs import params_values, stage_params
from isample.experiment.tables import save_tables
from isample.files import write_atomically
from isample.methods.catalog import CATALOG
from stages.common import (
    CHECKPOINT_DIR,
    TABLES_DIR,
    TABLES_FILE,
    StageError,
    prepared_path,
    replace_directory,
    run_stage,
)


def _half_model(spec: IrreducibleSpec, data, trained, scored, half: int, checkpoint) -> HalfModel:
    """One IL model, from its checkpoint when one of the same key finished (a killed stage's rerun)."""
    if checkpoint.is_file():
        return HalfModel(**torch.load(checkpoint, weights_only=True))
    try:
        model = train_half(spec, data, trained, scored, half)
    except IrreducibleDiverged as error:
        raise StageError(str(error)) from None
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(checkpoint, lambda temporary: torch.save(vars(model), temporary))
    return model


def main(params: Params, method: str) -> None:
    names = CATALOG[method].tables
    staging = TABLES_DIR / f".{method}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    summary = {"method": method, "tables": list(names)}
    if names:  # rho_loss: ("irreducible_loss",)
        gpus = launch.hold_gpus(params, count=1)  # noqa: F841 (a GPU no training stage holds, to the end)
        data = load_prepared(prepared_path(params))
        spec = IrreducibleSpec.from_params(params)
        key = spec.key(data.content_hash)
        first, second = halves(data.train_y)
        models = [  # each trained on one half, scoring the other
            _half_model(spec, data, trained, scored, half, CHECKPOINT_DIR / "tables" / method / f"{key}.half{half}.pt")
            for half, (trained, scored) in enumerate(((first, second), (second, first)))
        ]
        seconds = sum(model.seconds for model in models)
        save_tables(
            staging / TABLES_FILE, {names[0]: irreducible_losses(models, data.train_size)}, data.content_hash, seconds
        )
        summary |= {
            "seconds": seconds,
            "model_seconds": [model.seconds for model in models],
            "holdout_accuracy": [model.holdout_accuracy for model in models],
            "holdout_loss": [model.holdout_loss for model in models],
            "best_epoch": [model.best_epoch for model in models],
            "examples_per_model": [len(model.scored) for model in models],
            "data_hash": data.content_hash,
            "params": params_values(params, stage_params("tables")),
        }
        accuracy = ", ".join(f"{value:.4f}" for value in summary["holdout_accuracy"])
        print(f"{method}: IL models trained in {seconds:.1f} s; held-out accuracy {accuracy}")
    else:
        print(f"{method} reads no per-example table")
    (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    replace_directory(staging, TABLES_DIR / method)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=sorted(CATALOG), required=True)
    method = parser.parse_args().method
    run_stage(lambda params: main(params, method))
