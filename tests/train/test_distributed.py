"""Data parallelism on CPU: 2 gloo processes launched by torchrun train exactly like 1 process on the same
global batch (DDP and FSDP2), and the pieces the equivalence rests on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from negrl.data.arith import generate_split
from negrl.data.cli import write_problems
from negrl.train.distributed import DistContext, share, share_bounds
from negrl.train.update import plan_micro_batches

WORKER = Path(__file__).with_name("dist_worker.py")
RAW = {"train": {"steps": 2, "prompts_per_step": 6, "n": 3, "mini_batches": 2, "micro_batch_size": 4,
                 "lr": 1.0e-3, "checkpoint_every": 0, "logging": {"tensorboard": False}},
       "rollout": {"max_tokens": 12}, "verify": {"workers": 1}, "methods": ["reinforce_pp", "grpo"]}


def test_shares_are_contiguous_whole_items():
    assert share_bounds(7, 2) == [0, 4, 7]
    assert share(list("abcdefg"), DistContext(rank=1, world_size=2)) == list("efg")
    assert share([1], DistContext(rank=1, world_size=2)) == []


def test_micro_batches_are_length_sorted_and_bounded():
    lengths = [5, 30, 12, 30, 7, 1]
    plan = plan_micro_batches(lengths, max_rows=3, max_tokens=64)
    assert sorted(i for micro in plan for i in micro) == list(range(6))
    assert all(len(m) <= 3 and max(lengths[i] for i in m) * len(m) <= 64 for m in plan[1:])
    assert plan[0] == [1, 3]  # the longest rows first; a single over-budget row still gets a micro-batch
    assert plan_micro_batches([100], max_rows=4, max_tokens=10) == [[0]]


def _run(tmp_path: Path, tiny_model_dir: Path, name: str, method: str, procs: int, strategy: str,
         device: str = "cpu") -> Path:
    config_path, data_path = tmp_path / f"{name}.yaml", tmp_path / "train.parquet"
    # fp32 precision: no bf16 autocast or bf16 FSDP parameters on GPUs, so the float64 model stays float64
    train = {**RAW["train"], "distributed": strategy, "precision": "fp32"}
    config_path.write_text(yaml.safe_dump({**RAW, "train": train}))
    if not data_path.exists():
        write_problems(generate_split("train", 10, seed=0), data_path)
    out = tmp_path / name
    args = [str(WORKER), str(config_path), str(data_path), str(tiny_model_dir), str(out), method]
    launcher = [sys.executable] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd(),
           "NEGRL_TEST_DEVICE": device}
    result = subprocess.run(launcher + args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return out


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("method,strategy", [("reinforce_pp", "ddp"), ("grpo", "fsdp")])
def test_two_gloo_processes_match_one(tiny_model_dir, tmp_path, method, strategy):
    """Same global batch -> same weights (float64, 1e-9) and metrics after 2 rollout steps x 2 mini-batches.
    reinforce_pp whitens advantages over the global batch, so this also checks that prepare sees all ranks."""
    _assert_two_processes_match_one(tiny_model_dir, tmp_path, method, strategy, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
@pytest.mark.parametrize("method,strategy", [("reinforce_pp", "ddp"), ("grpo", "fsdp")])
def test_two_nccl_gpus_match_one_gpu(tiny_model_dir, tmp_path, method, strategy):
    """The same equivalence over NCCL: 2 GPUs (one rank each) against 1 GPU."""
    _assert_two_processes_match_one(tiny_model_dir, tmp_path, method, strategy, "cuda")


def _assert_two_processes_match_one(tiny_model_dir, tmp_path, method, strategy, device):
    single = _run(tmp_path, tiny_model_dir, "single", method, 1, strategy, device)
    double = _run(tmp_path, tiny_model_dir, "double", method, 2, strategy, device)
    a = load_file(str(single / "model" / "model.safetensors"))
    b = load_file(str(double / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    assert any(not torch.allclose(a[k].float(), base[k].float()) for k in a), "training changed no weight"
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-9, rtol=0, msg=f"{key} differs")
    one, two = _metrics(single), _metrics(double)
    assert [r["step/optimizer"] for r in two] == [2, 4]
    # the half-batch gradient cosine (grad_noise_check_every: 1): global halves, equal to 1 process's too
    assert all("actor/grad_half_cosine" in r for r in one + two)
    for r1, r2 in zip(one, two):
        assert {k for k in r1 if not k.startswith("time/")} == {k for k in r2 if not k.startswith("time/")}
        for key in r1:  # timings and GPU memory (perf/max_memory_gib) depend on the process count
            if not key.startswith(("time/", "perf/")):
                assert r2[key] == pytest.approx(r1[key], abs=1e-9, rel=1e-9), key
