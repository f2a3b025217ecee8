"""Per-token log-probabilities of responses under a causal LM (methods.md C4).

Prompt and response are concatenated and right-padded, so every sequence starts at position 0 exactly as
an unpadded forward would see it (right padding needs no attention mask under causal attention, which lets
SDPA use its fused causal kernels); the log-prob of response token t is read from the logits at the position
before it, after dividing the logits by the sampling temperature.

Memory: the full logits ``[B, L, V]`` are never materialised. The decoder's last hidden states are gathered
at the response positions only, and the output projection, log-softmax, token log-prob and entropy run over
``chunk_tokens`` positions at a time in a custom autograd function that keeps only the hidden states and
recomputes each chunk's logits in the backward pass (peak extra memory: about 3 x chunk_tokens x V x 4 bytes,
independent of batch size and response length). Models whose logits are not a plain linear head (logit
soft-capping or scaling) take a fallback through the model's own forward.

    >>> seqs = pack_sequences([[5, 6]], [[7, 2]], pad_id=0)
    >>> seqs.input_ids.tolist(), seqs.response_mask.tolist()
    ([[5, 6, 7, 2]], [[True, True]])
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from negrl.train import fused_head

DEFAULT_CHUNK_TOKENS = 1024


@dataclass
class PackedSequences:
    input_ids: torch.Tensor  # [B, L] prompt + response, right-padded
    attention_mask: torch.Tensor  # [B, L]
    target_index: torch.Tensor  # [B, T] position in input_ids of each response token
    response_mask: torch.Tensor  # [B, T] bool
    response_ids: torch.Tensor  # [B, T] response tokens, padded with pad_id

    def to(self, device: torch.device | str) -> "PackedSequences":
        return PackedSequences(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.target_index,
                                                      self.response_mask, self.response_ids)))

    def select(self, rows: torch.Tensor) -> "PackedSequences":
        picked = PackedSequences(*(t[rows] for t in (self.input_ids, self.attention_mask, self.target_index,
                                                    self.response_mask, self.response_ids)))
        # trim padding columns no selected row uses (shorter forward); [B, T] stays aligned with the methods
        length = int(picked.attention_mask.sum(1).max())
        picked.input_ids, picked.attention_mask = picked.input_ids[:, :length], picked.attention_mask[:, :length]
        return picked


def pack_sequences(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int) -> PackedSequences:
    if len(prompt_ids) != len(response_ids):
        raise ValueError("pack_sequences: prompt and response lists differ in length")
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids)]
    batch, max_len = len(prompt_ids), max(lengths)
    max_response = max(1, max(len(r) for r in response_ids))
    input_ids = torch.full((batch, max_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, max_len), dtype=torch.long)
    target_index = torch.zeros((batch, max_response), dtype=torch.long)
    response_mask = torch.zeros((batch, max_response), dtype=torch.bool)
    responses = torch.full((batch, max_response), pad_id, dtype=torch.long)
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        sequence = list(prompt) + list(response)
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
        n = len(response)
        target_index[row, :n] = torch.arange(len(prompt), len(prompt) + n)
        response_mask[row, :n] = True
        responses[row, :n] = torch.tensor(response, dtype=torch.long)
    return PackedSequences(input_ids, attention_mask, target_index, response_mask, responses)


def _compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype autocast would run a matmul in here (bf16 under GPU autocast), else ``dtype``."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return dtype


class _ChunkedHeadLogprob(torch.autograd.Function):
    """logp[n] = log_softmax((h[n] @ W.T + b) / T)[y[n]] (and the entropy, no grad), chunk by chunk over n.

    Saves only h, W (and b); the backward recomputes each chunk's logits:
    d logp / d logits = (onehot(y) - softmax) / T."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature: float, chunk: int, with_entropy: bool):
        dtype = _compute_dtype(hidden.device, weight.dtype)
        n, acc = hidden.shape[0], _accumulate_dtype(dtype)
        fused = fused_head.usable(hidden.device, acc)
        logp = torch.empty(n, dtype=acc, device=hidden.device)
        entropy = torch.empty(n if with_entropy else 0, dtype=acc, device=hidden.device)
        lse_all = torch.empty(n, dtype=acc, device=hidden.device) if fused else None
        with torch.autocast(hidden.device.type, enabled=False):
            w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
            for start in range(0, n, chunk):
                end = min(n, start + chunk)
                if fused:  # one pass over the logits (negrl.train.fused_head); T is applied in the kernel
                    logits = _chunk_logits(hidden[start:end].to(dtype), w, b, 1.0)
                    lp, ent, lse_all[start:end] = fused_head.head_forward(logits, targets[start:end],
                                                                          temperature, with_entropy)
                    logp[start:end] = lp
                    if with_entropy:
                        entropy[start:end] = ent
                    del logits
                    continue
                logits = _chunk_logits(hidden[start:end].to(dtype), w, b, temperature)
                lse = torch.logsumexp(logits, -1)
                logp[start:end] = logits.gather(1, targets[start:end, None]).squeeze(1) - lse
                if with_entropy:  # H = lse - E_p[logits]: one softmax and a dot product, no [c, V] product
                    entropy[start:end] = lse - torch.linalg.vecdot(torch.softmax(logits, -1), logits)
                del logits
        ctx.save_for_backward(hidden, weight, bias, targets, lse_all)
        ctx.temperature, ctx.chunk, ctx.dtype, ctx.fused = temperature, chunk, dtype, fused
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy):
        hidden, weight, bias, targets, lse_all = ctx.saved_tensors
        dtype, temperature, chunk = ctx.dtype, ctx.temperature, ctx.chunk
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        acc = _accumulate_dtype(dtype)
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=acc, device=bias.device) if need_b else None
        with torch.autocast(hidden.device.type, enabled=False):
            w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
            for start in range(0, hidden.shape[0], chunk):
                end = min(hidden.shape[0], start + chunk)
                h = hidden[start:end].to(dtype)
                g = grad_logp[start:end].to(acc)
                if ctx.fused:  # d written by one pass from the recomputed logits and the forward's lse
                    logits = _chunk_logits(h, w, b, 1.0)
                    d = fused_head.head_backward(logits, targets[start:end], lse_all[start:end],
                                                 g / -temperature, temperature, dtype)
                    del logits
                else:
                    probs = torch.softmax(_chunk_logits(h, w, b, temperature), -1)
                    # d logp / d logits = (onehot - p) / T: (p - onehot) * (-g / T), once in the GEMM dtype
                    probs.scatter_add_(1, targets[start:end, None], probs.new_full((end - start, 1), -1.0))
                    d = torch.empty(probs.shape, dtype=dtype, device=probs.device)
                    torch.mul(probs, (g / -temperature)[:, None], out=d)
                    del probs
                if need_h:
                    grad_h[start:end] = (d @ w).to(hidden.dtype)
                if need_w:
                    _add_matmul_(grad_w, d.t(), h)
                if need_b:
                    grad_b.add_(d.sum(0, dtype=acc))
                del d
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None, None, None)


