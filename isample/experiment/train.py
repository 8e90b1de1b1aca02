"""One training run of one selection method for a training-time budget, recorded epoch by epoch.

The budget clock runs only while training: evaluation pauses it, so runs of different methods
with the same budget get the same training time, wall-clock or priced (`spec.clock`: the price of
each iteration's work, the same on any machine; both clocks are recorded). A checkpoint at epoch ends lets a killed run
resume with the same budget accounting; a run asked to stop (a scheduler's SIGTERM, through
`stop_requested`) finishes its iteration, saves a checkpoint mid-epoch and raises `Preempted`.
A run whose loss or scores stop being finite ends there, and its record says so (`status`), so a
diverged run is a result rather than a crash.
"""

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict

import torch
from tqdm import tqdm

from isample.distributed import SINGLE, Group
from isample.experiment.checkpoint import Checkpoints, Progress
from isample.experiment.clock import BudgetClock
from isample.experiment.data import PreparedData
from isample.experiment.epoch import EpochTotals
from isample.experiment.gpus import GPUS_VARIABLE
from isample.experiment.setup import EvalSet, TrainingSetup, build_setup
from isample.experiment.spec import RunSpec
from isample.experiment.streamed import StreamedData
from isample.report.records import COMPLETED, Run, epochs_frame
from isample.sampling import NonFiniteScores
from isample.scores import per_example_loss
from isample.step import autocast


