"""One training run of one selection method for a wall-clock budget, recorded epoch by epoch.

The budget clock runs only while training: evaluation pauses it, so runs of different methods
with the same budget get the same training time. A checkpoint at epoch ends lets a killed run
resume with the same budget accounting. A run whose loss or scores stop being finite ends there,
and its record says so (`status`), so a diverged run is a result rather than a crash.
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

from isample.experiment.config import ConfigError, Params, method_options
from isample.experiment.data import BatchTransform, PreparedData
from isample.experiment.models import build_model
from isample.distributed import SINGLE, Group
from isample.experiment.torch_files import load_checkpoint, save_atomically
from isample.methods import METHODS
from isample.report.records import flatten, params_frame
from isample.sampler import Sampler
from isample.sampling import NonFiniteScores
from isample.scores import per_example_loss
from isample.step import autocast
from isample.timing import PHASES, TRAIN_STEP_PHASES

COMPLETED = "completed"


class BudgetClock:
    """Training seconds against a budget; paused while evaluating."""

    def __init__(self, budget_seconds: float, elapsed: float = 0.0, clock: Callable[[], float] = time.perf_counter,
                 group: Group = SINGLE):  # fmt: skip
        self.budget = budget_seconds
        self._clock = clock
        self._elapsed = elapsed
        self._started: float | None = None
        self.group = group
        self.last_shared = elapsed

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
        return self.shared() >= self.budget

    def shared(self) -> float:
        """Rank 0's elapsed seconds, on every rank (a collective: all ranks call it at the same points)."""
        self.last_shared = self.group.from_main([self.elapsed])[0]
        return self.last_shared


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
            with autocast(device, autocast_dtype):
                logits = model(inputs)
            loss_sum += per_example_loss(logits, targets).sum()
            correct += (logits.argmax(1) == targets).sum()
    model.train(was_training)
    return loss_sum.item() / len(x), correct.item() / len(x)


def method_params(params: Params, method: str) -> dict:
    """Everything that shapes a run of `method`: the shared params plus only the keys it reads."""
    relevant = params.model_dump(exclude={"timing", "report", "presample", "sampler", "methods"})
    relevant["train"].pop("checkpoint_every")
    everything = flatten(params.model_dump())
    for key in METHODS[method].keys():
        relevant.update({name: value for name, value in everything.items() if name == key or name.startswith(key + ".")})
    return relevant


