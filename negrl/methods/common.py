"""Shared pieces of every method: groups by uid, masked statistics, the clipped surrogate, KL estimators,
loss aggregation and the rollout-level diagnostics (methods.md C3, C6-C9, §5).

Aggregation across micro-batches (C8). The loss of an optimizer mini-batch is AGG(x, m) over all of its
rows, and every mode is a sum of per-response numerators divided by one mini-batch constant:

    token-mean               sum_{i,t} m x          / sum_{i,t} m        (token count)
    seq-mean-token-mean      sum_i [sum_t m x / |o_i|] / N               (number of responses)
    seq-mean-token-sum-norm  sum_{i,t} m x          / (N * L_max)
    constant                 sum_{i,t} m x          / C                  (agg_constant)

So a trainer that splits a mini-batch into micro-batches computes the denominator ONCE on the whole
mini-batch, ``den = method.aggregation_denominator(mini_batch)`` (or ``aggregation_denominator(mask, ...)``
below), passes ``denominator=den`` to every micro-batch's ``method.loss`` and sums (accumulates) the
micro-batch gradients: the result equals the unsplit loss exactly (invariant (k)). Across data-parallel
ranks, sum the denominators of all ranks (``all_reduce`` of den, every mode but ``constant``) and multiply
each rank's loss by the world size before DDP/FSDP averages the gradients.

    >>> import torch
    >>> x = torch.tensor([[1., 1, 0, 0], [-1, -1, -1, -1]]); m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool()
    >>> round(aggregate(x, m, "token-mean").item(), 4), round(aggregate(x, m, "constant").item(), 4)
    (-0.3333, -0.002)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm", "constant")


# ---------------------------------------------------------------------------------------------------
# Groups by prompt uid (C3): statistics are always computed by uid, never by position.


@dataclass
class Groups:
    """The groups of a batch: ``index[i]`` is the group (0..num-1) of response i."""

    index: Tensor
    """[B] int64 group number of each response."""
    uid: Tensor
    """[num] the uid of each group."""
    size: Tensor
    """[num] int64 G_u."""

    @property
    def num(self) -> int:
        return self.uid.numel()

    def sum(self, values: Tensor) -> Tensor:
        """[num] per-group sum of a per-response [B] tensor."""
        return values.new_zeros(self.num).index_add_(0, self.index, values)

    def mean(self, values: Tensor) -> Tensor:
        """[num] per-group mean."""
        return self.sum(values) / self.size.to(values.dtype)

    def std(self, values: Tensor, kind: str = "sample") -> Tensor:
        """[num] per-group std (C9): ``sample`` divides by G - 1 (groups of 1 give 0), ``population`` by G."""
        centered = values - self.broadcast(self.mean(values))
        size = self.size.to(values.dtype)
        dof = (size - 1).clamp(min=1) if kind == "sample" else size
        return (self.sum(centered * centered) / dof).sqrt()

    def max(self, values: Tensor) -> Tensor:
        """[num] per-group max."""
        out = values.new_full((self.num,), -math.inf)
        return out.scatter_reduce(0, self.index, values, reduce="amax", include_self=True)

    def broadcast(self, per_group: Tensor) -> Tensor:
        """[B] the value of each response's group."""
        return per_group[self.index]

    def correct_counts(self, rewards: Tensor) -> Tensor:
        """[num] number of correct responses (reward 1) per group."""
        return self.sum((rewards > 0.5).to(torch.float64)).round().long()


def group_by_uid(uid: Tensor) -> Groups:
    """Group responses by prompt uid (any order, any interleaving)."""
    unique, index, size = torch.unique(uid, return_inverse=True, return_counts=True)
    return Groups(index=index, uid=unique, size=size)


def safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator where the denominator is non-zero, 0 elsewhere, without ever evaluating x/0
    (C10). Used where a zero denominator comes with a zero numerator (a group whose values are all equal)."""
    zero = denominator == 0
    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, denominator))


def group_std_advantage(values: Tensor, groups: Groups, std: str, eps: float) -> Tensor:
    """GRPO normalization (C9): (v - mean_u v) / (std_u v + eps), eps outside the square root.

    An all-equal group has numerator exactly 0, so A = 0 (also with eps = 0, where 0/0 is never evaluated)."""
    mean = groups.broadcast(groups.mean(values))
    return safe_divide(values - mean, groups.broadcast(groups.std(values, std)) + eps)


# ---------------------------------------------------------------------------------------------------
# Masked statistics.


def masked_sum(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum()


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Token-weighted mean of x over mask (0 when the mask is empty)."""
    return masked_sum(x, mask) / mask.sum().clamp(min=1)


def masked_whiten(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """verl ``masked_whiten``: (v - mu) / sqrt(var + eps), mu and unbiased var token-weighted over mask."""
    m = mask.to(values.dtype)
    count = m.sum()
    mean = (values * m).sum() / count
    var = (((values - mean) ** 2) * m).sum() / count * (count / (count - 1))
    return (values - mean) * torch.rsqrt(var + eps)


def response_mean(x: Tensor, mask: Tensor) -> Tensor:
    """[B] per-response mean of x over its tokens: sum_t m x / sum_t m."""
    m = mask.to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp(min=1)


# ---------------------------------------------------------------------------------------------------
# Clipped surrogate (C6) and KL (C7).


def clamped_log_ratio(logp: Tensor, old_logp: Tensor, clamp: float) -> Tensor:
    """lambda = clamp(l - l_old, -c, c): a hard clamp (zero gradient outside), C6."""
    return (logp - old_logp).clamp(-clamp, clamp)


def clipped_surrogate(
    ratio: Tensor, adv: Tensor, clip_low: float, clip_high: float, dual_clip_c: float | None = None
) -> Tensor:
    """s = min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A); with dual clip, s = max(s, c A) where A < 0."""
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv)
    if dual_clip_c is not None:
        surrogate = torch.where(adv < 0, torch.maximum(surrogate, dual_clip_c * adv), surrogate)
    return surrogate


