"""RLOO: REINFORCE with the leave-one-out baseline (methods.md §3.4).

*Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs*,
arXiv 2402.14740.

    A_i = r_i - (1/(G-1)) sum_{j != i} r_j = G/(G-1) (r_i - mean_u r)

with the clipped surrogate of C6 (as in verl). All-wrong/all-right groups give A = 0; n = 1 is an error.
"""

from __future__ import annotations

import torch

from negrl.methods.common import Groups
from negrl.methods.registry import Method, Paper, register


@register("rloo")
class RLOO(Method):
    """RLOO (Back to Basics, arXiv 2402.14740): leave-one-out baseline."""

    paper = Paper("RLOO", "2402.14740", "Back to Basics: Revisiting REINFORCE Style Optimization for RLHF in LLMs")
    requires_groups = 2
    paper_loss_agg = "seq-mean-token-sum-norm"  # the paper sums log-probs per sequence; nearest mode

    def advantages(self, batch, groups: Groups):
        r = batch.rewards.to(torch.float64)
        G = groups.broadcast(groups.size.to(torch.float64))
        return G / (G - 1.0) * (r - groups.broadcast(groups.mean(r)))
