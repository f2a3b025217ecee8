"""The half-batch gradient cosine (negrl.train.grad_noise): exact against separately computed half gradients,
the update unchanged by it, the noise-dominated warning, and its wiring through the training loop."""

from __future__ import annotations

import copy
import doctest
import json
import logging

import pytest
import torch

from negrl.config import ToyModelConfig, from_dict
from negrl.data.arith import generate_split
from negrl.errors import ConfigError
from negrl.methods import RolloutBatch, get_method
from negrl.models import build_toy
from negrl.train.distributed import DistContext
import negrl.train.grad_noise as grad_noise
from negrl.train.grad_noise import COSINE_KEY, SNR_KEY, GradNoiseMonitor, snr_from_cosine, split_halves
from negrl.train.logprobs import TokenLogprobs, pack_sequences, response_logprobs
from negrl.train.loop import train
from negrl.train.update import PolicyUpdater, UpdateSettings, rollout_logprobs

MAX_RESPONSE = 10
NOISE_LOG = "gradient is noise-dominated"


@pytest.fixture(scope="module")
def policy() -> TokenLogprobs:
    """A tiny toy Llama in float64 (sums in a different order agree to ~1e-16)."""
    model, _ = build_toy(ToyModelConfig(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                                        intermediate_size=32, max_position=64, seed=0))
    return TokenLogprobs(model.double().train(False))


def make_batch(policy, groups: int, n: int, seed: int, identical_groups: bool = False):
    """``groups`` groups of ``n`` random responses (random lengths) with mixed 0/1 rewards; old log-probs from
    the policy itself. ``identical_groups``: every group the same prompt, responses and rewards."""
    gen = torch.Generator().manual_seed(seed)
    vocab = policy.lm.config.vocab_size
    prompts, responses, rewards = [], [], []
    for g in range(groups):
        if identical_groups and g:
            prompts += prompts[:n]
            responses += responses[:n]
            rewards += rewards[:n]
            continue
        prompt_length = int(torch.randint(3, 8, (1,), generator=gen))
        prompt = torch.randint(3, vocab, (prompt_length,), generator=gen).tolist()
        for i in range(n):
            length = int(torch.randint(2, MAX_RESPONSE + 1, (1,), generator=gen))
            prompts.append(prompt)
            responses.append(torch.randint(3, vocab, (length,), generator=gen).tolist())
            rewards.append(float(i % 2) if g % 3 == 0 else float(torch.randint(0, 2, (1,), generator=gen)))
    seqs = pack_sequences(prompts, responses, pad_id=0)
    settings = settings_for(micro_batch_size=64)
    old = rollout_logprobs(policy, seqs, settings, DistContext(), torch.device("cpu"), torch.float64)
    batch = RolloutBatch(old_logp=old, mask=seqs.response_mask,
                         rewards=torch.tensor(rewards, dtype=torch.float64), uid=torch.arange(groups * n) // n,
                         truncated=torch.zeros(groups * n, dtype=torch.bool))
    return batch, seqs


def settings_for(micro_batch_size: int, mini_batches: int = 1, ppo_epochs: int = 1) -> UpdateSettings:
    return UpdateSettings(temperature=1.0, micro_batch_size=micro_batch_size, micro_batch_tokens=None,
                          grad_clip=1.0, mini_batches=mini_batches, ppo_epochs=ppo_epochs)


def make_updater(policy, method, settings: UpdateSettings, lr: float = 1e-2) -> PolicyUpdater:
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return PolicyUpdater(policy, optimizer, scheduler, method, settings, DistContext(), torch.device("cpu"))


def half_gradient(policy, method, batch, seqs, prep, uids, denominator) -> torch.Tensor:
    """The flat gradient of the rows of groups ``uids`` alone (one forward/backward, autograd)."""
    policy.zero_grad(set_to_none=True)
    rows = torch.nonzero(torch.isin(batch.uid, torch.tensor(uids)))[:, 0]
    logp, _ = response_logprobs(policy, seqs.select(rows), 1.0)
    loss, _ = method.loss(batch.select(rows).with_logp(logp), prep.select(rows), denominator=denominator)
    loss.backward()
    out = torch.cat([p.grad.reshape(-1) for p in policy.parameters()])
    policy.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("method_name", ["grpo", "lens"])
