"""Batches and toy policies shared by the method tests (methods.md §4 fixtures)."""

from __future__ import annotations

import math

import torch

from negrl.methods import RolloutBatch

F64 = torch.float64


def make_batch(
    rewards,
    *,
    pbar=None,
    lengths=None,
    uid=None,
    truncated=None,
    old_logp=None,
    T: int | None = None,
    dtype=F64,
) -> RolloutBatch:
    """A batch with given rewards; ``pbar`` sets each response's old log-probs to average log(pbar)."""
    B = len(rewards)
    lengths = torch.as_tensor(lengths if lengths is not None else [2] * B)
    T = T or int(lengths.max())
    mask = torch.arange(T)[None, :] < lengths[:, None]
    if old_logp is None:
        if pbar is None:
            old_logp = torch.full((B, T), -0.5, dtype=dtype)
        else:
            # distinct token values whose mean is exactly log(pbar): zero-sum wiggle on top of the mean
            log_p = torch.tensor([math.log(p) for p in pbar], dtype=F64)[:, None]
            wiggle = torch.linspace(-0.01, 0.01, T, dtype=F64)[None, :].expand(B, T) * mask
            wiggle = wiggle - (wiggle.sum(-1, keepdim=True) / lengths[:, None]) * mask
            old_logp = ((log_p + wiggle) * mask).to(dtype)
    return RolloutBatch(
        old_logp=torch.as_tensor(old_logp, dtype=dtype) * mask,
        mask=mask,
        rewards=torch.as_tensor(rewards, dtype=dtype),
        uid=torch.as_tensor(uid if uid is not None else [0] * B, dtype=torch.long),
        truncated=torch.as_tensor(truncated if truncated is not None else [False] * B, dtype=torch.bool),
    )


def on_policy(batch: RolloutBatch) -> tuple[RolloutBatch, torch.Tensor]:
    """The batch with logp = a leaf copy of old_logp (rho = 1); returns (batch, leaf)."""
    leaf = batch.old_logp.clone().requires_grad_(True)
    return batch.with_logp(leaf), leaf


class SoftmaxPolicy:
    """Fixture (i): position-dependent logits theta [L,V]; l_t = log_softmax(theta_t / temperature)[o_t]."""

    def __init__(self, L=6, V=5, prompts=3, G=8, temperature=1.0, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.theta = torch.randn(L, V, generator=gen, dtype=F64).requires_grad_(True)
        self.temperature = temperature
        B = prompts * G
        self.tokens = torch.randint(0, V, (B, L), generator=gen)
        lengths = torch.randint(1, L + 1, (B,), generator=gen)
        self.mask = torch.arange(L)[None, :] < lengths[:, None]
        self.uid = torch.arange(prompts).repeat_interleave(G)
        # fixed rewards, every group mixed, r-hat != 1/2 in at least one group
        pattern = [[1, 0, 0, 0, 0, 0, 0, 1], [1, 1, 0, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 1, 0, 1]]
        self.rewards = torch.tensor([r for p in pattern[:prompts] for r in p[:G]], dtype=F64)

    def logp(self) -> torch.Tensor:
        logits = torch.log_softmax(self.theta / self.temperature, dim=-1)
        return logits[torch.arange(self.tokens.shape[1])[None, :], self.tokens] * self.mask

    def parameters(self):
        return [self.theta]

    def batch(self) -> RolloutBatch:
        logp = self.logp()
        return RolloutBatch(
            old_logp=logp.detach(),
            mask=self.mask,
            rewards=self.rewards,
            uid=self.uid,
            truncated=torch.zeros(len(self.rewards), dtype=torch.bool),
            logp=logp,
        )


class TinyTransformerPolicy:
    """Fixture (ii): random 2-layer causal LM (d 32, 2 heads, vocab 16, float64), prompt 4, response <= 8,
    3 prompts x G = 4, temperature 0.7."""

    def __init__(self, prompts=3, G=4, prompt_len=4, max_resp=8, temperature=0.7, seed=0):
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=32, attention_dropout=0.0,
        )
        self.model = LlamaForCausalLM(config).to(F64).eval()
        gen = torch.Generator().manual_seed(seed)
        B = prompts * G
        prompt = torch.randint(0, 16, (prompts, prompt_len), generator=gen).repeat_interleave(G, 0)
        response = torch.randint(0, 16, (B, max_resp), generator=gen)
        self.input_ids = torch.cat([prompt, response], 1)
        self.prompt_len, self.temperature = prompt_len, temperature
        lengths = torch.randint(1, max_resp + 1, (B,), generator=gen)
        self.mask = torch.arange(max_resp)[None, :] < lengths[:, None]
        self.uid = torch.arange(prompts).repeat_interleave(G)
        pattern = [[1, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 0]]
        self.rewards = torch.tensor([r for p in pattern[:prompts] for r in p[:G]], dtype=F64)

    def parameters(self):
        return list(self.model.parameters())

    def logp(self) -> torch.Tensor:
        logits = self.model(self.input_ids).logits[:, self.prompt_len - 1 : -1] / self.temperature
        logp = torch.log_softmax(logits, -1).gather(-1, self.input_ids[:, self.prompt_len :, None])[..., 0]
        return logp * self.mask

    def batch(self) -> RolloutBatch:
        logp = self.logp()
        return RolloutBatch(
            old_logp=logp.detach(), mask=self.mask, rewards=self.rewards, uid=self.uid,
            truncated=torch.zeros(len(self.rewards), dtype=torch.bool), logp=logp,
        )


def grads(loss: torch.Tensor, params) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params))


def max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))
