"""NFT: Negative-aware Fine-Tuning (methods.md §3.8).

*Bridging Supervised Learning and Reinforcement Learning in Math Reasoning*, arXiv 2505.18116 (code
NVlabs/NFT ``dp_actor.py``). The rollout policy mixes a positive and a negative policy,
pi_old = r_q pi+ + (1 - r_q) pi-. Only pi+ (the LLM) is trained; the implicit negative policy
pi- = (pi_old - r pi+)/(1 - r) is fitted by maximum likelihood on the wrong answers, which moves the same
parameters. Per group r = mean_u r, r_c = clamp(r, 0.02, 0.98), prompt weight omega; per token
lambda = clamp(l - l_old, -c, c), R = exp(lambda):

    correct:  x = -omega * lambda                                         (SFT; no ratio factor, no clip)
    wrong:    x = -omega * neg_weight * log STmax((1 - r_c R)/(1 - r_c), eps)

STmax(y, eps) has the forward value max(y, eps) and passes the gradient of y (``clamp_preserve_grad``): a
``torch.clamp`` would zero the negative gradient whenever R > 1 (with eps = 1). On-policy the weights are
w = omega (r - (1 - r) neg_weight r_c/(1 - r_c)): omega = 1 - r gives Dr. GRPO's advantages, omega =
sqrt((1 - r)/r) GRPO's with population std (invariant (a)). Degenerate groups follow the paper's limit
(all-wrong: x = 0; all-right: omega(1) = 0, uniform: SFT) unless ``clamp_degenerate_groups`` reproduces the
official code (r_c everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from negrl.errors import ConfigError
from negrl.methods.common import Groups, clamped_log_ratio
from negrl.methods.registry import CommonOptions, Method, Paper, register


def straight_through_max(y: Tensor, eps: float) -> Tensor:
    """Forward max(y, eps), backward d/dy = 1 everywhere (NVlabs/NFT ``clamp_preserve_grad``).

    Written as max(y, eps).detach() + (y - y.detach()): the added term is exactly 0 in the forward pass, so
    the value is exactly max(y, eps) even for huge |y| (the form y + sg(max(y, eps) - y) can round to <= 0)."""
    return torch.clamp(y.detach(), min=eps) + (y - y.detach())


def nft_token_loss(
    log_ratio: Tensor, rhat_c: Tensor, pos_coef: Tensor, neg_coef: Tensor, neg_clip: float
) -> tuple[Tensor, Tensor]:
    """x = -pos_coef * lambda - neg_coef * log STmax((1 - r_c R)/(1 - r_c), eps); pos_coef = omega r,
    neg_coef = omega neg_weight (1 - r), per response [B] or per token. Returns (x, argument y)."""
    rhat_c = rhat_c[:, None] if rhat_c.dim() == 1 else rhat_c
    y = (1.0 - rhat_c * log_ratio.exp()) / (1.0 - rhat_c)
    neg = torch.log(straight_through_max(y, neg_clip))
    pos_coef = pos_coef[:, None] if pos_coef.dim() == 1 else pos_coef
    neg_coef = neg_coef[:, None] if neg_coef.dim() == 1 else neg_coef
    return -pos_coef * log_ratio - neg_coef * neg, y


@dataclass
class NFTOptions(CommonOptions):
    """NFT options (official 7B script: eps 1.0, omega 1 - r, r clamp [0.02, 0.98], neg_weight 1)."""

    omega: Literal["one_minus_r", "grpo_sqrt", "uniform"] = "one_minus_r"
    """Prompt weight: 1 - r (= Dr. GRPO), sqrt((1 - r)/r) (= GRPO population std) or 1."""
    neg_clip: float = 1.0
    """eps of the straight-through max on the negative-likelihood argument."""
    neg_weight: float = 1.0
    """Weight of the wrong-answer term (0 gives RFT with omega = uniform)."""
    rhat_clamp: tuple[float, float] = (0.02, 0.98)
    """Clamp of the group accuracy r (inactive for mixed groups when G <= 50)."""
    clamp_degenerate_groups: bool = False
    """Use the clamped r also in all-wrong/all-right groups (the official code) instead of the exact limit."""


@register("nft")
class NFT(Method):
    """Negative-aware Fine-Tuning (arXiv 2505.18116): implicit negative policy, straight-through clip."""

    paper = Paper("NFT", "2505.18116", "Bridging Supervised Learning and Reinforcement Learning in Math Reasoning")
    Options = NFTOptions
    requires_groups = 2
    default_filter = "mixed"
    paper_loss_agg = "constant"

    def check_options(self) -> None:
        low, high = self.options.rhat_clamp
        if not 0 < low <= high < 1 or self.options.neg_clip <= 0:
            raise ConfigError("method 'nft': need 0 < rhat_clamp[0] <= rhat_clamp[1] < 1 and neg_clip > 0")

    def omega(self, rhat_c: Tensor) -> Tensor:
        if self.options.omega == "one_minus_r":
            return 1.0 - rhat_c
        if self.options.omega == "grpo_sqrt":
            return ((1.0 - rhat_c) / rhat_c).sqrt()
        return torch.ones_like(rhat_c)

    def advantages(self, batch, groups: Groups):
        o = self.options
        r = batch.rewards.to(torch.float64)
        rhat_g = groups.mean(r)
        rhat_c_g = rhat_g.clamp(*o.rhat_clamp)
        omega_g = self.omega(rhat_c_g)
        pos_g, neg_g = omega_g.clone(), omega_g * o.neg_weight
        if not o.clamp_degenerate_groups:  # the paper's limit, without evaluating 1/r or 1/(1 - r) there
            num_correct = groups.correct_counts(r)
            all_wrong, all_right = num_correct == 0, num_correct == groups.size
            neg_g = torch.where(all_wrong, 0.0, neg_g)
            pos_g = torch.where(all_right & (o.omega != "uniform"), 0.0, pos_g)
        rhat_c = groups.broadcast(rhat_c_g)
        pos_coef = groups.broadcast(pos_g) * r
        neg_coef = groups.broadcast(neg_g) * (1.0 - r)
        # on-policy weight (R = 1): omega (r - (1 - r) neg_weight r_c / ((1 - r_c) max(1, eps)))
        weight = pos_coef - neg_coef * rhat_c / ((1.0 - rhat_c) * max(1.0, o.neg_clip))
        tensors = {"rhat_c": rhat_c, "pos_coef": pos_coef, "neg_coef": neg_coef}
        diagnostics = {"nft/rhat_mean": float(rhat_g.mean()), "nft/omega_mean": float(omega_g.mean())}
        return weight, tensors, diagnostics

    def policy_token_loss(self, batch, prep):
        o = self.options
        log_ratio = clamped_log_ratio(batch.logp, batch.old_logp, o.log_ratio_clamp)
        t = prep.tensors
        x, y = nft_token_loss(log_ratio, t["rhat_c"], t["pos_coef"], t["neg_coef"], o.neg_clip)
        with torch.no_grad():
            m = batch.mask.to(torch.float64)
            ratio = log_ratio.detach().exp()
            wrong = m * (batch.rewards <= 0.5)[:, None]
            no_clip = torch.zeros_like(batch.mask)
            info = {
                "ratio": ratio,
                "clip_high": no_clip,
                "clip_low": no_clip,
                "nft/ratio_mean": (ratio * m).sum() / m.sum().clamp(min=1),
                "nft/neg_clip_frac": (wrong * (y.detach() < o.neg_clip)).sum() / wrong.sum().clamp(min=1),
            }
        return x, info