@pytest.mark.parametrize("micro_batch_size", [3, 64])
def test_logged_cosine_equals_the_cosine_of_separately_computed_half_gradients(policy, method_name,
                                                                              micro_batch_size):
    method = get_method(method_name, max_response_length=MAX_RESPONSE)
    batch, seqs = make_batch(policy, groups=7, n=4, seed=1)  # odd: halves of 3 and 4 groups
    prep = method.prepare(batch)
    trained = copy.deepcopy(policy)
    updater = make_updater(trained, method, settings_for(micro_batch_size))
    chunk = updater.minibatch_order(batch.uid.unique().tolist(), 11)[0]
    half_a, half_b = split_halves(chunk)
    assert len(half_a) == 3 and sorted(half_a + half_b) == list(range(7))

    out = updater.update(batch, seqs, prep, [11], grad_noise=True)

    denominator = method.aggregation_denominator(batch)
    g_a = half_gradient(policy, method, batch, seqs, prep, half_a, denominator)
    g_b = half_gradient(policy, method, batch, seqs, prep, half_b, denominator)
    expected = torch.nn.functional.cosine_similarity(g_a, g_b, dim=0).item()
    assert -0.95 < expected < 0.95  # a non-trivial case
    assert updater.last_half_cosines == [pytest.approx(expected, abs=1e-6)]
    assert out[COSINE_KEY] == pytest.approx(expected, abs=1e-6)
    assert out[SNR_KEY] == pytest.approx(snr_from_cosine(expected), abs=1e-6)
    assert out["actor/grad_norm"] == pytest.approx((g_a + g_b).norm().item(), rel=1e-9)


@pytest.mark.parametrize("micro_batch_size", [1, 5, 64])
def test_the_update_is_the_same_with_the_diagnostic_on_and_off(policy, micro_batch_size):
    method = get_method("grpo", max_response_length=MAX_RESPONSE)
    batch, seqs = make_batch(policy, groups=8, n=4, seed=2)
    prep = method.prepare(batch)
    settings = settings_for(micro_batch_size, mini_batches=2, ppo_epochs=2)  # 4 updates, weights moving
    runs = {}
    for on in (False, True):
        trained = copy.deepcopy(policy)
        updater = make_updater(trained, method, settings)
        metrics = [updater.update(batch, seqs, prep, [5 + step, 9 + step], grad_noise=on)
                   for step in range(2)]
        runs[on] = (trained, metrics, updater.optimizer_steps)
    (off_policy, off_metrics, off_steps), (on_policy, on_metrics, on_steps) = runs[False], runs[True]
    assert off_steps == on_steps == 8
    for (name, a), b in zip(off_policy.named_parameters(), on_policy.parameters()):
        assert (a - b).abs().max().item() <= 1e-12, name
    assert any(not torch.equal(a, b) for a, b in zip(policy.parameters(), on_policy.parameters()))
    for off, on in zip(off_metrics, on_metrics):
        assert COSINE_KEY not in off and SNR_KEY not in off
        assert COSINE_KEY in on and -1.0 <= on[COSINE_KEY] <= 1.0
        assert set(on) - set(off) == {COSINE_KEY, SNR_KEY}
        for key in off:
            assert on[key] == pytest.approx(off[key], rel=1e-9, abs=1e-12), key


def test_single_group_mini_batches_and_zero_gradients_log_no_cosine(policy):
    method = get_method("grpo", max_response_length=MAX_RESPONSE)
    batch, seqs = make_batch(policy, groups=2, n=4, seed=3)
    updater = make_updater(copy.deepcopy(policy), method, settings_for(64, mini_batches=2))
    assert COSINE_KEY not in updater.update(batch, seqs, method.prepare(batch), [0], grad_noise=True)
    zero = RolloutBatch(old_logp=batch.old_logp, mask=batch.mask, rewards=torch.zeros_like(batch.rewards),
                        uid=batch.uid, truncated=batch.truncated)  # GRPO: all-wrong groups, no gradient
    updater = make_updater(copy.deepcopy(policy), method, settings_for(64))
    assert COSINE_KEY not in updater.update(zero, seqs, method.prepare(zero), [0], grad_noise=True)


def _cosines_over_steps(policy, steps: int, identical_groups: bool) -> list[float]:
    method = get_method("grpo", max_response_length=MAX_RESPONSE)
    trained = copy.deepcopy(policy)
    updater = make_updater(trained, method, settings_for(16), lr=1e-4)
    out = []
    for step in range(steps):
        batch, seqs = make_batch(trained, groups=8, n=4, seed=100 + step, identical_groups=identical_groups)
        if not identical_groups:  # pure noise: rewards independent of everything
            gen = torch.Generator().manual_seed(1000 + step)
            batch.rewards.copy_(torch.randint(0, 2, batch.rewards.shape, generator=gen).double())
        out.append(updater.update(batch, seqs, method.prepare(batch), [step], grad_noise=True)[COSINE_KEY])
    return out


