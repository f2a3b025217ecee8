"""The two records every method works on (methods.md §2).

``RolloutBatch`` is what the trainer hands a method: B responses padded to T tokens, their old (rollout)
log-probs, response mask, binary rewards, prompt uids and truncation flags, plus the current-policy
log-probs ``logp`` (with grad) when computing a loss. ``Prepared`` is what ``Method.prepare`` returns once
per rollout step (methods.md C5): advantages, on-policy token weights, the NTF mask and rollout-level
diagnostics, frozen for every mini-batch and epoch. Both slice by rows with ``select``.

    >>> import torch
    >>> b = RolloutBatch(old_logp=torch.zeros(4, 3), mask=torch.ones(4, 3, dtype=torch.bool),
    ...                  rewards=torch.tensor([1., 0, 0, 0]), uid=torch.zeros(4, dtype=torch.long),
    ...                  truncated=torch.zeros(4, dtype=torch.bool))
    >>> b.select([0, 2]).rewards
    tensor([1., 0.])
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

from negrl.errors import NegrlError


class GroupSizeError(NegrlError, ValueError):
    """A prompt uid has fewer responses than the method needs (methods.md §2, invariant (e))."""


def _rows_index(rows: Tensor | list[int] | range, device: torch.device) -> Tensor:
    if isinstance(rows, Tensor):
        if rows.dtype == torch.bool:
            return rows.to(device).nonzero(as_tuple=True)[0]
        return rows.to(device=device, dtype=torch.long)
    return torch.as_tensor(list(rows), dtype=torch.long, device=device)


@dataclass
class RolloutBatch:
    """B responses padded to T tokens; tensors may live on any (one) device."""

    old_logp: Tensor
    """[B,T] float, no grad: rollout-policy token log-probs, temperature-scaled (methods.md C4)."""
    mask: Tensor
    """[B,T] bool: response tokens (incl. EOS), False on padding."""
    rewards: Tensor
    """[B] float in {0, 1}: 1 = the verifier says correct; truncated responses have 0 (C1, C2)."""
    uid: Tensor
    """[B] int64: prompt id; responses with the same uid form a group (C3)."""
    truncated: Tensor
    """[B] bool: no EOS within max_response_length."""
    logp: Tensor | None = None
    """[B,T] current-policy token log-probs with grad; absent in ``prepare``."""
    ref_logp: Tensor | None = None
    """[B,T] frozen reference-model token log-probs; needed only when kl_beta > 0."""
    entropy: Tensor | None = None
    """[B,T] current-policy token entropy (no grad), for the actor/entropy diagnostic only."""

    def select(self, rows: Tensor | list[int] | range) -> RolloutBatch:
        """The sub-batch of the given rows (index list, int tensor or bool mask), in that order."""
        index = _rows_index(rows, self.old_logp.device)
        return RolloutBatch(
            **{f.name: (None if (v := getattr(self, f.name)) is None else v[index]) for f in fields(self)}
        )

    def with_logp(self, logp: Tensor, entropy: Tensor | None = None) -> RolloutBatch:
        """A copy with the current-policy log-probs (and optionally entropy) set."""
        return replace(self, logp=logp, entropy=entropy if entropy is not None else self.entropy)

    @property
    def response_lengths(self) -> Tensor:
        """[B] int64 |o_i|: response tokens including EOS."""
        return self.mask.sum(-1)


@dataclass
class Prepared:
    """Everything a method computes once per rollout step (no grad) and reuses for every mini-batch."""

    adv: Tensor
    """[B,T] advantage per token before NTF (0 on padding); for nft/rft the on-policy token weight."""
    weight: Tensor
    """[B,T] on-policy token weight w = -dx/dl at rho = 1, beta = 0 (= ntf_mask * adv)."""
    ntf_mask: Tensor
    """[B,T] bool: tokens whose policy-gradient term counts (= mask when NTF is off; methods.md §3.10)."""
    tensors: dict[str, Tensor] = field(default_factory=dict)
    """Method-specific per-response [B] or per-token [B,T] tensors (e.g. rhat, pbar, omega)."""
    diagnostics: dict[str, float] = field(default_factory=dict)
    """Rollout-level diagnostics of methods.md §5 (rollout batch, before any mini-batch split)."""

    def select(self, rows: Tensor | list[int] | range) -> Prepared:
        """The rows of a mini-batch; diagnostics stay those of the whole rollout batch."""
        index = _rows_index(rows, self.adv.device)
        return Prepared(
            adv=self.adv[index],
            weight=self.weight[index],
            ntf_mask=self.ntf_mask[index],
            tensors={k: v[index] for k, v in self.tensors.items()},
            diagnostics=dict(self.diagnostics),
        )
