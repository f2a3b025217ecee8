"""Negative token filtering (NTF), methods.md §3.10.

From *Rethinking Groups in Critic-Free RLVR* (arXiv 2606.17250): in a wrong response most tokens are
high-probability tokens that correct continuations share; penalising them is a "false penalty". NTF keeps
the policy-gradient term only on the k lowest-probability tokens (under the rollout policy, l_old) of every
negative response (reward 0, truncated included), k = min(L, max(min_keep, ceil(keep * L - 1e-6))). Ties are
broken by lower position (stable sort). Positive responses keep their whole mask. Masked tokens stay in every
aggregation denominator; NTF composes with any method through ``Prepared.ntf_mask``.

    >>> import torch
    >>> old = torch.tensor([[-1.0, -1.0, -1.0, -0.5]])
    >>> negative_token_mask(old, torch.ones(1, 4, dtype=torch.bool), torch.tensor([0.0]), keep=0.5)
    tensor([[ True,  True, False, False]])
"""

from __future__ import annotations

import torch
from torch import Tensor


def tokens_to_keep(lengths: Tensor, keep: float, min_keep: int = 1) -> Tensor:
    """[B] k = min(L, max(min_keep, ceil(keep * L - 1e-6))); the 1e-6 absorbs float error (0.07 * 100 -> 7)."""
    k = torch.ceil(lengths.to(torch.float64) * keep - 1e-6).long()
    return torch.minimum(lengths, k.clamp(min=min_keep))


def negative_token_mask(
    old_logp: Tensor, mask: Tensor, rewards: Tensor, keep: float, min_keep: int = 1
) -> Tensor:
    """[B,T] bool n: on negative responses the k lowest-l_old tokens, on positive responses the mask."""
    lengths = mask.sum(-1)
    k = tokens_to_keep(lengths, keep, min_keep)
    # Padding sorts last; a stable ascending sort breaks ties by position.
    key = torch.where(mask, old_logp, torch.inf)
    order = torch.sort(key, dim=-1, stable=True).indices
    positions = torch.arange(mask.shape[-1], device=mask.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(-1, order, positions)
    kept = (rank < k[:, None]) & mask
    negative = (rewards <= 0.5)[:, None]
    return torch.where(negative, kept, mask)


def ntf_diagnostics(old_logp: Tensor, mask: Tensor, rewards: Tensor, ntf_mask: Tensor) -> dict[str, float]:
    """ntf/kept_frac, ntf/kept_logp_mean, ntf/masked_logp_mean (kept must be lower), ntf/neg_responses (§5)."""
    negative = (rewards <= 0.5)[:, None] & mask
    kept = negative & ntf_mask
    masked = negative & ~ntf_mask
    old = old_logp.to(torch.float64)
    n_neg, n_kept, n_masked, s_kept, s_masked, n_resp = torch.stack(
        [
            negative.sum().double(),
            kept.sum().double(),
            masked.sum().double(),
            (old * kept).sum(),
            (old * masked).sum(),
            (rewards <= 0.5).sum().double(),
        ]
    ).tolist()
    diag = {"ntf/neg_responses": n_resp}
    if n_neg > 0:
        diag["ntf/kept_frac"] = n_kept / n_neg
    if n_kept > 0:
        diag["ntf/kept_logp_mean"] = s_kept / n_kept
    if n_masked > 0:
        diag["ntf/masked_logp_mean"] = s_masked / n_masked
    return diag
