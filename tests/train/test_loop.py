"""The online RL loop on the tiny toy model: metrics contract, determinism, and kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from negrl.config import from_dict
from negrl.data.arith import generate_split
from negrl.data.cli import write_problems
from negrl.train.loop import train

REQUIRED_KEYS = {
    "step/rollout", "step/optimizer", "reward/mean", "batch/acc", "batch/frac_all_wrong_groups",
    "batch/frac_all_right_groups", "batch/resp_len_mean", "actor/loss", "actor/pg_loss", "actor/grad_norm",
    "actor/entropy", "level5/frac_all_wrong_groups", "time/rollout_verify", "time/update",
}
RAW = {"train": {"steps": 6, "prompts_per_step": 4, "n": 4, "mini_batches": 2, "lr": 1.0e-3, "checkpoint_every": 2},
       "rollout": {"max_tokens": 16}, "verify": {"workers": 1}, "methods": ["grpo", "lens"]}


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


@pytest.fixture(scope="module")
def problems():
    return generate_split("train", 10, seed=0)


def test_metrics_contract_and_determinism(tiny_model_dir, problems, tmp_path):
    config = from_dict({**RAW, "train": {**RAW["train"], "steps": 2}})
    final = train(config, "lens", 7, tiny_model_dir, problems, tmp_path / "a", device="cpu", show_progress=False)
    rows = _metrics(tmp_path / "a")
    assert [r["step/rollout"] for r in rows] == [1, 2] and rows[-1]["step/optimizer"] == 4
    assert REQUIRED_KEYS - {"time/rollout_verify", "time/update"} <= set(rows[0])
    assert "lens/pbar_wrong_mean" in rows[0]
    assert "actor/grad_half_cosine" in rows[0] and "actor/grad_snr" in rows[0]  # grad_noise_check_every: 1
    assert (final / "config.json").exists() and (tmp_path / "a" / "provenance.json").exists()
    assert list((tmp_path / "a" / "tensorboard").glob("events.out.tfevents.*")), "no TensorBoard event file"
    train(config, "lens", 7, tiny_model_dir, problems, tmp_path / "b", device="cpu", show_progress=False)
    assert _metrics(tmp_path / "b") == rows
    a, b = _weights(tmp_path / "a" / "model"), _weights(tmp_path / "b" / "model")
    assert all(torch.equal(a[k], b[k]) for k in a)
    base = _weights(tiny_model_dir)
    assert any(not torch.equal(a[k], base[k]) for k in a), "training changed no weight"


def test_group_method_with_one_sample_is_a_config_error(tiny_model_dir, problems, tmp_path):
    from negrl.errors import ConfigError

    config = from_dict({**RAW, "train": {**RAW["train"], "n": 1}})
    with pytest.raises(ConfigError):
        train(config, "grpo", 1, tiny_model_dir, problems, tmp_path / "x", device="cpu", show_progress=False)


def test_fsdp_in_one_process_trains_like_the_plain_module(tiny_model_dir, problems, tmp_path):
    """The single-GPU FSDP2 path (process group of one; separate rollout copy synced after each step). LENS:
    the untrained model gets every answer wrong, which gives GRPO no gradient at all."""
    raw = {**RAW, "train": {**RAW["train"], "steps": 2}}
    train(from_dict(raw), "lens", 2, tiny_model_dir, problems, tmp_path / "plain", device="cpu", show_progress=False)
    fsdp = from_dict({**raw, "train": {**raw["train"], "distributed": "fsdp"}})
    train(fsdp, "lens", 2, tiny_model_dir, problems, tmp_path / "fsdp", device="cpu", show_progress=False)
    assert not torch.distributed.is_initialized()
    a, b = _weights(tmp_path / "plain" / "model"), _weights(tmp_path / "fsdp" / "model")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0, msg=key)
    for r1, r2 in zip(_metrics(tmp_path / "plain"), _metrics(tmp_path / "fsdp")):
        assert r1.keys() == r2.keys() and r1["reward/mean"] == r2["reward/mean"]
        assert r2["actor/grad_norm"] == pytest.approx(r1["actor/grad_norm"], rel=1e-4)
        # FSDP: g_A reduce-scattered at the half boundary, cosine from the shards' dot products
        assert r1["actor/grad_norm"] > 0
        assert r2["actor/grad_half_cosine"] == pytest.approx(r1["actor/grad_half_cosine"], abs=1e-5)


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_model_dir, problems, tmp_path):
    config_path, data_path = tmp_path / "config.yaml", tmp_path / "train.parquet"
    config_path.write_text(yaml.safe_dump({**RAW, "train": {**RAW["train"], "steps": 8}}))
    write_problems(problems, data_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "negrl.cli", "train", "--config", str(config_path), "--method", "grpo",
                "--seed", "3", "--base-model", str(tiny_model_dir), "--train", str(data_path), "--out-dir", str(out),
                "--device", "cpu", *extra]

    subprocess.run(command(tmp_path / "full"), check=True, env=env, capture_output=True, timeout=600)

    interrupted = tmp_path / "killed"
    process = subprocess.Popen(command(interrupted), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = interrupted / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not pointer.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (interrupted / "model").exists()
    killed_at = pointer.read_text().strip()

    subprocess.run(command(interrupted, "--resume"), check=True, env=env, capture_output=True, timeout=600)
    full, resumed = _weights(tmp_path / "full" / "model"), _weights(interrupted / "model")
    assert all(torch.equal(full[k], resumed[k]) for k in full), f"weights differ after resuming from {killed_at}"
    assert _metrics(interrupted) == _metrics(tmp_path / "full")


def test_kl_beta_given_only_as_a_method_option_loads_the_reference_and_trains(tiny_model_dir, problems, tmp_path):
    """method_options.grpo.kl_beta with train.kl_beta 0: the reference model is loaded and the KL is logged."""
    config = from_dict({**RAW, "train": {**RAW["train"], "steps": 1, "kl_beta": 0.0},
                        "method_options": {"grpo": {"kl_beta": 0.05}}})
    train(config, "grpo", 3, tiny_model_dir, problems, tmp_path / "kl", device="cpu", show_progress=False)
    row = json.loads((tmp_path / "kl" / "metrics.jsonl").read_text().splitlines()[0])
    assert any(key.startswith("actor/kl") for key in row), sorted(row)


def test_sampler_old_logprobs_train_like_the_recomputed_ones(tiny_model_dir, problems, tmp_path, monkeypatch):
    """train.old_logprobs: sampler skips the no-grad pass; on the CPU in fp32 the engine's log-probs are the
    trainer's to float rounding, so one update (LENS: they also weight its penalties) lands on the same weights."""
    runs = {}
    import negrl.train.loop as loop

    recomputed = []
    real_rollout_logprobs = loop.rollout_logprobs
    monkeypatch.setattr(loop, "rollout_logprobs",
                        lambda *a, **k: recomputed.append(1) or real_rollout_logprobs(*a, **k))
    for mode in ("recompute", "sampler"):
        recomputed.clear()
        config = from_dict({**RAW, "train": {**RAW["train"], "steps": 1, "mini_batches": 1, "old_logprobs": mode}})
        train(config, "lens", 5, tiny_model_dir, problems, tmp_path / mode, device="cpu", show_progress=False)
        runs[mode] = (_weights(tmp_path / mode / "model"), _metrics(tmp_path / mode)[0])
        assert bool(recomputed) == (mode == "recompute")  # the sampler mode skips the no-grad pass
    (w_re, m_re), (w_sa, m_sa) = runs["recompute"], runs["sampler"]
    assert m_re["reward/mean"] == m_sa["reward/mean"]  # the same rollout
    assert abs(m_re["actor/pg_loss"] - m_sa["actor/pg_loss"]) < 1e-5
    assert m_sa["actor/ppo_kl"] < 1e-6  # ratio 1 up to rounding
    assert all(torch.allclose(w_re[k], w_sa[k], rtol=0, atol=1e-6) for k in w_re)
    assert not all(torch.equal(w_sa[k], _weights(tiny_model_dir)[k]) for k in w_sa)  # it did update
