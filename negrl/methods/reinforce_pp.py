"""REINFORCE++: global, token-weighted advantage whitening (methods.md §3.5).

*REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models*, arXiv 2501.03262.

``reinforce_pp`` (no baseline; RG's batch-level estimator, default n = 1), verl ``masked_whiten`` over the
whole rollout batch (all ranks; ``prepare`` sees the global batch):

    mu = sum_{i,t} m r_i / M,  sigma^2 = [sum_{i,t} m (r_i - mu)^2 / M] * M/(M-1),  M = sum m
    A_i = (r_i - mu) / sqrt(sigma^2 + 1e-8)

Long responses weigh more in mu and sigma; groups are ignored. ``reinforce_pp_baseline`` first subtracts
the group mean (A~_i = r_i - mean_u r), then whitens A~ the same way (degenerate groups get -mu/sigma).
The KL-in-reward of the paper is not supported (methods.md §7.22): KL is only the k3 loss term.
"""

from __future__ import annotations

import torch

from negrl.methods.common import Groups, masked_whiten
from negrl.methods.registry import Method, Paper, register

PAPER = Paper("REINFORCE++", "2501.03262", "REINFORCE++: A Simple and Efficient Approach for Aligning LLMs")


def token_weighted_whiten(per_response: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] whitened values, mean and unbiased variance weighted by each response's token count."""
    if int(mask.sum()) < 2:
        raise ValueError("REINFORCE++ whitening needs at least 2 response tokens in the batch (M >= 2)")
    values = per_response[:, None].expand(mask.shape)
    return masked_whiten(values, mask)[:, 0]


@register("reinforce_pp")
class ReinforcePP(Method):
    """REINFORCE++ (arXiv 2501.03262) without baseline: global token-weighted whitening of r."""

    paper = PAPER
    requires_groups = 1
    paper_loss_agg = "token-mean"

    def advantages(self, batch, groups: Groups):
        return token_weighted_whiten(batch.rewards.to(torch.float64), batch.mask)


@register("reinforce_pp_baseline")
class ReinforcePPBaseline(Method):
    """REINFORCE++ with group baseline (arXiv 2501.03262): whiten r - mean_u r over the batch."""

    paper = PAPER
    requires_groups = 2
    paper_loss_agg = "token-mean"

    def advantages(self, batch, groups: Groups):
        r = batch.rewards.to(torch.float64)
        return token_weighted_whiten(r - groups.broadcast(groups.mean(r)), batch.mask)
