"""Token sampling shared by the transformers backend, and the importance-sampling guard.

``sample_next`` draws exactly from softmax(logits / T) (optionally nucleus-truncated) with the
exponential-race trick ``argmax(log p - log E)``, ``E ~ Exp(1)``, which is an exact categorical
sample, needs one random draw per vocabulary entry from a dedicated ``torch.Generator`` and is the
same on CPU and GPU (vLLM's sampler uses the same trick).
"""

from __future__ import annotations

from typing import Any

import torch

_TINY = 1e-30


def sample_next(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    row_ids: torch.Tensor | None = None,
    n_rows: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row of ``logits`` ``[b, V]`` (float32).

    With ``row_ids`` (the original row of each batch slot) and ``n_rows``, the random noise is drawn
    for all ``n_rows`` rows and row ``row_ids[i]``'s share is used, so a row's sample does not
    depend on which other rows are still in the batch (compaction-invariant).

    Returns ``(tokens [b] long, logprobs [b] float32)``; the log-probs are those of the distribution
    actually sampled from: log softmax(logits / T) restricted to the nucleus when ``top_p < 1``.
    Greedy (``temperature == 0``) returns argmax and log softmax(logits) (temperature 1).
    """
    logits = logits.float()
    if temperature == 0:
        tokens = logits.argmax(dim=-1)
        lse = torch.logsumexp(logits, dim=-1)
        return tokens, logits.gather(1, tokens[:, None]).squeeze(1) - lse
    z = logits / temperature if temperature != 1.0 else logits
    if top_p < 1.0:
        z = _nucleus(z, top_p)
    lse = torch.logsumexp(z, dim=-1)
    if row_ids is not None and n_rows is not None and n_rows != z.shape[0]:
        noise = torch.empty((n_rows, z.shape[1]), device=z.device, dtype=z.dtype)
        noise = noise.exponential_(generator=generator)[row_ids]
    else:
        noise = torch.empty_like(z).exponential_(generator=generator)
    if noise.device.type != "cuda":  # CUDA's exponential_ never returns 0 (clamped at eps/2)
        noise.clamp_(min=_TINY)
    noise.log_()
    torch.sub(z, noise, out=noise)
    tokens = noise.argmax(dim=-1)
    return tokens, z.gather(1, tokens[:, None]).squeeze(1) - lse


def _nucleus(z: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set logits outside the smallest set of mass >= top_p to -inf (the top token always stays)."""
    sorted_z, order = torch.sort(z, dim=-1, descending=True)
    probs = torch.softmax(sorted_z, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    sorted_z.masked_fill_(mass_before >= top_p, float("-inf"))
    return torch.empty_like(z).scatter_(1, order, sorted_z)


def logprob_mismatch(sampler_logprobs: Any, trainer_logprobs: Any, mask: Any = None) -> dict[str, float]:
    """Train/inference mismatch of per-token log-probs (the importance-sampling guard).

    ``sampler_logprobs`` and ``trainer_logprobs`` are same-shaped tensors (e.g. ``[B, T]``; lists are
    converted), ``mask`` selects the response tokens (1 = counted). Returns
    ``rollout/logp_diff_mean`` and ``rollout/logp_diff_max`` (mean / max of |Δ log p| over masked
    tokens) and ``rollout/frac_ratio_outside_0.9_1.1`` (fraction of masked tokens whose ratio
    exp(trainer - sampler) lies outside [0.9, 1.1]). All zeros when no token is selected.
    """
    s = torch.as_tensor(sampler_logprobs, dtype=torch.float64)
    t = torch.as_tensor(trainer_logprobs, dtype=torch.float64, device=s.device)
    if s.shape != t.shape:
        raise ValueError(f"logprob_mismatch: shapes differ, {tuple(s.shape)} vs {tuple(t.shape)}")
    m = torch.ones_like(s, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=s.device).bool()
    if m.shape != s.shape:
        raise ValueError(f"logprob_mismatch: mask shape {tuple(m.shape)} != {tuple(s.shape)}")
    diff = (t - s)[m]
    if diff.numel() == 0:
        return {
            "rollout/logp_diff_mean": 0.0,
            "rollout/logp_diff_max": 0.0,
            "rollout/frac_ratio_outside_0.9_1.1": 0.0,
        }
    ratio = diff.exp()
    outside = (ratio < 0.9) | (ratio > 1.1)
    return {
        "rollout/logp_diff_mean": float(diff.abs().mean()),
        "rollout/logp_diff_max": float(diff.abs().max()),
        "rollout/frac_ratio_outside_0.9_1.1": float(outside.double().mean()),
    }


def response_text(
    tokenizer: Any, token_ids: list[int], finish_reason: str, stop: tuple[str, ...], include_stop: bool = False
) -> str:
    """The response text every backend reports: ``token_ids`` decoded without special tokens, cut
    before the first stop string when the response stopped on one (kept when ``include_stop``)."""
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    if finish_reason == "stop" and stop:
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if hits:
            pos, s = min(hits)
            text = text[: pos + len(s)] if include_stop else text[:pos]
    return text
