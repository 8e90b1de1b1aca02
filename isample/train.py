"""One training run for a wall-clock budget, IS or uniform, recorded epoch by epoch.

The budget clock runs only while training: evaluation pauses it, so an IS run and a uniform run
with the same budget get the same training time. A checkpoint at epoch ends lets a killed run
resume with the same budget accounting.
"""

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from isample.config import ConfigError, Params
from isample.data import BatchTransform, PreparedData
from isample.models import build_model
from isample.records import flatten, params_frame, save_atomically
from isample.sampler import ImportanceSampler, UniformSampler
from isample.scores import per_example_loss
from isample.timing import PHASES, TRAIN_STEP_PHASES

RUN_KINDS = {True: "is", False: "un"}


class BudgetClock:
    """Training seconds against a budget; paused while evaluating."""

    def __init__(self, budget_seconds: float, elapsed: float = 0.0, clock: Callable[[], float] = time.perf_counter):
        self.budget = budget_seconds
        self._clock = clock
        self._elapsed = elapsed
        self._started: float | None = None

    def start(self) -> None:
        self._started = self._clock()

    def pause(self) -> None:
        if self._started is not None:
            self._elapsed += self._clock() - self._started
            self._started = None

    @property
    def elapsed(self) -> float:
        running = self._clock() - self._started if self._started is not None else 0.0
        return self._elapsed + running

    @property
    def exhausted(self) -> bool:
        return self.elapsed >= self.budget


def learning_rate(params: Params, fraction: float) -> float:
    """lr * lr_scale, times lr_gamma for every milestone fraction of the budget already passed."""
    train = params.train
    base = train.lr * train.lr_scale
    if train.lr_schedule == "constant":
        return base
    return base * train.lr_gamma ** sum(fraction >= m for m in train.lr_milestones)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("params.yaml: train.device = 'cuda': no CUDA device is available; use auto or cpu")
    return torch.device(name)


def evaluate(model, x, y, transform, batch_size, device, autocast_dtype=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a whole split, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            inputs = transform(x[start : start + batch_size].to(device, non_blocking=True))
            targets = y[start : start + batch_size].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_dtype is not None):
                logits = model(inputs)
            loss_sum += per_example_loss(logits, targets).sum()
            correct += (logits.argmax(1) == targets).sum()
    model.train(was_training)
    return loss_sum.item() / len(x), correct.item() / len(x)


