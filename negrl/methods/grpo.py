"""GRPO and Dr. GRPO: group-relative advantages with the clipped surrogate (methods.md §3.1, §3.2).

GRPO: *DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models*, arXiv 2402.03300.
    A_i = (r_i - mean_u r) / (std_u r + adv_eps)                       (C9: sample std by default)
Dr. GRPO: *Understanding R1-Zero-Like Training: A Critical Perspective*, arXiv 2503.20783.
    A_i = r_i - mean_u r                                               (no std; paper aggregation Σ/(N L_max))

Both use the clipped surrogate of C6 on every token of o_i. All-wrong and all-right groups have a numerator
of exactly 0, hence no policy gradient (their tokens still count in the denominator). A group of one
response is an error (verl would silently use mean 0, std 1, i.e. A = r).

    >>> import torch
    >>> from negrl.methods import get_method, RolloutBatch
    >>> b = RolloutBatch(old_logp=torch.zeros(4, 2), mask=torch.ones(4, 2, dtype=torch.bool),
    ...                  rewards=torch.tensor([1., 0, 0, 0]), uid=torch.zeros(4, dtype=torch.long),
    ...                  truncated=torch.zeros(4, dtype=torch.bool))
    >>> get_method("grpo").prepare(b).adv[:, 0]
    tensor([ 1.5000, -0.5000, -0.5000, -0.5000])
"""

from __future__ import annotations

import torch

from negrl.methods.common import Groups, group_std_advantage
from negrl.methods.registry import Method, Paper, register


@register("grpo")
class GRPO(Method):
    """Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300)."""

    paper = Paper("GRPO", "2402.03300", "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open LMs")
    requires_groups = 2
    paper_loss_agg = "seq-mean-token-mean"

    def advantages(self, batch, groups: Groups):
        rewards = batch.rewards.to(torch.float64)
        return group_std_advantage(rewards, groups, self.options.std, self.options.adv_eps)


@register("dr_grpo")
class DrGRPO(Method):
    """Dr. GRPO (Understanding R1-Zero-Like Training, arXiv 2503.20783): A = r - mean_u r."""

    paper = Paper("Dr. GRPO", "2503.20783", "Understanding R1-Zero-Like Training: A Critical Perspective")
    requires_groups = 2
    paper_loss_agg = "seq-mean-token-sum-norm"

    def advantages(self, batch, groups: Groups):
        rewards = batch.rewards.to(torch.float64)
        return rewards - groups.broadcast(groups.mean(rewards))