def run_key(params: Params, data: PreparedData, method: str, seed: int) -> str:
    """What a checkpoint must match to be resumed."""
    text = json.dumps([method_params(params, method), data.content_hash, method, seed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    epochs: pd.DataFrame
    summary: pd.DataFrame
    params: pd.DataFrame

    def sheets(self) -> dict[str, pd.DataFrame]:
        return {"epochs": self.epochs, "summary": self.summary, "params": self.params}

    @property
    def status(self) -> str:
        return str(self.summary.set_index("metric").loc["status", "final"])


EPOCH_COLUMNS = [
    "epoch", "iterations", "total_iterations", "train_seconds", "lr",
    "train_loss", "train_accuracy", "train_loss_weighted", "train_accuracy_weighted", "test_loss", "test_accuracy",
    "is_iterations", "is_share", "tau_mean", "tau_th_mean", "t", "T", "k", "a",
    *[f"time_{phase}" for phase in PHASES], "eval_seconds",
]  # fmt: skip


class _EpochTotals:
    """Sums over an epoch's iterations; the losses stay on the device so nothing synchronises."""

    def __init__(self, device):
        self.loss = torch.zeros((), device=device)
        self.plain_loss = torch.zeros((), device=device)
        self.accuracy_weighted = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.iterations = self.importance_iterations = 0
        self.tau = self.tau_threshold = 0.0
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.presample_seconds = self.importance_train_seconds = 0.0
        self.lr = math.nan  # the lr of the epoch's last iteration

    def add(self, it) -> None:
        self.loss += it.loss
        self.plain_loss += it.plain_loss
        self.accuracy_weighted += it.accuracy_weighted
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

    def combine(self, group: Group) -> None:
        """Train metrics over every rank's examples (under DDP each rank trained its own share)."""
        loss, plain_loss, accuracy_weighted = group.mean(
            [self.loss.item(), self.plain_loss.item(), self.accuracy_weighted.item()])
        self.loss, self.plain_loss = torch.tensor(loss), torch.tensor(plain_loss)
        self.accuracy_weighted = torch.tensor(accuracy_weighted)
        self.correct = torch.tensor(group.total([float(self.correct.item())])[0])

    def row(self, method_a: float, batch_size: int, rank_batch_size: int | None = None) -> dict:
        """batch_size: the global batch b; rank_batch_size: this rank's share (t and T are per example it ran)."""
        n = self.iterations
        examples = n * batch_size
        rank_examples = n * (rank_batch_size or batch_size)
        t = self.phases["train_forward"] / rank_examples
        big_t = self.phases["backward"] / rank_examples
        a = self.presample_seconds / self.importance_train_seconds if self.importance_iterations else method_a
        return {
            "iterations": n,
            "train_loss": self.plain_loss.item() / n,
            "train_accuracy": self.correct.item() / examples,
            "train_loss_weighted": self.loss.item() / n,
            "train_accuracy_weighted": self.accuracy_weighted.item() / n,
            "is_iterations": self.importance_iterations,
            "is_share": self.importance_iterations / n,
            "tau_mean": self.tau / n,
            "tau_th_mean": self.tau_threshold / n,
            "t": t,
            "T": big_t,
            "k": big_t / t if t > 0 else math.nan,
            "a": a,
            **{f"time_{name}": seconds for name, seconds in self.phases.items()},
        }


def _summary(epochs: pd.DataFrame, status: str) -> pd.DataFrame:
    final = epochs.iloc[-1]
    rows = []
    for metric, best in [
        ("test_accuracy", epochs["test_accuracy"].max()),
        ("test_loss", epochs["test_loss"].min()),
        ("train_accuracy", epochs["train_accuracy"].max()),
        ("train_accuracy_weighted", epochs["train_accuracy_weighted"].max()),
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
        {"metric": "status", "final": status, "best": math.nan},
    ]
    return pd.DataFrame(rows)


# -- the run, in the order it happens --------------------------------------------------------------


@dataclass
class _Setup:
    device: torch.device
    autocast_dtype: torch.dtype | None
    model: torch.nn.Module  # the model itself (evaluated, checkpointed); the sampler trains it, DDP-wrapped under DDP
    optimizer: torch.optim.Optimizer
    sampler: Sampler
    augment_generator: torch.Generator
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_transform: BatchTransform


RANK_SEED_STRIDE = 1_000_003  # rank r draws from seed + r * stride (rank 0: the single-process seed)
SHARED_SEED_OFFSET = 104_729  # the draws every rank makes alike (DDP only)


def _set_up(params: Params, data: PreparedData, method: str, seed: int, group: Group = SINGLE) -> _Setup:
    """Model (same initial weights for every method of a seed), optimizer and the method's sampler.

    Under DDP (group of N) each rank trains b / N examples per iteration with its own generators,
    through the model wrapped in DistributedDataParallel (gradients averaged over ranks)."""
    device = resolve_device(params.train.device)
    if device.type == "cuda" and group.world_size > 1:
        device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU (set by the launcher)
    autocast_dtype = torch.bfloat16 if params.train.amp else None
    memory_format = torch.channels_last if params.train.channels_last else torch.contiguous_format
    torch.manual_seed(seed)
    model = build_model(params.model.name, len(data.classes))
    if params.train.sync_bn and group.world_size > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=memory_format)
    trained = model
    if group.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=learning_rate(params, 0.0),
        momentum=params.train.momentum,
        weight_decay=params.train.weight_decay,
    )
    rank_seed = seed + RANK_SEED_STRIDE * group.rank
    augment_generator = torch.Generator().manual_seed(rank_seed + 1)
    train_transform = BatchTransform(
        data.mean, data.std, params.data.augment, params.train.channels_last, augment_generator
    )
    shared = torch.Generator().manual_seed(seed + SHARED_SEED_OFFSET) if group.world_size > 1 else None
    sampler = Sampler(
        method, trained, optimizer, data.train_x.to(device), data.train_y.to(device),
        params.batch_size // group.world_size, options=method_options(params, method), transform=train_transform,
        generator=torch.Generator().manual_seed(rank_seed), timing=True, autocast_dtype=autocast_dtype,
        group=group, shared_generator=shared,
    )  # fmt: skip
    test_transform = BatchTransform(data.mean, data.std, False, params.train.channels_last)
    return _Setup(device, autocast_dtype, model, optimizer, sampler, augment_generator,
                  data.test_x.to(device), data.test_y.to(device), test_transform)  # fmt: skip