def kl_penalty(logp: Tensor, ref_logp: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from samples of pi_theta (Schulman's k1, k2, k3).

    k3 is verl's ``low_var_kl``: exp(l_ref - l) - (l_ref - l) - 1, inner difference clamped to [-20, 20],
    result clamped to [-10, 10] (C7)."""
    if estimator == "k1":
        return logp - ref_logp
    if estimator == "k2":
        return 0.5 * (logp - ref_logp) ** 2
    if estimator == "k3":
        diff = (ref_logp - logp).clamp(-20.0, 20.0)
        return (diff.exp() - diff - 1.0).clamp(-10.0, 10.0)
    raise ValueError(f"unknown KL estimator {estimator!r}; use k1, k2 or k3")


# ---------------------------------------------------------------------------------------------------
# Aggregation (C8).


def aggregation_denominator(
    mask: Tensor, mode: str, max_response_length: int | None = None, agg_constant: float = 1000.0
) -> float:
    """The denominator of AGG over a whole optimizer mini-batch (see the module docstring).

    Counts every response token, including those whose weight is zero (zero-advantage groups, NTF-masked
    tokens, wrong responses under RFT)."""
    if mode == "token-mean":
        return float(mask.sum().item())
    if mode == "seq-mean-token-mean":
        return float(mask.shape[0])
    if mode == "seq-mean-token-sum-norm":
        if max_response_length is None:
            raise ValueError("loss_agg 'seq-mean-token-sum-norm' needs max_response_length")
        return float(mask.shape[0] * max_response_length)
    if mode == "constant":
        return float(agg_constant)
    raise ValueError(f"unknown loss_agg {mode!r}; use one of {', '.join(LOSS_AGG_MODES)}")


def aggregation_numerator(x: Tensor, mask: Tensor, mode: str) -> Tensor:
    """The additive numerator of AGG: per-response token means summed for seq-mean-token-mean, else sum m x."""
    if mode == "seq-mean-token-mean":
        return response_mean(x, mask).sum()
    return masked_sum(x, mask.to(x.dtype))


def aggregate(
    x: Tensor,
    mask: Tensor,
    mode: str,
    denominator: float | None = None,
    max_response_length: int | None = None,
    agg_constant: float = 1000.0,
) -> Tensor:
    """AGG(x, m) (C8); ``denominator`` fixes the mini-batch denominator when x is a micro-batch."""
    if denominator is None:
        denominator = aggregation_denominator(mask, mode, max_response_length, agg_constant)
    return aggregation_numerator(x, mask, mode) / max(denominator, 1e-30)


# ---------------------------------------------------------------------------------------------------
# Rollout-level diagnostics (§5).


def group_fraction_diagnostics(num_correct: Tensor, size: Tensor, suffix: str = "") -> dict[str, float]:
    """batch/frac_{all_wrong,all_right,mixed}_groups from per-group correct counts and sizes."""
    num = max(int(size.numel()), 1)
    all_wrong = int((num_correct == 0).sum())
    all_right = int((num_correct == size).sum())
    return {
        f"batch/frac_all_wrong_groups{suffix}": all_wrong / num,
        f"batch/frac_all_right_groups{suffix}": all_right / num,
        f"batch/frac_mixed_groups{suffix}": (size.numel() - all_wrong - all_right) / num,
    }


def rollout_diagnostics(
    rewards: Tensor, truncated: Tensor, mask: Tensor, groups: Groups, weight: Tensor
) -> dict[str, float]:
    """Group fractions, accuracy, truncation, lengths, and the token-weighted statistics of w (§5)."""
    diag = group_fraction_diagnostics(groups.correct_counts(rewards).cpu(), groups.size.cpu())
    lengths = mask.sum(-1).to(torch.float64)
    correct = rewards > 0.5
    m = mask.to(torch.float64)
    w = weight.to(torch.float64)
    tokens = m.sum().clamp(min=1)
    w_mean = (w * m).sum() / tokens
    w_var = (((w - w_mean) ** 2) * m).sum() / tokens
    big = torch.finfo(torch.float64).max
    stats = torch.stack(
        [
            rewards.to(torch.float64).mean(),
            truncated.to(torch.float64).mean(),
            lengths.mean(),
            (lengths * correct).sum(),
            correct.sum().to(torch.float64),
            (m * (w != 0)).sum() / tokens,
            w_mean,
            w_var.sqrt(),
            torch.where(mask, w, big).min(),
            torch.where(mask, w, -big).max(),
        ]
    ).tolist()
    acc, frac_trunc, len_mean, len_correct_sum, num_correct, frac_nonzero, w_mean, w_std, w_min, w_max = stats
    num = rewards.numel()
    diag.update(
        {
            "batch/acc": acc,
            "batch/frac_truncated": frac_trunc,
            "batch/resp_len_mean": len_mean,
            "batch/frac_tokens_with_nonzero_weight": frac_nonzero,
            "adv/mean": w_mean,
            "adv/std": w_std,
            "adv/min": w_min,
            "adv/max": w_max,
        }
    )
    if num_correct > 0:
        diag["batch/resp_len_correct_mean"] = len_correct_sum / num_correct
    if num_correct < num:
        diag["batch/resp_len_wrong_mean"] = (len_mean * num - len_correct_sum) / (num - num_correct)
    return diag