def _accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax and gradient accumulation: fp32, or fp64 for a float64 model (numerical tests)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


_MM_OUT_DTYPE = [True]  # cleared when torch.mm(..., out_dtype=) is unavailable


def _matmul_acc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b with the result in the accumulation dtype: on CUDA a bf16/fp16 GEMM writes fp32 directly
    (``torch.mm(out_dtype=)``), saving a separate cast pass over the [chunk, V] logits."""
    acc = _accumulate_dtype(a.dtype)
    if _MM_OUT_DTYPE[0] and a.is_cuda and a.dtype in (torch.bfloat16, torch.float16):
        try:
            return torch.mm(a, b, out_dtype=acc)
        except (TypeError, RuntimeError, NotImplementedError):
            _MM_OUT_DTYPE[0] = False
    return (a @ b).to(acc)


_ADDMM_OUT_DTYPE = [True]  # cleared when torch.addmm(..., out_dtype=) is unavailable


def _add_matmul_(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc += a @ b, acc in the accumulation dtype: on CUDA one bf16/fp16 GEMM that accumulates into the
    float32 ``acc`` (beta = 1), instead of a temporary product and a separate add over ``acc``."""
    if _ADDMM_OUT_DTYPE[0] and a.is_cuda and a.dtype in (torch.bfloat16, torch.float16) and acc.dtype != a.dtype:
        try:
            torch.addmm(acc, a, b, out_dtype=acc.dtype, out=acc)
            return
        except (TypeError, RuntimeError, NotImplementedError):
            _ADDMM_OUT_DTYPE[0] = False
    acc.add_(_matmul_acc(a, b))


def _chunk_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, temperature: float) -> torch.Tensor:
    logits = _matmul_acc(h, w.t())
    if b is not None:
        logits += b
    return logits if temperature == 1.0 else logits.div_(temperature)