def rank_checkpoint(path: Path, rank: int) -> Path:
    """Rank 0's checkpoint is `path` (the whole state); rank r > 0 keeps its own draws beside it."""
    return path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def _resume(setup: _Setup, checkpoint_path: Path | None, key: str, seed: int, group: Group = SINGLE
            ) -> tuple[list[dict], float]:  # fmt: skip
    """Epoch rows and training seconds of a matching checkpoint, its state loaded; else nothing.

    Every rank loads the model, optimizer and clock from rank 0's file, so the replicas start alike,
    and its own sampler and augmentation draws from its own file."""
    state = load_checkpoint(checkpoint_path, setup.device) if checkpoint_path else None
    if state is None or state.get("key") != key:
        return [], 0.0
    setup.model.load_state_dict(state["model"])
    setup.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    own = state if group.is_main else load_checkpoint(rank_checkpoint(checkpoint_path, group.rank), setup.device)
    if own is not None and own.get("key") == key:
        setup.sampler.load_state_dict(own["sampler"])
        setup.augment_generator.set_state(own["augment_generator"])
    rows, elapsed = state["rows"], state["elapsed"]
    if group.is_main:
        print(f"resumed seed {seed} from {checkpoint_path}: epoch {len(rows)}, {elapsed:.1f} s of training done")
    return rows, elapsed


def _progress_bar(method: str, seed: int, budget: float, elapsed: float, enabled: bool) -> tqdm:
    return tqdm(
        total=round(budget, 1),
        initial=round(min(elapsed, budget), 1),
        unit="s",
        desc=f"train {method} seed {seed}",
        disable=not enabled,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s budget [{elapsed}<{remaining}{postfix}]",
    )


def _advance(bar: tqdm, seconds: float) -> None:
    """Show `seconds` of training, never past the bar's total (tqdm warns when n exceeds it)."""
    bar.n = round(min(seconds, bar.total), 1)
    bar.refresh()


def _train_epoch(params: Params, setup: _Setup, budget_clock: BudgetClock, bar: tqdm) -> tuple[_EpochTotals, str]:
    """At most one epoch's iterations within the budget; returns its totals and what stopped it.

    Every rank reads rank 0's clock (`budget_clock.shared`), so all run the same iterations."""
    budget = budget_clock.budget
    totals = _EpochTotals(setup.device)
    budget_clock.start()
    lr = learning_rate(params, budget_clock.shared() / budget)
    shown = budget_clock.last_shared
    stop = ""
    for _ in range(setup.sampler.start_epoch()):  # the method says how long its epoch is
        now = budget_clock.shared()
        if now >= budget:
            break
        lr = learning_rate(params, now / budget)
        for group in setup.optimizer.param_groups:
            group["lr"] = lr
        try:
            totals.add(setup.sampler.step())
        except NonFiniteScores:
            stop = "diverged"
            break
        if now - shown >= 1.0:
            _advance(bar, now)
            shown = now
    budget_clock.pause()
    if totals.iterations:
        totals.combine(setup.sampler.context.group)
    if not stop and totals.iterations and not torch.isfinite(totals.loss):
        stop = "diverged"
    totals.lr = lr
    return totals, stop


