"""Fused CUDA kernels (Triton) for the chunked output-layer log-probs of ``negrl.train.logprobs``.

The torch path makes about eight passes over each chunk's float32 ``[chunk, V]`` logits (max, exp, sum and
subtract of the logsumexp; softmax, product and sum for the entropy; in the backward a second softmax, the
scatter and the product with the incoming gradient). With V = 151,936 these passes, not the matrix
products, dominated a training step of a Qwen2.5-0.5B-shaped model on an H100 (about 138 of 413 ms). Here:

- forward: one read of the logits per row computes, by an online logsumexp, ``lse``, the target's log-prob
  ``z_y - lse`` and the entropy ``lse - sum_v p_v z_v`` (``z`` = logits / T), and saves ``lse``;
- backward: one read of the recomputed logits and one write of ``d = (softmax(z) - onehot(y)) * scale`` in
  the matrix-product dtype (bf16 under autocast), with ``scale = -grad_logp / T`` per row; ``lse`` comes from
  the forward, so no reduction is repeated.

Same function as the torch path up to float32 rounding (tests/train/test_fused_head_gpu.py compares both
and a float64 reference on the GPU). Used on CUDA when Triton imports; ``set_enabled(False)`` turns it off
(``negrl bench train --no-fused-head`` measures the difference).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover - CPU installs have no Triton
    HAVE_TRITON = False

_ENABLED = [True]
BLOCK = 4096


def set_enabled(enabled: bool) -> None:
    """Turn the fused kernels on or off for this process (benchmarks compare both)."""
    _ENABLED[0] = bool(enabled)


def usable(device: torch.device, accumulate_dtype: torch.dtype) -> bool:
    """Whether the fused kernels run: CUDA, Triton present, enabled, float32 logits (float64 models, as in
    the numerical tests, take the torch path)."""
    return _ENABLED[0] and HAVE_TRITON and device.type == "cuda" and accumulate_dtype == torch.float32


if HAVE_TRITON:

    @triton.jit
    def _head_forward_kernel(logits_ptr, stride_row, V, inv_t, targets_ptr, lse_ptr, logp_ptr, ent_ptr,
                             WITH_ENTROPY: tl.constexpr, BLOCK_V: tl.constexpr):
        row = tl.program_id(0)
        base = logits_ptr + row.to(tl.int64) * stride_row
        lane = tl.arange(0, BLOCK_V)
        m = tl.max(tl.full([BLOCK_V], float("-inf"), tl.float32), 0)
        s = tl.sum(tl.zeros([BLOCK_V], tl.float32), 0)
        t = tl.sum(tl.zeros([BLOCK_V], tl.float32), 0)
        for start in range(0, V, BLOCK_V):
            offs = start + lane
            inside = offs < V
            z = tl.load(base + offs, mask=inside, other=float("-inf")) * inv_t
            new_m = tl.maximum(m, tl.max(z, 0))
            alpha = tl.exp(m - new_m)
            e = tl.where(inside, tl.exp(z - new_m), 0.0)
            s = s * alpha + tl.sum(e, 0)
            if WITH_ENTROPY:
                t = t * alpha + tl.sum(tl.where(inside, e * z, 0.0), 0)
            m = new_m
        lse = m + tl.log(s)
        target = tl.load(targets_ptr + row)
        z_target = tl.load(base + target) * inv_t
        tl.store(lse_ptr + row, lse)
        tl.store(logp_ptr + row, z_target - lse)
        if WITH_ENTROPY:
            tl.store(ent_ptr + row, lse - t / s)

    @triton.jit
    def _head_backward_kernel(logits_ptr, stride_row, V, inv_t, targets_ptr, lse_ptr, scale_ptr, out_ptr,
                              out_stride_row, BLOCK_V: tl.constexpr):
        row = tl.program_id(0)
        base = logits_ptr + row.to(tl.int64) * stride_row
        out = out_ptr + row.to(tl.int64) * out_stride_row
        lane = tl.arange(0, BLOCK_V)
        lse = tl.load(lse_ptr + row)
        scale = tl.load(scale_ptr + row)
        target = tl.load(targets_ptr + row)
        for start in range(0, V, BLOCK_V):
            offs = start + lane
            inside = offs < V
            z = tl.load(base + offs, mask=inside, other=0.0) * inv_t
            p = tl.exp(z - lse) - tl.where(offs == target, 1.0, 0.0)
            tl.store(out + offs, (p * scale).to(out_ptr.dtype.element_ty), mask=inside)


def head_forward(logits: torch.Tensor, targets: torch.Tensor, temperature: float, with_entropy: bool,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logp, entropy or empty, lse), each [n] float32, of float32 ``logits`` [n, V] (before dividing by T)."""
    n, vocab = logits.shape
    lse = torch.empty(n, dtype=torch.float32, device=logits.device)
    logp = torch.empty_like(lse)
    entropy = torch.empty(n if with_entropy else 1, dtype=torch.float32, device=logits.device)
    if n:
        _head_forward_kernel[(n,)](logits, logits.stride(0), vocab, 1.0 / temperature, targets.contiguous(),
                                   lse, logp, entropy, WITH_ENTROPY=with_entropy, BLOCK_V=BLOCK, num_warps=16)
    return logp, (entropy if with_entropy else entropy[:0]), lse


def head_backward(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, scale: torch.Tensor,
                  temperature: float, out_dtype: torch.dtype) -> torch.Tensor:
    """``(softmax(logits / T) - onehot(targets)) * scale[:, None]`` in ``out_dtype``, [n, V]."""
    n, vocab = logits.shape
    out = torch.empty((n, vocab), dtype=out_dtype, device=logits.device)
    if n:
        _head_backward_kernel[(n,)](logits, logits.stride(0), vocab, 1.0 / temperature, targets.contiguous(),
                                    lse.contiguous(), scale.to(torch.float32).contiguous(), out, out.stride(0),
                                    BLOCK_V=BLOCK, num_warps=16)
    return out
