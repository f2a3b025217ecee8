"""``negrl launch``: disjoint GPU leases between concurrent jobs, the scheduler's GPUs, the command line."""

import os
import subprocess
import sys

import pytest

from negrl.errors import NegrlError
from negrl.launch import GpuLease, stage_command


def test_leases_are_disjoint_all_or_nothing_and_released(tmp_path):
    first, second, third = (GpuLease(tmp_path, 2, 4) for _ in range(3))
    assert first.try_acquire() and sorted(first.held) == [0, 1]
    assert second.try_acquire() and sorted(second.held) == [2, 3]
    assert not third.try_acquire() and third.held == {}  # no partial hold while waiting
    first.release()
    assert third.acquire(wait_s=1.0, poll_s=0.01) == [0, 1]
    with pytest.raises(NegrlError, match="no 2 free GPUs of 4"):
        GpuLease(tmp_path, 2, 4).acquire(wait_s=0.05, poll_s=0.01)
    with pytest.raises(NegrlError, match="5 GPUs requested but this machine has 4"):
        GpuLease(tmp_path, 5, 4)


def test_stage_command_uses_torchrun_only_for_several_gpus():
    assert stage_command(["train", "--x"], 1, torchrun=True) == [sys.executable, "-m", "negrl.cli", "train", "--x"]
    assert stage_command(["train"], 4, torchrun=True)[:5] == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert stage_command(["rollout"], 2, torchrun=False) == [sys.executable, "-m", "negrl.cli", "rollout"]


def _launch_env(tmp_path, gpus, visible=None):
    """``negrl launch --gpus N -- env`` on a machine that claims 3 GPUs; the CUDA_VISIBLE_DEVICES it gave."""
    env = {**os.environ, "NEGRL_GPU_COUNT": "3", "NEGRL_GPU_LOCK_DIR": str(tmp_path)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    result = subprocess.run([sys.executable, "-m", "negrl.cli", "launch", "--gpus", str(gpus), "--wait", "5",
                             "--", "env"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return next(line.split("=", 1)[1] for line in result.stdout.splitlines()
                if line.startswith("CUDA_VISIBLE_DEVICES="))


def test_a_job_gets_the_free_gpus_or_the_schedulers(tmp_path):
    holder = GpuLease(tmp_path, 2, 3)  # another job holds GPUs 0 and 1
    assert holder.try_acquire()
    assert _launch_env(tmp_path, 1) == "2"
    holder.release()
    assert _launch_env(tmp_path, 2) == "0,1"
    assert _launch_env(tmp_path, 1, visible="5,6") == "5"  # Slurm / Kubernetes chose: no locking
    assert _launch_env(tmp_path, 0) == ""  # CPU job


def test_an_unusable_lock_folder_is_named(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(NegrlError, match="cannot open the GPU lock file .*not-a-folder.*NEGRL_GPU_LOCK_DIR"):
        GpuLease(blocker / "locks", 1, 2).try_acquire()
