"""What params.yaml specifies beyond its own checks: the keys each stage reads (dvc.yaml lists the
same, a test checks) and one `RunSpec` per training run."""

from isample.experiment.config import Params
from isample.experiment.method_params import method_options
from isample.experiment.spec import LrSchedule, RunSpec
from isample.experiment.train_config import parse_duration
from isample.methods.catalog import CATALOG, entry
from isample.names import IMPORTANCE, UNIFORM
from isample.pricing import Prices

# Keys that decide which runs happen, how they are kept and how fast data is read, not what a run computes.
TRAIN_OPERATIONAL = (
    "data.workers",
    "train.budget",
    "train.budgets",
    "train.seeds",
    "train.checkpoint_every",
    "train.gpu_wait",
    "train.eval_batch_size",
    "train.rdzv_endpoint",
    "train.rdzv_id",
    "compare.forced_is",
)
TABLES_READ = (
    "batch_size",
    "data.name",
    "data.augment",
    "data.workers",
    "train.device",
    "train.eval_batch_size",
    "train.amp",
    "irreducible",
)
_TRAINING = ("batch_size", "data.name", "data.augment", "data.workers", "data.train_eval_subset", "model", "train")
_TIMED = (
    "batch_size",
    "data.name",
    "data.augment",
    "data.workers",
    "model",
    "train.device",
    "train.gpu_wait",
    "train.amp",
    "train.channels_last",
    "train.lr",
    "train.lr_scale",
    "train.momentum",
    "train.weight_decay",
    "timing",
)


def method_keys(name: str) -> list[str]:
    """The params.yaml keys holding a method's options; a section whose every key it reads counts whole."""
    method = entry(name)
    if method.section:
        return [method.section]
    claimed = {key for other in CATALOG.values() for key in other.option_keys().values() if key.startswith("sampler.")}
    keys = list(method.option_keys().values())
    if claimed <= set(keys):
        keys = [key for key in keys if not key.startswith("sampler.")] + ["sampler"]
    return keys


def stage_params(stage: str, method: str | None = None) -> list[str]:
    """The params.yaml keys a stage reads: dvc.yaml's `params:` of it (tests/test_dvc_deps.py checks)."""
    if stage == "train":  # IS's stage also trains the forced-on arm when compare.forced_is says so
        return [*_TRAINING, *method_keys(method), *(["compare.forced_is"] if method == IMPORTANCE else [])]
    if stage == "timing":  # uniform and upper_bound at every ratio of timing.presamples (not at `presample`)
        return [*_TIMED, *(key for key in method_keys(IMPORTANCE) if key != "presample")]
    if stage == "timing_peer":  # uniform beside one other method
        return [*_TIMED, *method_keys(UNIFORM), *method_keys(method)]
    if stage == "tables":  # the per-example tables one method reads (rho_loss: the IL models' losses)
        return [*TABLES_READ]
    raise ValueError(f"unknown stage {stage!r}")


def _flat(nested: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_values(params: Params, keys: list[str]) -> dict:
    """The values under `keys` (a section stands for all its keys), flat: "train.lr" -> 0.1."""
    return {
        key: value
        for key, value in _flat(params.model_dump()).items()
        if any(key == wanted or key.startswith(wanted + ".") for wanted in keys)
    }


def shaping_values(params: Params, method: str) -> dict:
    """Every params.yaml value that shapes a run of `method` (its run key and its record's parameters):
    what its training stage reads, less what only picks or keeps runs (TRAIN_OPERATIONAL)."""
    values = params_values(params, stage_params("train", method))
    return {key: value for key, value in values.items() if key not in TRAIN_OPERATIONAL}


def run_prices(params: Params, method: str) -> Prices:
    """The priced clock's prices for a run of `method`: train.prices, with IS's score price set so that its
    presample of B costs train.prices.presample_a training steps when that is stated."""
    stated = params.train.prices
    prices = Prices(stated.forward, stated.backward, stated.iteration, stated.score)
    if method != IMPORTANCE or stated.presample_a == "from_prices":
        return prices
    presample = round(method_options(params, IMPORTANCE).presample * params.batch_size)
    return prices.with_presample_share(float(stated.presample_a), presample, params.batch_size)


def run_spec(params: Params, method: str, budget: str, seed: int) -> RunSpec:
    """The specification of one run of `method` for one budget and seed."""
    train = params.train
    constant = train.lr_schedule == "constant"
    shaping = shaping_values(params, method)
    return RunSpec(
        method=method,
        options=method_options(params, method),
        seed=seed,
        budget=budget,
        budget_seconds=parse_duration(budget),
        lr=LrSchedule(train.lr * train.lr_scale, train.lr_gamma, () if constant else tuple(train.lr_milestones)),
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        batch_size=params.batch_size,
        model=params.model.name,
        norm=params.model.norm,
        augment=params.data.augment,
        device=train.device,
        amp=train.amp,
        channels_last=train.channels_last,
        sync_bn=train.sync_bn,
        eval_batch_size=train.eval_batch_size,
        checkpoint_seconds=train.checkpoint_seconds,
        dataset=params.data.name,
        workers=params.data.workers,
        record_tag=entry(method).record_tag,
        shaping=tuple(sorted(shaping.items(), key=lambda item: item[0])),
        clock=train.clock,
        prices=run_prices(params, method),
        train_set_examples=params.data.train_eval_subset,
    )


def run_specs(params: Params, method: str) -> list[RunSpec]:
    """One RunSpec per (budget, seed) pair, budgets shortest first."""
    return [
        run_spec(params, method, budget, seed) for budget in params.train.budget_list for seed in params.train.seeds
    ]


def forced_specs(params: Params, method: str) -> list[RunSpec]:
    """IS forced on beside each of its runs under the rule (compare.forced_is); none for another method."""
    if method != IMPORTANCE or not params.compare.forced_is:
        return []
    return [spec.forced_on() for spec in run_specs(params, method)]
