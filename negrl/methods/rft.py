"""RFT: online rejection-sampling fine-tuning, SFT on the correct responses (methods.md §3.6).

*Scaling Relationship on Learning Mathematical Reasoning with Large Language Models*, arXiv 2308.01825
(offline origin; this is the online variant NFT uses as a baseline: the NVlabs/NFT code with
``neg_weight = 0``, ``normalize = 0``). Per token

    x_{i,t} = -r_i * clamp(l - l_old, -20, 20)      (= -log R on correct responses)

so the gradient is -grad l on correct tokens (plain SFT: no ratio factor, no clip) and 0 on wrong ones,
whose tokens still count in the denominator (C8). Dynamic sampling keeps mixed groups by default;
``keep_all_right`` switches the criterion to ``has_correct`` so all-right groups are trained on too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from negrl.methods.common import Groups, clamped_log_ratio
from negrl.methods.registry import CommonOptions, Method, Paper, register


@dataclass
class RFTOptions(CommonOptions):
    """RFT options (NFT pipeline baseline)."""

    keep_all_right: bool = False
    """Filter with has_correct instead of mixed, so all-right groups are kept (SFT signal)."""


@register("rft")
class RFT(Method):
    """Online RFT (arXiv 2308.01825, as in the NFT paper's baselines): SFT on correct samples."""

    paper = Paper("RFT", "2308.01825", "Scaling Relationship on Learning Mathematical Reasoning with LLMs")
    Options = RFTOptions
    requires_groups = 1
    default_filter = "mixed"
    paper_loss_agg = "constant"

    @property
    def filter_criterion(self):
        return "has_correct" if self.options.keep_all_right else "mixed"

    def advantages(self, batch, groups: Groups):
        return batch.rewards.to(torch.float64)  # the on-policy token weight: 1 on correct, 0 on wrong

    def policy_token_loss(self, batch, prep):
        log_ratio = clamped_log_ratio(batch.logp, batch.old_logp, self.options.log_ratio_clamp)
        x = -prep.adv * log_ratio
        no_clip = torch.zeros_like(batch.mask)
        return x, {"ratio": log_ratio.detach().exp(), "clip_high": no_clip, "clip_low": no_clip}