def run_key(params: Params, data: PreparedData, importance: bool, seed: int) -> str:
    """What a checkpoint must match to be resumed: everything that shapes this run."""
    relevant = params.model_dump(exclude={"timing", "report"})
    relevant["train"].pop("checkpoint_every")
    if not importance:
        relevant.pop("presample")
        relevant.pop("sampler")
    text = json.dumps([relevant, data.content_hash, importance, seed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    epochs: pd.DataFrame
    summary: pd.DataFrame
    params: pd.DataFrame

    def sheets(self) -> dict[str, pd.DataFrame]:
        return {"epochs": self.epochs, "summary": self.summary, "params": self.params}


EPOCH_COLUMNS = [
    "epoch", "iterations", "total_iterations", "train_seconds", "lr",
    "train_loss", "train_accuracy", "train_loss_weighted", "test_loss", "test_accuracy",
    "is_iterations", "is_share", "tau_mean", "tau_th_mean", "t", "T", "k", "a",
    *[f"time_{phase}" for phase in PHASES], "eval_seconds",
]  # fmt: skip


class _EpochTotals:
    """Sums over an epoch's iterations; the losses stay on the device so nothing synchronises."""

    def __init__(self, device):
        self.loss = torch.zeros((), device=device)
        self.plain_loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.iterations = self.importance_iterations = 0
        self.tau = self.tau_threshold = 0.0
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.presample_seconds = self.importance_train_seconds = 0.0

    def add(self, it) -> None:
        self.loss += it.loss
        self.plain_loss += it.plain_loss
        self.correct += it.correct
        self.iterations += 1
        self.tau += it.tau
        self.tau_threshold += it.tau_threshold
        phases = self.phases
        for name, seconds in it.phases.items():
            phases[name] += seconds
        if it.used_importance:
            self.importance_iterations += 1
            self.presample_seconds += it.phases["presample_forward"] + it.phases["scoring"]
            self.importance_train_seconds += sum(it.phases[p] for p in TRAIN_STEP_PHASES)


def _row(totals: _EpochTotals, sampler, batch_size: int, importance: bool) -> dict:
    n = totals.iterations
    examples = n * batch_size
    t = totals.phases["train_forward"] / examples
    big_t = totals.phases["backward"] / examples
    if totals.importance_iterations:
        a = totals.presample_seconds / totals.importance_train_seconds
    else:
        a = sampler.a if importance else math.nan
    return {
        "iterations": n,
        "train_loss": totals.plain_loss.item() / n,
        "train_accuracy": totals.correct.item() / examples,
        "train_loss_weighted": totals.loss.item() / n,
        "is_iterations": totals.importance_iterations,
        "is_share": totals.importance_iterations / n,
        "tau_mean": totals.tau / n,
        "tau_th_mean": totals.tau_threshold / n,
        "t": t,
        "T": big_t,
        "k": big_t / t if t > 0 else math.nan,
        "a": a,
        **{f"time_{name}": seconds for name, seconds in totals.phases.items()},
    }


def _summary(epochs: pd.DataFrame) -> pd.DataFrame:
    final = epochs.iloc[-1]
    rows = []
    for metric, best in [
        ("test_accuracy", epochs["test_accuracy"].max()),
        ("test_loss", epochs["test_loss"].min()),
        ("train_accuracy", epochs["train_accuracy"].max()),
        ("train_loss", epochs["train_loss"].min()),
        ("train_loss_weighted", epochs["train_loss_weighted"].min()),
    ]:
        rows.append({"metric": metric, "final": final[metric], "best": best})
    iterations = epochs["iterations"].sum()
    rows += [
        {"metric": "epochs", "final": len(epochs), "best": math.nan},
        {"metric": "iterations", "final": iterations, "best": math.nan},
        {"metric": "train_seconds", "final": final["train_seconds"], "best": math.nan},
        {"metric": "is_share", "final": epochs["is_iterations"].sum() / iterations, "best": math.nan},
    ]
    return pd.DataFrame(rows)


def train_run(
    params: Params,
    data: PreparedData,
    *,
    importance: bool,
    seed: int,
    checkpoint_path: str | os.PathLike | None = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunRecord:
    """Train for params.train.budget seconds of training time and record every epoch."""
    device = resolve_device(params.train.device)
    autocast_dtype = torch.bfloat16 if params.train.amp else None
    memory_format = torch.channels_last if params.train.channels_last else torch.contiguous_format
    torch.manual_seed(seed)  # same seed, same initial weights for the IS and the uniform run
    model = build_model(params.model.name, len(data.classes)).to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=learning_rate(params, 0.0),
        momentum=params.train.momentum,
        weight_decay=params.train.weight_decay,
    )
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    test_x, test_y = data.test_x.to(device), data.test_y.to(device)
    augment_generator = torch.Generator().manual_seed(seed + 1)
    train_transform = BatchTransform(
        data.mean, data.std, params.data.augment, params.train.channels_last, augment_generator
    )
    test_transform = BatchTransform(data.mean, data.std, False, params.train.channels_last)
    common = dict(
        transform=train_transform,
        score=params.sampler.score,
        tau_momentum=params.sampler.tau_momentum,
        generator=torch.Generator().manual_seed(seed),
        timing=True,
        autocast_dtype=autocast_dtype,
    )
    b = params.batch_size
    if importance:
        sampler = ImportanceSampler(
            model, optimizer, train_x, train_y, b,
            presample=params.presample, tau_threshold=params.sampler.tau_th,
            forward_chunk=params.sampler.forward_chunk, **common,
        )  # fmt: skip
    else:
        sampler = UniformSampler(model, optimizer, train_x, train_y, b, **common)

    key = run_key(params, data, importance, seed)
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    rows: list[dict] = []
    elapsed = 0.0
    if checkpoint_path and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, weights_only=False, map_location=device)
        if state.get("key") == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            sampler.load_state_dict(state["sampler"])
            augment_generator.set_state(state["augment_generator"])
            torch.set_rng_state(state["torch_rng"])
            rows, elapsed = state["rows"], state["elapsed"]
            for row in rows:
                if on_epoch:
                    on_epoch(row)

    budget = params.train.budget_seconds
    budget_clock = BudgetClock(budget, elapsed, clock)
    iterations_per_epoch = max(1, len(train_x) // b)
    total_iterations = rows[-1]["total_iterations"] if rows else 0
    last_checkpoint = budget_clock.elapsed
    bar = tqdm(
        total=round(budget, 1),
        initial=round(min(elapsed, budget), 1),
        unit="s",
        desc=f"train {RUN_KINDS[importance]} seed {seed}",
        disable=not progress,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s budget [{elapsed}<{remaining}{postfix}]",
    )

    def checkpoint(done: bool) -> None:
        if checkpoint_path:
            save_atomically(
                {
                    "key": key,
                    "done": done,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "sampler": sampler.state_dict(),
                    "augment_generator": augment_generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "rows": rows,
                    "elapsed": budget_clock.elapsed,
                },
                checkpoint_path,
            )

    try:
        while not budget_clock.exhausted:
            totals = _EpochTotals(device)
            budget_clock.start()
            shown = budget_clock.elapsed
            for _ in range(iterations_per_epoch):
                now = budget_clock.elapsed
                if now >= budget:
                    break
                lr = learning_rate(params, now / budget)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                totals.add(sampler.step())
                if now - shown >= 1.0:
                    bar.update(round(min(now, budget) - bar.n, 1))
                    shown = now
            budget_clock.pause()
            if totals.iterations == 0:
                break
            total_iterations += totals.iterations
            eval_started = time.perf_counter()
            test_loss, test_accuracy = evaluate(
                model, test_x, test_y, test_transform, params.train.eval_batch_size, device, autocast_dtype
            )
            row = {
                "epoch": len(rows) + 1,
                "total_iterations": total_iterations,
                "train_seconds": budget_clock.elapsed,
                "lr": lr,
                **_row(totals, sampler, b, importance),
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
            }
            row["eval_seconds"] = time.perf_counter() - eval_started
            row = {column: row[column] for column in EPOCH_COLUMNS}
            rows.append(row)
            if on_epoch:
                on_epoch(row)
            bar.update(round(min(budget_clock.elapsed, budget) - bar.n, 1))
            bar.set_postfix(epoch=row["epoch"], test_acc=f"{test_accuracy:.3f}", is_share=f"{row['is_share']:.2f}")
            if budget_clock.elapsed - last_checkpoint >= params.train.checkpoint_seconds:
                checkpoint(done=False)
                last_checkpoint = budget_clock.elapsed
        checkpoint(done=True)
    finally:
        bar.close()

    if not rows:
        raise RuntimeError("the budget ended before a single iteration ran")
    epochs = pd.DataFrame(rows, columns=EPOCH_COLUMNS)
    info = flatten(params.model_dump())
    info.update(
        run="importance" if importance else "uniform",
        seed=seed,
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        data_source=data.source,
        data_hash=data.content_hash,
        train_examples=len(train_x),
        test_examples=len(data.test_x),
        budget_seconds=budget,
    )
    return RunRecord(epochs, _summary(epochs), params_frame(info))


def record_name(params: Params, importance: bool, seed: int) -> str:
    """The notebook's naming: <dataset>.<is|un>.<budget>.<tag>.xlsx, the tag being the seed."""
    budget = params.train.budget.replace(" ", "")
    return f"{params.data.name}.{RUN_KINDS[importance]}.{budget}.{seed}.xlsx"
