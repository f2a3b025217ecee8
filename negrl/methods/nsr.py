"""NSR and W-REINFORCE: the negative-sample-reinforcement controls (methods.md §3.11).

*The Surprising Effectiveness of Negative Reinforcement in LLM Reasoning*, arXiv 2506.01347 (code
TianHongZXY/RLVR-Decomposed ``compute_psr_nsr_outcome_advantage``). No baseline, no normalization:

    nsr:          A_i = r_i - 1            (-1 on wrong responses, 0 on correct ones)
    w_reinforce:  A_i = lam r_i - (1 - r_i) (lam = 0.1)

with the clipped surrogate (eps 0.2, beta 0) and verl's token-mean. All-wrong groups get -1 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from negrl.methods.common import Groups
from negrl.methods.registry import CommonOptions, Method, Paper, register

PAPER = Paper("NSR", "2506.01347", "The Surprising Effectiveness of Negative Reinforcement in LLM Reasoning")


@register("nsr")
class NSR(Method):
    """Negative sample reinforcement only (arXiv 2506.01347): A = r - 1."""

    paper = PAPER
    paper_loss_agg = "token-mean"

    def advantages(self, batch, groups: Groups):
        return batch.rewards.to(torch.float64) - 1.0


@dataclass
class WReinforceOptions(CommonOptions):
    """W-REINFORCE options."""

    lam: float = 0.1
    """Weight lambda of correct responses (wrong ones get -1)."""


@register("w_reinforce")
class WReinforce(Method):
    """Weighted REINFORCE (arXiv 2506.01347): A = lam r - (1 - r)."""

    paper = PAPER
    Options = WReinforceOptions
    paper_loss_agg = "token-mean"

    def advantages(self, batch, groups: Groups):
        r = batch.rewards.to(torch.float64)
        return self.options.lam * r - (1.0 - r)