def train_run(
    params: Params,
    data: PreparedData,
    *,
    method: str,
    seed: int,
    checkpoint_path: str | os.PathLike | None = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    group: Group = SINGLE,
) -> RunRecord:
    """Train with selection method `method` for the run's budget (params.train.run_budget) of training time.

    Under DDP (`group` of N processes, from `isample.distributed.current_group()`) every rank calls
    this; rank 0 keeps the clock, evaluates and returns the record that counts (other ranks' records
    have no test metrics), and each rank checkpoints its own state (rank r > 0 beside the path)."""
    setup = _set_up(params, data, method, seed, group)
    key = run_key(params, data, method, seed)
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    rows, elapsed = _resume(setup, checkpoint_path, key, seed, group)
    status = rows[-1].get("status", COMPLETED) if rows else COMPLETED
    for row in rows:
        if on_epoch:
            on_epoch(row)

    budget_clock = BudgetClock(params.train.budget_seconds, elapsed, clock, group)
    setup.sampler.context.progress = lambda: budget_clock.last_shared / budget_clock.budget  # alike on every rank
    total_iterations = rows[-1]["total_iterations"] if rows else 0
    last_checkpoint = budget_clock.elapsed
    bar = _progress_bar(method, seed, budget_clock.budget, elapsed, progress and group.is_main)

    def checkpoint(done: bool) -> None:
        if not checkpoint_path:
            return
        state = {"key": key, "sampler": setup.sampler.state_dict(), "augment_generator": setup.augment_generator.get_state()}
        if group.is_main:
            state.update(done=done, model=setup.model.state_dict(), optimizer=setup.optimizer.state_dict(),
                         torch_rng=torch.get_rng_state(), rows=rows, elapsed=budget_clock.elapsed)  # fmt: skip
        save_atomically(state, rank_checkpoint(checkpoint_path, group.rank))

    try:
        while status == COMPLETED and not budget_clock.exhausted:
            totals, stop = _train_epoch(params, setup, budget_clock, bar)
            if totals.iterations == 0 and not stop:
                break
            total_iterations += totals.iterations
            if stop == "diverged":
                status = f"diverged at epoch {len(rows) + 1}, iteration {total_iterations + 1}, lr {totals.lr:g}"
                if totals.iterations == 0:
                    break
            eval_started = time.perf_counter()
            test_loss = test_accuracy = math.nan
            if group.is_main:  # the other ranks wait for it at their next collective
                test_loss, test_accuracy = evaluate(
                    setup.model, setup.test_x, setup.test_y, setup.test_transform,
                    params.train.eval_batch_size, setup.device, setup.autocast_dtype,
                )  # fmt: skip
            row = {
                "epoch": len(rows) + 1,
                "total_iterations": total_iterations,
                "train_seconds": budget_clock.elapsed,
                "lr": totals.lr,
                **totals.row(setup.sampler.method.a, params.batch_size, params.batch_size // group.world_size),
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "eval_seconds": time.perf_counter() - eval_started,
            }
            rows.append({column: row[column] for column in EPOCH_COLUMNS})
            if on_epoch:
                on_epoch(rows[-1])
            _advance(bar, budget_clock.elapsed)
            bar.set_postfix(epoch=row["epoch"], test_acc=f"{test_accuracy:.3f}", is_share=f"{row['is_share']:.2f}")
            if budget_clock.last_shared - last_checkpoint >= params.train.checkpoint_seconds:  # alike on every rank
                checkpoint(done=False)
                last_checkpoint = budget_clock.last_shared
        if status != COMPLETED and rows:
            rows[-1]["status"] = status  # so a resumed diverged run stays diverged
        checkpoint(done=True)
    finally:
        bar.close()

    if status != COMPLETED and group.is_main:
        print(f"{method} seed {seed}: {status}; the record keeps its {len(rows)} epoch(s)")
    if not rows:
        raise RuntimeError("the budget ended before a single iteration ran" if status == COMPLETED else status)
    return _record(params, data, method, seed, setup.device, rows, status, group)


def _record(params, data, method, seed, device, rows, status, group: Group = SINGLE) -> RunRecord:
    epochs = pd.DataFrame(rows, columns=EPOCH_COLUMNS)
    info = flatten(method_params(params, method))
    info.update(
        method=method,
        seed=seed,
        status=status,
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        data_source=data.source,
        data_hash=data.content_hash,
        train_examples=len(data.train_x),
        test_examples=len(data.test_x),
        budget_seconds=params.train.budget_seconds,
        processes=group.world_size,  # DDP ranks the run was spread over (1: one process)
        backend=torch.distributed.get_backend() if group.world_size > 1 else "none",
    )
    return RunRecord(epochs, _summary(epochs, status), params_frame(info))


def record_name(params: Params, method: str, seed: int) -> str:
    """The notebook's naming, <dataset>.<tag>.<budget>.<seed>.xlsx; the tag is `is` / `un` for the
    notebook's two runs and the method's name for the others."""
    budget = params.train.run_budget.replace(" ", "")
    return f"{params.data.name}.{METHODS[method].tag()}.{budget}.{seed}.xlsx"
