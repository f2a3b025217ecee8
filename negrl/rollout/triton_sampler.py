"""A fused CUDA sampler (Triton): one pass over each row's logits computes the Gumbel-max sample
of softmax(logits / T), its log-prob (online logsumexp) and nothing else, instead of the ~7 full
passes of the torch sampler over a [batch, vocab] float32 tensor (0.6 ms per step for 256 x 151,936
on an H200 before). Exact categorical sampling like ``sample_next`` (noise from Triton's Philox
``tl.rand``, keyed by a per-step seed drawn from the engine's ``torch.Generator`` plus the row's
original index, so results are seeded and compaction-invariant). Used for temperature > 0 and
top_p == 1 on CUDA; everything else goes through ``sample_next``."""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover - CPU installs
    HAVE_TRITON = False


if HAVE_TRITON:

    @triton.jit
    def _gumbel_sample_kernel(
        logits_ptr, stride_row, V, inv_t, seed_ptr, rows_ptr, tok_ptr, lp_ptr, BLOCK: tl.constexpr
    ):
        pid = tl.program_id(0)
        rid = tl.load(rows_ptr + pid).to(tl.int32)
        seed = tl.load(seed_ptr).to(tl.int32) + rid * 7919
        base = logits_ptr + pid.to(tl.int64) * stride_row
        lane = tl.arange(0, BLOCK)
        m = tl.max(tl.full([BLOCK], float("-inf"), tl.float32), 0)
        s = tl.sum(tl.zeros([BLOCK], tl.float32), 0)
        best_g = m
        best_z = s
        best_i = tl.sum(tl.zeros([BLOCK], tl.int32), 0)
        for start in range(0, V, BLOCK):
            offs = start + lane
            msk = offs < V
            z = tl.load(base + offs, mask=msk, other=float("-inf")).to(tl.float32) * inv_t
            nm = tl.maximum(m, tl.max(z, 0))
            s = s * tl.exp(m - nm) + tl.sum(tl.where(msk, tl.exp(z - nm), 0.0), 0)
            m = nm
            # E ~ Exp(1) = -log(1 - v), v uniform on the open interval (0, 1) from 24 random bits.
            # Small E decides when an unlikely token wins, and there -log(1 - v) must be accurate:
            # tl.rand can round to 1.0 and tl.log's absolute error near 1 swamps small E (both
            # biased samples on an H100). For v <= 1/2, -log(1 - v) = 2 atanh(w), w = v / (2 - v)
            # <= 1/3, by its series (relative error < 2e-9); above, log(1 - v) <= -0.69 is safe.
            r = tl.randint(seed, offs)
            v = ((r >> 8).to(tl.float32) + 0.5) * 5.9604644775390625e-08
            w = v / (2.0 - v)
            w2 = w * w
            ser = 1.0 + w2 * (1 / 3 + w2 * (1 / 5 + w2 * (1 / 7 + w2 * (1 / 9 + w2 * (1 / 11 + w2 * (
                1 / 13 + w2 * (1 / 15 + w2 / 17)))))))
            e = tl.where(v <= 0.5, 2.0 * w * ser, -tl.log(1.0 - v))
            g = tl.where(msk, z - tl.log(e), float("-inf"))
            bg = tl.max(g, 0)
            bi = tl.argmax(g, 0)
            zi = tl.sum(tl.where(lane == bi, z, 0.0), 0)
            upd = bg > best_g
            best_i = tl.where(upd, start + bi, best_i)
            best_z = tl.where(upd, zi, best_z)
            best_g = tl.maximum(best_g, bg)
        tl.store(tok_ptr + pid, best_i.to(tl.int64))
        tl.store(lp_ptr + pid, best_z - m - tl.log(s))


def fused_sample(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator,
    row_ids: torch.Tensor | None = None,
    block: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row of ``logits`` [b, V] from softmax(logits / T); returns
    (tokens [b] long, log-probs [b] float32)."""
    b, v = logits.shape
    if logits.stride(1) != 1:
        logits = logits.contiguous()
    dev = logits.device
    seed = torch.randint(0, 2**30, (1,), generator=generator, device=dev, dtype=torch.int64)
    rows = row_ids if row_ids is not None else torch.arange(b, device=dev)
    tok = torch.empty(b, dtype=torch.long, device=dev)
    lp = torch.empty(b, dtype=torch.float32, device=dev)
    _gumbel_sample_kernel[(b,)](logits, logits.stride(0), v, 1.0 / temperature, seed, rows, tok, lp, BLOCK=block)
    return tok, lp
