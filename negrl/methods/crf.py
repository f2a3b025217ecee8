"""C-RF: contrastive REINFORCE with a single rollout per prompt (methods.md §3.9).

*Rethinking Groups in Critic-Free RLVR* (RG), arXiv 2606.17250 (no public code; reconstructed from the
paper's description). Paper form, over the batch's N+ positive and N- negative responses:

    l+(o) = (1/|o|) sum_t min(rho_t, 1 + eps_high),  l-(o) = (1/|o|) sum_{t in K(o)} max(rho_t, 1 - eps_low)
    L = -1/2 (mean_pos l+ - mean_neg l-)     (one polarity only: L = -mean_pos l+ or +mean_neg l-)

Equivalent advantage form used here (exact with seq-mean-token-mean when the mini-batch is the rollout
batch): p = N+/N over the rollout batch,

    A_i = +1/(2p) if r_i = 1,  -1/(2(1-p)) if r_i = 0;  p in {0, 1}: A_i = 2 r_i - 1,

i.e. REINFORCE with the batch-mean baseline p scaled by 1/(2p(1-p)). Clip eps_low 0.2, eps_high 10; NTF on
by default (keep 0.1, the paper's C-RF + NTF; ntf_keep: null gives plain C-RF). Groups are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from negrl.methods.common import Groups
from negrl.methods.registry import CommonOptions, Method, Paper, register


@dataclass
class CRFOptions(CommonOptions):
    """C-RF options (paper, ALFWorld: Qwen2.5-1.5B-Instruct, n = 1, 64 prompts per rollout)."""

    clip_high: float = 10.0
    """eps_high 10: almost no upper clip on positive responses."""
    ntf_keep: float | None = 0.1
    """NTF keep fraction on negative responses (None = plain C-RF)."""


@register("crf")
class CRF(Method):
    """Contrastive REINFORCE (Rethinking Groups, arXiv 2606.17250): batch-level +-1/(2p) advantages."""

    paper = Paper("RG C-RF", "2606.17250", "Rethinking Groups in Critic-Free RLVR")
    Options = CRFOptions
    requires_groups = 1
    paper_loss_agg = "seq-mean-token-mean"

    def advantages(self, batch, groups: Groups):
        r = batch.rewards.to(torch.float64)
        correct = r > 0.5
        p = correct.to(torch.float64).mean()
        degenerate = (p == 0) | (p == 1)
        p_safe = p.clamp(1e-12, 1 - 1e-12)  # only the degenerate batch would divide by zero (C10)
        return torch.where(degenerate, 2.0 * r - 1.0, torch.where(correct, 0.5 / p_safe, -0.5 / (1.0 - p_safe)))