def example_losses(model, examples: EvalSet, device, autocast_dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every example's cross-entropy and whether it was classified correctly, in eval mode, in order."""
    was_training = model.training
    model.eval()
    losses, correct = [], []
    with torch.inference_mode():
        for inputs, targets in examples:
            with autocast(device, autocast_dtype):
                logits = model(inputs)
            losses.append(per_example_loss(logits, targets).float())
            correct.append(logits.argmax(1) == targets)
    model.train(was_training)
    return torch.cat(losses), torch.cat(correct)


def evaluate(model, examples: EvalSet, device, autocast_dtype=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a test split's batches, in eval mode."""
    losses, correct = example_losses(model, examples, device, autocast_dtype)
    return losses.sum().item() / len(examples), correct.sum().item() / len(examples)


class Display:
    """Progress on long work: a tqdm bar of the budget on a terminal; one short line per epoch when the
    output goes to a file or a pipe (a log then holds a line an epoch, not a frame a second)."""

    def __init__(self, spec: RunSpec, elapsed: float, enabled: bool, terminal: bool | None = None):
        self.enabled, self.label = enabled, f"train {spec.title}"
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = None
        if enabled and terminal:
            self.bar = tqdm(
                total=round(spec.budget_seconds, 1),
                initial=round(min(elapsed, spec.budget_seconds), 1),
                unit="s",
                desc=self.label,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s budget "
                "[{elapsed}<{remaining}{postfix}]",
            )
        self.budget = spec.budget_seconds

    def advance(self, seconds: float) -> None:
        """Show `seconds` of training, never past the bar's total (tqdm warns when n exceeds it)."""
        if self.bar is not None:
            self.bar.n = round(min(seconds, self.bar.total), 1)
            self.bar.refresh()

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.advance(row["train_seconds"])
            self.bar.set_postfix(epoch=row["epoch"], test_acc=f"{row['test_accuracy']:.3f}")
        else:
            print(
                f"{self.label}: epoch {row['epoch']}, {row['train_seconds']:.0f}/{self.budget:.0f} s, "
                f"test accuracy {row['test_accuracy']:.4f}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Preempted(Exception):
    """The run stopped on request after an iteration; `epoch_in_progress` is what it had of its epoch."""

    def __init__(self, epoch_in_progress: dict | None = None):
        super().__init__("stopped on request")
        self.epoch_in_progress = epoch_in_progress


def train_epoch(
    spec: RunSpec, setup: TrainingSetup, clock: BudgetClock, display: Display, in_progress: dict | None = None
) -> tuple[EpochTotals, bool]:
    """At most one epoch's iterations within the budget; returns its totals and whether it diverged.
    `in_progress`: the epoch a stop interrupted, continued where it stopped.

    Every rank reads rank 0's clock (`clock.shared`), so all run the same iterations and stop alike."""
    if in_progress:
        totals = EpochTotals.from_state(in_progress["totals"], setup.device)
        done, length = in_progress["done"], in_progress["length"]
    else:  # the method says how long its epoch is
        totals, done, length = EpochTotals(setup.device), 0, setup.sampler.start_epoch()
    shown = clock.last_shared
    clock.start()
    for iteration in range(done, length):
        # The iteration a stop interrupted runs at the time the stop was decided: no new reading.
        now = clock.last_shared if in_progress and iteration == done else clock.shared()
        if now >= spec.budget_seconds:
            break
        if clock.stopping:
            _pause(clock, totals, setup)
            raise Preempted({"totals": totals.state_dict(), "done": iteration, "length": length})
        for group in setup.optimizer.param_groups:
            group["lr"] = spec.lr(now / spec.budget_seconds)
        try:
            iteration_done = setup.sampler.step()
        except NonFiniteScores:
            _pause(clock, totals, setup)
            return totals, True
        totals.add(iteration_done)
        clock.charge(iteration_done.work)
        if now - shown >= 1.0:
            display.advance(now)
            shown = now
    _pause(clock, totals, setup)
    return totals, totals.iterations > 0 and not totals.finite


def _pause(clock: BudgetClock, totals: EpochTotals, setup: TrainingSetup) -> None:
    """Training stops for now. On CUDA the device first finishes what was queued, which the budget
    counts, and the phase times of the iterations not read yet join the epoch's (drain: none on a CPU)."""
    totals.add_phases(setup.sampler.timer.drain())
    clock.pause()


def epoch_row(
    spec: RunSpec,
    setup: TrainingSetup,
    totals: EpochTotals,
    progress: Progress,
    clock: BudgetClock,
    group: Group,
) -> dict:
    """The epoch's record row: its train totals, and the test metrics rank 0 measures; every rank gets
    rank 0's row (the other ranks wait for it), so each node can write the record."""
    train = totals.row(group, spec.batch_size)
    eval_started = time.perf_counter()
    test_loss = test_accuracy = train_set_loss = train_set_accuracy = train_set_seconds = math.nan
    if group.is_main:
        test_loss, test_accuracy = evaluate(setup.model, setup.curve, setup.device, setup.autocast_dtype)
        train_set_started = time.perf_counter()
        train_set_loss, train_set_accuracy = evaluate(setup.model, setup.train_set, setup.device, setup.autocast_dtype)
        train_set_seconds = time.perf_counter() - train_set_started
    row = {
        "epoch": len(progress.rows) + 1,
        "total_iterations": progress.total_iterations + totals.iterations,
        "train_seconds": clock.elapsed,
        "wall_seconds": clock.wall,
        "priced_seconds": clock.priced_seconds,
        "lr": setup.optimizer.param_groups[0]["lr"],  # the epoch's last iteration's
        **train,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "train_set_loss": train_set_loss,
        "train_set_accuracy": train_set_accuracy,
        "eval_seconds": time.perf_counter() - eval_started,
        "train_set_eval_seconds": train_set_seconds,
    }
    return group.object_from(row)


def diverged_status(progress: Progress, totals: EpochTotals, optimizer: torch.optim.Optimizer) -> str:
    iteration, lr = progress.total_iterations + totals.iterations + 1, optimizer.param_groups[0]["lr"]
    return f"diverged at epoch {len(progress.rows) + 1}, iteration {iteration}, lr {lr:g}"


def _where(state: Progress) -> str:
    into = f" and {state.epoch_in_progress['done']} iteration(s) into the next" if state.epoch_in_progress else ""
    return f"epoch {len(state.rows)}{into}, {state.elapsed:.1f} s of training done"


def train_run(
    spec: RunSpec,
    data: PreparedData | StreamedData,
    *,
    checkpoint_path=None,
    clock: Callable[[], float] = time.perf_counter,
    progress: bool = True,
    on_epoch: Callable[[dict], None] = lambda row: None,
    group: Group = SINGLE,
    stop_requested: Callable[[], bool] = lambda: False,
    tables: dict[str, torch.Tensor] | None = None,
) -> Run:
    """Train `spec.method` for `spec.budget_seconds` of training time and return its record (tables: what
    it reads per example, part of the checkpoint's key). Under DDP every rank calls this; rank 0 keeps the
    clock and evaluates, every rank returns rank 0's record, each node's first process writes the checkpoint.
    Once `stop_requested()` on any rank, all stop after the same iteration, save it and raise `Preempted`."""
    budget_clock = BudgetClock(spec.budget_seconds, clock, group, stop_requested, spec.prices, spec.clock == "priced")
    with build_setup(spec, data, group, progress=budget_clock.progress, tables=tables) as setup:
        checkpoints = Checkpoints(checkpoint_path, spec.key(data.content_hash, tables), group)
        state = checkpoints.resume(setup)
        budget_clock.resume(state.wall, state.priced)
        if (state.rows or state.epoch_in_progress) and group.is_local_main:
            print(f"resumed {spec.method} {spec.budget} seed {spec.seed} from {checkpoint_path}: {_where(state)}")
        list(map(on_epoch, state.rows))
        last_checkpoint = state.elapsed
        display = Display(spec, state.elapsed, progress and group.is_local_main)
        try:
            while state.status is None:
                # Stop at the budget's end; the clock is rank 0's, so every rank stops at the same epoch.
                if budget_clock.shared() >= spec.budget_seconds:
                    state.status = COMPLETED
                    break
                if budget_clock.stopping:
                    raise Preempted()
                # Train one epoch, then evaluate and record it (an epoch that ran no iteration ends the run).
                totals, diverged = train_epoch(spec, setup, budget_clock, display, state.epoch_in_progress)
                state.epoch_in_progress = None
                state.status = diverged_status(state, totals, setup.optimizer) if diverged else None
                if totals.iterations:
                    row = epoch_row(spec, setup, totals, state, budget_clock, group)
                    state.rows.append(row)
                    state.elapsed, state.wall, state.priced = budget_clock.elapsed, *budget_clock.readings(current=True)
                    on_epoch(row)
                    display.epoch(row)
                elif not diverged:
                    state.status = COMPLETED
                # Checkpoint every checkpoint_seconds of training (rank 0's clock: alike on every rank).
                if state.status is None and budget_clock.last_shared - last_checkpoint >= spec.checkpoint_seconds:
                    checkpoints.save(setup, state)
                    last_checkpoint = budget_clock.last_shared
            checkpoints.save(setup, state)
        except Preempted as stop:
            # Every rank stopped at the reading that saw the request: that is the time trained.
            state.epoch_in_progress, state.elapsed = stop.epoch_in_progress, budget_clock.last_shared
            state.wall, state.priced = budget_clock.readings()  # the budget's own as last read
            checkpoints.save(setup, state)
            raise
        finally:
            display.close()
        return _record(spec, data, setup, state, group)


def _record(
    spec: RunSpec, data: PreparedData | StreamedData, setup: TrainingSetup, state: Progress, group: Group
) -> Run:
    if not state.rows:
        raise RuntimeError(
            "the budget ended before a single iteration ran" if state.status == COMPLETED else state.status
        )
    if state.status != COMPLETED and group.is_local_main:
        print(f"{spec.method} seed {spec.seed}: {state.status}; the record keeps its {len(state.rows)} epoch(s)")
    device = setup.device
    final_loss = final_accuracy = math.nan
    if group.is_main:  # the final accuracy on the whole test set (the curves use the per-epoch subset)
        final_loss, final_accuracy = evaluate(setup.model, setup.test, device, setup.autocast_dtype)
    final_loss, final_accuracy = group.from_main([final_loss, final_accuracy])
    info = {
        **dict(spec.shaping),
        "method": spec.method,
        "seed": spec.seed,
        "budget": spec.budget,
        "budget_seconds": spec.budget_seconds,
        "charged_seconds": spec.charged_seconds,
        "forced": spec.forced,
        "clock": spec.clock,
        **{f"price_{name}": value for name, value in (asdict(spec.prices) if spec.prices else {}).items()},
        "train_set_examples": len(setup.train_set),
        "status": state.status,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "gpus": os.environ.get(GPUS_VARIABLE) or "none",  # the GPUs the stage held, as the machine names them
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "data_source": data.source,
        "data_hash": data.content_hash,
        "train_examples": data.train_size,
        "test_examples": data.test_size,
        "curve_test_examples": len(data.curve_test),
        "final_test_loss": final_loss,
        "final_test_accuracy": final_accuracy,
        "processes": group.world_size,  # DDP ranks the run was spread over (1: one process)
        "nodes": group.nodes,  # machines they ran on, group.local_world_size processes each
        "processes_per_node": group.local_world_size,
        "backend": torch.distributed.get_backend() if group.world_size > 1 else "none",
    }
    return Run(spec.method, spec.seed, epochs_frame(state.rows), {k: str(v) for k, v in info.items()})
