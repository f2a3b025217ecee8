"""DAPO: clip-higher, token-mean, overlong reward shaping and dynamic sampling (methods.md §3.3).

*DAPO: An Open-Source LLM Reinforcement Learning System at Scale*, arXiv 2503.14476 (verl recipe
volcengine/verl:docs/algo/dapo.md). Signed reward with the soft overlong punishment

    R_i = (2 r_i - 1) + R_len(|o_i|),  R_len = min(0, -(|o| - (L_max - L_cache)) / L_cache * penalty_factor)

(0 up to L_max - L_cache, linearly down to -1 at |o| = L_max, so a truncated response gets R = -2), then
GRPO's group normalization of R (C9) and the clipped surrogate with eps_low 0.2, eps_high 0.28, no KL.
Groups that are all-wrong or all-right (by correctness, not the shaped reward) are removed by dynamic
sampling (C11, criterion ``mixed``), which the trainer runs; ``overlong_filter`` removes truncated responses
from the loss's numerator and denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from negrl.errors import ConfigError
from negrl.methods.common import Groups, group_std_advantage
from negrl.methods.registry import CommonOptions, Method, Paper, register


@dataclass
class DAPOOptions(CommonOptions):
    """DAPO options (paper: Qwen2.5-32B, 512 prompts x 16, L_max 20480, L_cache 4096)."""

    clip_high: float = 0.28
    """Clip-higher: eps_high 0.28 (eps_low stays 0.2)."""
    overlong_shaping: bool = True
    """Add the soft overlong punishment R_len to the signed reward."""
    overlong_buffer_len: int | None = None
    """L_cache; None = floor(0.2 * max_response_length)."""
    overlong_penalty_factor: float = 1.0
    """Slope scale of R_len (-1 at L_max when 1.0)."""
    overlong_filter: bool = False
    """Drop truncated responses from numerator and denominator of the loss."""


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer_len: int, factor: float) -> torch.Tensor:
    """R_len = min(0, -(|o| - (L_max - L_cache)) / L_cache * factor)."""
    excess = lengths.to(torch.float64) - (max_len - buffer_len)
    return (-excess / buffer_len * factor).clamp(max=0.0)


@register("dapo")
class DAPO(Method):
    """DAPO (arXiv 2503.14476): decoupled clip, dynamic sampling, token-mean, overlong shaping."""

    paper = Paper("DAPO", "2503.14476", "DAPO: An Open-Source LLM Reinforcement Learning System at Scale")
    Options = DAPOOptions
    requires_groups = 2
    reward_convention = "signed"
    default_filter = "mixed"
    paper_loss_agg = "token-mean"

    def check_options(self) -> None:
        o = self.options
        if o.overlong_shaping and o.max_response_length is None:
            raise ConfigError("method 'dapo': overlong_shaping needs max_response_length (L_max)")
        if o.overlong_shaping and self.buffer_len < 1:
            raise ConfigError(f"method 'dapo': overlong_buffer_len must be >= 1, got {self.buffer_len}")

    @property
    def buffer_len(self) -> int:
        o = self.options
        return o.overlong_buffer_len if o.overlong_buffer_len is not None else int(0.2 * o.max_response_length)

    def signed_reward(self, batch) -> torch.Tensor:
        """R = (2r - 1) + R_len(|o|) (C1: the +-1 convention lives only inside the method)."""
        o = self.options
        reward = 2.0 * batch.rewards.to(torch.float64) - 1.0
        if o.overlong_shaping:
            lengths = batch.mask.sum(-1)
            reward = reward + overlong_penalty(lengths, o.max_response_length, self.buffer_len, o.overlong_penalty_factor)
        return reward

    def advantages(self, batch, groups: Groups):
        adv = group_std_advantage(self.signed_reward(batch), groups, self.options.std, self.options.adv_eps)
        if self.options.overlong_filter:
            adv = torch.where(batch.truncated, 0.0, adv)
        return adv

    def loss_mask(self, batch):
        if self.options.overlong_filter:
            return batch.mask & ~batch.truncated[:, None]
        return batch.mask
