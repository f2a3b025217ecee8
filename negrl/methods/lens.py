"""LENS: learning from all-wrong groups by confidence reweighting (methods.md §3.7).

*Don't Waste Mistakes: Leveraging Negative RL-Groups via Confidence Reweighting*, arXiv 2510.08696.

Theory (Thm. 1): model P(correct | q, o) = pi(o|q) / D(q); the negative log-likelihood
-[r log pi + (1 - r) log(1 - pi/D)] has gradient -r~ grad log pi with the calibrated reward
    r~ = r - (1 - r) pi / (D - pi),
treated as a constant reward. Per group u, from the rollout policy (no grad, float64):
    1. log p_i = sum_t m l_old / sum_t m                   (length-normalized confidence, p in (0, 1])
    2. all-right group -> A = 0
    3. log F = log 2 + max_j log p_j;  mixed: log D_imp = log G - logsumexp_{r_i=1}(-log p_i),
       log D = max(log D_imp, log F);  all-wrong: log D = log F
    4. q_i = p_i / (D - p_i) = 1 / expm1(log D - log p_i)  in (0, 1]
    5. r~_i = r_i - (1 - r_i) q_i / G                       (1/G in every group)
    6. mixed: A = (r~ - mean r~) / (std r~ + adv_eps);  all-wrong: A = alpha (r~ - mean r~)
Loss J = J_GRPO[mixed] + alpha J_GRPO[all-wrong], alpha folded into A, one shared denominator.
Modes: ``full``; ``mixed_only`` (all-wrong groups get A = 0); ``negative_only`` (mixed groups use r, i.e.
plain GRPO advantages; all-wrong groups as in full).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from negrl.errors import ConfigError
from negrl.methods.common import Groups, group_std_advantage, response_mean
from negrl.methods.registry import CommonOptions, Method, Paper, register

log = logging.getLogger(__name__)


def calibrated_reward(log_conf: Tensor, r: Tensor, log_D: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """r~ = r - (1 - r) * scale * conf / (D - conf) = r - (1 - r) * scale / expm1(log_D - log_conf).

    Log space throughout (C10); requires log_D > log_conf (the LENS floor guarantees >= log 2)."""
    return r - (1.0 - r) * scale / torch.expm1(log_D - log_conf)


@dataclass
class LENSOptions(CommonOptions):
    """LENS options (paper: alpha 0.25, G 16, eps 0.2, no KL)."""

    alpha: float = 0.25
    """Weight of the all-wrong-group term (folded into their advantages)."""
    mode: Literal["full", "mixed_only", "negative_only"] = "full"
    """Ablation: full, mixed_only (all-wrong groups off), negative_only (mixed groups use plain r)."""


@register("lens")
class LENS(Method):
    """LENS (Don't Waste Mistakes, arXiv 2510.08696): calibrated rewards for all-wrong groups."""

    paper = Paper("LENS", "2510.08696", "Don't Waste Mistakes: Leveraging Negative RL-Groups via Confidence Reweighting")
    Options = LENSOptions
    requires_groups = 2
    paper_loss_agg = "seq-mean-token-mean"

    def check_options(self) -> None:
        if self.options.alpha < 0:
            raise ConfigError(f"method 'lens': alpha must be >= 0, got {self.options.alpha}")
        if self.filters_groups:
            log.warning("lens with dynamic sampling removes the all-wrong groups LENS exists for (ablation only)")

    def advantages(self, batch, groups: Groups):
        o = self.options
        r = batch.rewards.to(torch.float64)
        correct = r > 0.5
        size = groups.size.to(torch.float64)
        num_correct = groups.sum(r)
        all_wrong_g = num_correct == 0
        all_right_g = num_correct == size
        all_wrong, all_right = groups.broadcast(all_wrong_g), groups.broadcast(all_right_g)
        mixed = ~all_wrong & ~all_right

        # 1. log p_i, the masked mean in float64 (C10)
        log_pbar = response_mean(batch.old_logp.to(torch.float64), batch.mask)
        # 3. D: floor F = 2 max p; D_imp = [(1/G) sum_i r_i / p_i]^-1 (mixed groups)
        log_floor = math.log(2.0) + groups.max(log_pbar)
        neg_log_pbar_correct = torch.where(correct, -log_pbar, -torch.inf)
        lse_max = groups.max(neg_log_pbar_correct)
        lse_max = torch.where(torch.isfinite(lse_max), lse_max, 0.0)  # groups with no correct response
        lse = lse_max + groups.sum((neg_log_pbar_correct - groups.broadcast(lse_max)).exp()).log()
        log_D_imp = size.log() - lse
        log_D_g = torch.where(all_wrong_g, log_floor, torch.maximum(log_D_imp, log_floor))
        log_D = groups.broadcast(log_D_g)
        # 4-5. calibrated reward, 1/G in every group
        G = groups.broadcast(size)
        r_cal = calibrated_reward(log_pbar, r, log_D, 1.0 / G)
        # 6. advantages
        r_mixed = r if o.mode == "negative_only" else r_cal
        adv_mixed = group_std_advantage(r_mixed, groups, o.std, o.adv_eps)
        alpha = 0.0 if o.mode == "mixed_only" else o.alpha
        adv_wrong = alpha * (r_cal - groups.broadcast(groups.mean(r_cal)))
        zero = torch.zeros_like(r)
        adv = torch.where(mixed, adv_mixed, torch.where(all_wrong, adv_wrong, zero))

        pbar = log_pbar.exp()
        floor_active = (log_floor >= log_D_imp) & ~all_wrong_g & ~all_right_g
        wrong = ~correct
        means = {
            "lens/pbar_wrong_mean": (pbar, wrong),
            "lens/pbar_wrong_mean_allwrong": (pbar, all_wrong),
            "lens/pbar_correct_mean": (pbar, correct),
            "lens/abs_adv_mean_allwrong": (adv.abs(), all_wrong),
        }
        stats = torch.stack(
            [torch.stack([(v * s).sum(), s.sum().double()]) for v, s in means.values()]
            + [torch.stack([floor_active.sum().double(), (~all_wrong_g & ~all_right_g).sum().double()])]
        ).tolist()
        diagnostics = {key: num / den for key, (num, den) in zip(list(means) + ["lens/frac_floor_active"], stats) if den > 0}
        tensors = {"pbar": pbar, "log_D": log_D, "calibrated_reward": r_cal}
        return adv, tensors, diagnostics
