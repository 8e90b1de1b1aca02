import os
import signal
import subprocess
import sys

import pytest

from isample.experiment.gpus import NoFreeGpu, acquire_gpus

# A stage as a process: it takes GPUs from a fake list of devices, says which, and holds them.
HOLDER = """
import sys, time
from pathlib import Path
from isample.experiment.gpus import acquire_gpus
lease = acquire_gpus(int(sys.argv[2]), ["0", "1", "2"], wait_seconds=20, folder=Path(sys.argv[1]), poll_seconds=0.05)
print(",".join(lease.gpus), flush=True)
time.sleep(60)
"""


def start_holder(folder, count=1, visible='["0", "1", "2"]'):
    code = HOLDER.replace('["0", "1", "2"]', visible)
    return subprocess.Popen([sys.executable, "-c", code, str(folder), str(count)], stdout=subprocess.PIPE, text=True)


def test_stages_started_at_once_take_different_gpus_and_a_killed_holder_frees_its_own(tmp_path):
    holders = [start_holder(tmp_path), start_holder(tmp_path, count=2)]
    try:
        taken = [holder.stdout.readline().strip().split(",") for holder in holders]
        assert sorted(sum(taken, [])) == ["0", "1", "2"]  # every GPU held once, by one stage
        with pytest.raises(NoFreeGpu, match="held: GPU 0 by process"):
            acquire_gpus(1, ["0", "1", "2"], wait_seconds=0.3, folder=tmp_path, poll_seconds=0.05, say=lambda _: None)
        holders[1].send_signal(signal.SIGKILL)  # killed: no chance to let go itself
        holders[1].wait()
        lease = acquire_gpus(2, ["0", "1", "2"], wait_seconds=5, folder=tmp_path, poll_seconds=0.05)
        assert sorted(lease.gpus) == sorted(taken[1])
        lease.release()
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_a_stage_waits_saying_so_and_takes_the_gpu_once_freed(tmp_path):
    first = acquire_gpus(1, ["7"], wait_seconds=1, folder=tmp_path)
    waiter = start_holder(tmp_path, visible='["7"]')
    try:
        said = waiter.stdout.readline()
        assert said.startswith(f"waiting for 1 free GPU(s) of 1 (held: GPU 7 by process {os.getpid()})"), said
        first.release()
        assert waiter.stdout.readline().strip() == "7"  # the waiter has it now
        with pytest.raises(NoFreeGpu) as caught:
            acquire_gpus(1, ["7"], wait_seconds=0.2, folder=tmp_path, poll_seconds=0.05, say=lambda _: None)
        assert "\n" not in str(caught.value) and f"GPU 7 by process {waiter.pid}" in str(caught.value)
    finally:
        waiter.kill()
        waiter.wait()


def test_more_gpus_than_visible_is_refused_at_once(tmp_path):
    with pytest.raises(NoFreeGpu, match="2 GPUs wanted, 1 visible"):
        acquire_gpus(2, ["0"], wait_seconds=100, folder=tmp_path)