def test_warning_fires_on_pure_noise_and_not_on_aligned_halves(policy, caplog):
    """Pure noise: random tokens and rewards independent of them -> the half gradients are independent with
    mean zero, the cosine ~0. Aligned: every group identical -> both halves' gradients point the same way."""
    noise = _cosines_over_steps(policy, 6, identical_groups=False)
    aligned = _cosines_over_steps(policy, 6, identical_groups=True)
    assert abs(sum(noise) / len(noise)) < 0.1, noise
    assert all(c == pytest.approx(1.0, abs=1e-9) for c in aligned), aligned
    for cosines, fires in ((noise, True), (aligned, False)):
        caplog.clear()
        monitor = GradNoiseMonitor(threshold=0.1, window=5, responses_per_update=32)
        with caplog.at_level(logging.WARNING, logger="negrl.train"):
            for step, c in enumerate(cosines, 1):
                monitor.observe(step, {COSINE_KEY: c, "reward/mean": 0.5})
        warned = [r.getMessage() for r in caplog.records if NOISE_LOG in r.getMessage()]
        assert len(warned) == (1 if fires else 0), (cosines, warned)


def test_warning_text_window_and_rate_limit(caplog):
    monitor = GradNoiseMonitor(threshold=0.1, window=10, responses_per_update=64)
    with caplog.at_level(logging.WARNING, logger="negrl.train"):
        fired = [monitor.observe(step, {COSINE_KEY: 0.03}) for step in range(1, 121)]
    # first when the window is full, then at most every 5 windows
    assert [step for step, m in enumerate(fired, 1) if m] == [10, 60, 110]
    assert fired[9] == [
        "negrl train: WARNING gradient is noise-dominated: cosine between half-batch gradients 0.03 over the "
        "last 10 steps (< 0.10; implied gradient SNR 0.06, ~16x more responses per update for SNR 1); each "
        "update sees 64 responses: raise train.prompts_per_step*n per update (fewer mini_batches) or lower lr"]
    assert [r.getMessage() for r in caplog.records] == [m[0] for m in fired if m]
    quiet = GradNoiseMonitor(threshold=0.1, window=3)
    assert not any(quiet.observe(s, {COSINE_KEY: c}) for s, c in enumerate([0.03, 0.03, 0.5, 0.03, 0.03], 1))


def test_reward_falling_is_a_second_warning():
    monitor = GradNoiseMonitor(threshold=0.1, window=5)
    flat = [0.50, 0.52, 0.49, 0.51, 0.50] * 2
    assert not any(monitor.observe(s, {"reward/mean": r, COSINE_KEY: 0.5}) for s, r in enumerate(flat, 1))
    falling = GradNoiseMonitor(threshold=0.1, window=5)
    rewards = [0.50, 0.52, 0.49, 0.51, 0.50, 0.45, 0.40, 0.36, 0.33, 0.30, 0.31, 0.29, 0.30]
    messages = [m for s, r in enumerate(rewards, 1)
                for m in falling.observe(s, {"reward/mean": r, COSINE_KEY: 0.5})]
    assert len(messages) == 1 and messages[0].startswith(
        "negrl train: WARNING reward/mean is falling: 0.504 over steps 1-5 -> ")


def test_training_loop_logs_the_cosine_on_its_cadence_and_warns(tiny_model_dir, tmp_path, caplog):
    problems = generate_split("train", 10, seed=0)
    config = from_dict({"methods": ["lens"], "train": {
        "steps": 3, "prompts_per_step": 4, "n": 4, "mini_batches": 2, "lr": 1.0e-3, "checkpoint_every": 0,
        "grad_noise_check_every": 2, "grad_noise_warn_window": 2, "grad_noise_warn_cosine": 1.01,
        "logging": {"tensorboard": False}}, "rollout": {"max_tokens": 8}, "verify": {"workers": 1}})
    with caplog.at_level(logging.WARNING, logger="negrl.train"):
        train(config, "lens", 3, tiny_model_dir, problems, tmp_path, device="cpu", show_progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [COSINE_KEY in r for r in rows] == [True, False, True]  # rollout steps 1 and 3 (every 2)
    assert all(-1.0 <= r[COSINE_KEY] <= 1.0 and r[SNR_KEY] >= 0.0 for r in rows if COSINE_KEY in r)
    warned = [r.getMessage() for r in caplog.records if NOISE_LOG in r.getMessage()]
    assert len(warned) == 1 and "over the last 2 steps (< 1.01" in warned[0]
    assert "each update sees 8 responses" in warned[0]


def test_config_rejects_a_negative_cadence():
    with pytest.raises(ConfigError, match="grad_noise_check_every"):
        from_dict({"train": {"grad_noise_check_every": -1}})
    assert from_dict({}).train.grad_noise_check_every == 1


def test_docstring_examples():
    result = doctest.testmod(grad_noise)
    assert result.failed == 0 and result.attempted > 0