def chunked_head_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          targets: torch.Tensor, temperature: float = 1.0, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                          with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token log-probs [N] (fp32, differentiable in hidden/weight/bias) of ``targets`` under the linear head
    ``hidden [N, H] @ weight[V, H].T + bias`` at ``temperature``; with the entropy [N] (no grad) on request."""
    logp, entropy = _ChunkedHeadLogprob.apply(hidden, weight, bias, targets, float(temperature),
                                              max(1, int(chunk_tokens)), with_entropy)
    return logp, (entropy if with_entropy else None)


def _plain_linear_head(lm) -> nn.Linear | None:
    """The model's output projection when its logits are exactly ``head(hidden)`` (no soft-capping/scaling)."""
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    config = getattr(lm, "config", None)
    scaled = any(getattr(config, key, None) not in (None, 1.0) for key in
                 ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale"))
    base = getattr(lm, "base_model", None)
    if type(head) is not nn.Linear or scaled or base is None or base is lm:
        return None
    return head


class TokenLogprobs(nn.Module):
    """A causal LM as a module whose forward returns response-token log-probs (and entropy): the unit that
    DDP / FSDP wrap, so the hidden-state gather and the chunked head run inside the wrapped forward."""

    def __init__(self, lm: nn.Module, chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> None:
        super().__init__()
        self.lm = lm
        self.chunk_tokens = chunk_tokens

    def forward(self, input_ids: torch.Tensor, target_index: torch.Tensor, response_ids: torch.Tensor,
                response_mask: torch.Tensor, temperature: float = 1.0, with_entropy: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        lm = self.lm
        batch, length = input_ids.shape
        # logits at position j predict token j + 1: the flat rows that predict response tokens
        predict = (target_index - 1).clamp(min=0) + torch.arange(batch, device=input_ids.device)[:, None] * length
        flat_rows = predict[response_mask]
        targets = response_ids[response_mask]
        head = _plain_linear_head(lm)
        if head is not None:
            hidden = lm.base_model(input_ids=input_ids, use_cache=False).last_hidden_state
            picked = hidden.reshape(batch * length, -1)[flat_rows]
            logp_flat, ent_flat = chunked_head_logprobs(picked, head.weight, head.bias, targets, temperature,
                                                        self.chunk_tokens, with_entropy)
        else:  # fallback: the model's own logits, then a chunked fp32 log-softmax at the response rows
            logits = lm(input_ids=input_ids, use_cache=False).logits
            picked = logits.reshape(batch * length, -1)[flat_rows]
            logp_parts, ent_parts = [], []
            for start in range(0, picked.shape[0], self.chunk_tokens):
                part = picked[start:start + self.chunk_tokens]
                log_probs = torch.log_softmax(part.to(_accumulate_dtype(part.dtype)) / temperature, -1)
                logp_parts.append(log_probs.gather(1, targets[start:start + self.chunk_tokens, None]).squeeze(1))
                if with_entropy:
                    with torch.no_grad():
                        ent_parts.append(-(log_probs.exp() * log_probs).sum(-1))
            logp_flat = torch.cat(logp_parts) if logp_parts else picked.new_zeros(0, dtype=torch.float32)
            ent_flat = torch.cat(ent_parts) if ent_parts else None
        token_logp = logp_flat.new_zeros(response_mask.shape).masked_scatter(response_mask, logp_flat)
        entropy = None
        if with_entropy:
            entropy = logp_flat.new_zeros(response_mask.shape)
            entropy = entropy.masked_scatter(response_mask, ent_flat.detach())
        return token_logp, entropy


def response_logprobs(model, seqs: PackedSequences, temperature: float = 1.0, with_entropy: bool = False,
                      chunk_tokens: int | None = None, autocast_dtype: torch.dtype | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [B, T] (fp32; fp64 for a float64 model) of the response tokens (0 on padding), and optionally
    the entropy [B, T] of the temperature-scaled next-token distribution at each response position.

    ``model`` is a causal LM, a ``TokenLogprobs`` or a DDP/FSDP wrapper of one; ``autocast_dtype`` runs the
    forward under autocast (bf16 on GPU)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, TokenLogprobs):
        model = TokenLogprobs(model, chunk_tokens or DEFAULT_CHUNK_TOKENS)
    elif chunk_tokens:
        inner.chunk_tokens = chunk_tokens
    device = seqs.input_ids.device
    context = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
               else contextlib.nullcontext())
    with context:
        return model(seqs.input_ids, seqs.target_index, seqs.response_ids, seqs.response_mask,
                     temperature, with_entropy)
