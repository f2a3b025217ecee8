"""The trainer's forward/backward work: rollout-policy log-probs (C4) and the mini-batch updates (C5, C8).

Micro-batches are length-sorted (longest first, so a step that runs out of memory does so at once) and
bounded by ``micro_batch_size`` rows and, optionally, ``micro_batch_tokens`` padded tokens; each
micro-batch's forward trims the padding columns none of its rows uses. Gradient accumulation over the
micro-batches of a mini-batch uses the mini-batch's C8 denominator, fixed before any backward, so the
gradient does not depend on how the mini-batch is split (over micro-batches or over ranks).
See ``negrl.train.distributed`` for the data-parallel semantics, and ``negrl.train.grad_noise`` for the
half-batch gradient cosine (``grad_noise=True``: each half of the mini-batch's groups is micro-batched on its
own, and the gradient is copied between the halves).
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from negrl.train.distributed import (
    DistContext,
    all_reduce_max_int,
    all_reduce_sum_,
    gradient_sync,
    reduce_diagnostics,
    share,
)
from negrl.train.grad_noise import grad_noise_metrics, grad_snapshot, half_cosine, split_halves
from negrl.train.logprobs import PackedSequences, response_logprobs


def plan_micro_batches(lengths: Sequence[int], max_rows: int, max_tokens: int | None = None) -> list[list[int]]:
    """Positions 0..len-1 grouped into micro-batches: sorted by length (longest first, ties by position),
    at most ``max_rows`` rows and ``max_tokens`` padded tokens (rows x longest row) each, never empty.

        >>> plan_micro_batches([3, 9, 5, 9], max_rows=2)
        [[1, 3], [2, 0]]
        >>> plan_micro_batches([3, 9, 5, 9], max_rows=8, max_tokens=20)
        [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    plan: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, int(lengths[i]))
        if current and (len(current) >= max_rows or (max_tokens and grown * (len(current) + 1) > max_tokens)):
            plan.append(current)
            current, grown = [], int(lengths[i])
        current.append(i)
        longest = grown
    if current:
        plan.append(current)
    return plan


def mean_dicts(dicts: Sequence[dict[str, float]], weights: Sequence[float] | None = None) -> dict[str, float]:
    """Key-wise (weighted) mean, ``*_max`` keys: max; None and NaN values are skipped.

        >>> mean_dicts([{"a": 1.0, "r_max": 2.0}, {"a": 4.0, "r_max": 1.0}], weights=[2, 1])
        {'a': 2.0, 'r_max': 2.0}
    """
    weights = [1.0] * len(dicts) if weights is None else weights
    sums, totals, maxima = defaultdict(float), defaultdict(float), {}
    for d, w in zip(dicts, weights):
        for key, value in d.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            sums[key] += w * value
            totals[key] += w
            maxima[key] = max(maxima.get(key, value), value)
    return {k: (maxima[k] if k.endswith("_max") else sums[k] / totals[k] if totals[k] else 0.0) for k in sums}


@dataclass
class UpdateSettings:
    temperature: float
    micro_batch_size: int
    micro_batch_tokens: int | None
    grad_clip: float
    mini_batches: int
    ppo_epochs: int
    autocast_dtype: torch.dtype | None = None
    sync_every_micro_batch: bool = False
    """Reduce gradients after every micro-batch (FSDP with bf16 parameters: accumulates them in fp32)."""


@torch.no_grad()
def rollout_logprobs(policy, seqs: PackedSequences, settings: UpdateSettings, ctx: DistContext,
                     device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """No-grad token log-probs [B, T] of every row under ``policy`` (old or reference policy, C4). Each rank
    computes a contiguous share of the rows; one all-reduce assembles the whole tensor on every rank."""
    batch, width = seqs.response_mask.shape
    out = torch.zeros(batch, width, dtype=dtype, device=device)
    mine = share(list(range(batch)), ctx)
    lengths = seqs.attention_mask.sum(1).tolist()
    plan = [[mine[i] for i in micro] for micro in
            plan_micro_batches([lengths[r] for r in mine], settings.micro_batch_size, settings.micro_batch_tokens)]
    rounds = all_reduce_max_int(len(plan), ctx, device)  # FSDP: every rank runs as many forwards
    for k in range(rounds):
        rows = torch.tensor(plan[k] if k < len(plan) else [0], dtype=torch.long)
        logp, _ = response_logprobs(policy, seqs.select(rows).to(device), settings.temperature,
                                    autocast_dtype=settings.autocast_dtype)
        if k < len(plan):
            out[rows.to(device)] = logp.to(dtype)
    return all_reduce_sum_(out, ctx)


class PolicyUpdater:
    """Mini-batches of whole groups, ``ppo_epochs`` passes, micro-batched backward with a fixed denominator."""

    def __init__(self, policy, optimizer, scheduler, method, settings: UpdateSettings, ctx: DistContext,
                 device: torch.device) -> None:
        self.policy, self.optimizer, self.scheduler, self.method = policy, optimizer, scheduler, method
        self.settings, self.ctx, self.device = settings, ctx, device
        self.optimizer_steps = 0
        self.last_half_cosines: list[float] = []  # the last update()'s per-update cosines (grad_noise)
        self.tokens = 0  # prompt + response tokens through forward and backward (this rank, padding excluded)

    def _trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.policy.parameters() if p.requires_grad]

    def minibatch_order(self, uids: list[int], shuffle_seed: int) -> list[np.ndarray]:
        order = list(uids)
        random.Random(shuffle_seed).shuffle(order)
        return [chunk for chunk in np.array_split(np.array(order, dtype=np.int64), self.settings.mini_batches)
                if len(chunk)]

    def update(self, batch, seqs: PackedSequences, prep, shuffle_seeds: Sequence[int],
               grad_noise: bool = False) -> dict[str, float]:
        """All optimizer updates of one rollout step (``shuffle_seeds``: one per PPO epoch); ``grad_noise``:
        also measure each update's half-batch gradient cosine (``negrl.train.grad_noise``)."""
        uids = batch.uid.unique().tolist()
        update_diags: list[dict[str, float]] = []
        grad_norms: list[float] = []
        cosines: list[float] = []
        for epoch in range(self.settings.ppo_epochs):
            for chunk in self.minibatch_order(uids, shuffle_seeds[epoch]):
                diag, grad_norm, cosine = self.minibatch_step(batch, seqs, prep, chunk, grad_noise)
                grad_norms.append(grad_norm)
                update_diags.append(diag)
                if cosine is not None:
                    cosines.append(cosine)
        out = mean_dicts(update_diags)
        out["actor/grad_norm"] = float(np.mean(grad_norms)) if grad_norms else 0.0
        out["actor/grad_norm_max"] = float(np.max(grad_norms)) if grad_norms else 0.0
        out["actor/lr"] = self.scheduler.get_last_lr()[0]
        out.update(grad_noise_metrics(cosines))
        self.last_half_cosines = cosines
        return out

    def minibatch_step(self, batch, seqs: PackedSequences, prep, chunk: np.ndarray,
                       grad_noise: bool = False) -> tuple[dict, float, float | None]:
        """One optimizer update on the groups ``chunk`` (global uids), this rank's share of them: the
        diagnostics, the gradient norm, and (``grad_noise``, at least two groups) the half-batch cosine.

        With ``grad_noise`` the groups are split into halves A and B; each rank micro-batches its rows of A,
        then its rows of B (every rank runs as many A rounds, then as many B rounds); the gradients are
        reduced over ranks after the last A round too, then copied (g_A, global), and the final reduction adds
        B's, so g is the same sum as without the split."""
        s, ctx, device = self.settings, self.ctx, self.device
        uid_cpu = batch.uid.cpu()
        rows = torch.nonzero(torch.isin(uid_cpu, torch.as_tensor(chunk)))[:, 0]
        mini = batch.select(rows)
        mini_prep = prep.select(rows)
        denominator = self.method.aggregation_denominator(mini)  # the global mini-batch's (C8)
        mine = set(share(list(chunk), ctx))  # whole groups per rank
        row_uids = uid_cpu[rows].tolist()
        my_pos = [i for i, u in enumerate(row_uids) if u in mine]
        halves = split_halves(chunk) if grad_noise else None
        parts = [my_pos] if halves is None else [[i for i in my_pos if row_uids[i] in half_set]
                                                 for half_set in map(set, halves)]
        schedule: list[list[int] | None] = []  # each round's positions; None: a zero-weight dummy
        boundary = -1  # the last round of half A (its backward reduces and its gradient is copied)
        for part in parts:
            lengths = seqs.attention_mask[rows[part]].sum(1).tolist() if part else []
            plan = [[part[i] for i in micro] for micro in plan_micro_batches(lengths, s.micro_batch_size,
                                                                              s.micro_batch_tokens)]
            rounds = all_reduce_max_int(len(plan), ctx, device)  # FSDP: every rank runs as many backwards
            schedule.extend(plan[k] if k < len(plan) else None for k in range(rounds))
            if halves is not None and boundary < 0:
                boundary = len(schedule) - 1
        snapshot = None
        self.optimizer.zero_grad(set_to_none=True)
        micro_diags, micro_tokens, loss_total = [], [], 0.0
        for k, planned in enumerate(schedule):
            real = planned is not None
            pos = torch.tensor(planned if real else [0], dtype=torch.long)
            micro_seqs = seqs.select(rows[pos]).to(device)
            sync = k == len(schedule) - 1 or k == boundary or s.sync_every_micro_batch
            with gradient_sync(self.policy, enabled=sync):
                logp, entropy = response_logprobs(self.policy, micro_seqs, s.temperature, with_entropy=True,
                                                  autocast_dtype=s.autocast_dtype)
                micro = mini.select(pos.to(mini.uid.device))
                loss, diag = self.method.loss(micro.with_logp(logp.to(batch.old_logp.dtype), entropy),
                                              mini_prep.select(pos.to(mini.uid.device)), denominator=denominator)
                # DDP/FSDP average gradients over ranks: scale so they sum; dummy micro-batches weigh 0
                (loss * (ctx.world_size if real else 0.0)).backward()
            if k == boundary:  # listed after a backward: FSDP2 swaps in unsharded parameters around forwards
                snapshot = grad_snapshot(self._trainable_parameters())
            if real:
                loss_total += loss.item()
                micro_diags.append(diag)
                micro_tokens.append(float(self.method.loss_mask(micro).sum()))
                self.tokens += int(micro_seqs.attention_mask.sum())
        cosine = half_cosine(self._trainable_parameters(), snapshot, ctx) if snapshot is not None else None
        del snapshot
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        if torch.isfinite(grad_norm):
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer_steps += 1
        # token-weighted over micro-batches and ranks: the mini-batch's token means, however it was split
        merged = mean_dicts(micro_diags, micro_tokens)
        merged["actor/pg_loss"] = sum(d.get("actor/pg_loss", 0.0) for d in micro_diags)
        merged["actor/loss"] = loss_total
        return reduce_diagnostics(merged, sum(micro_tokens), ctx), float(grad_norm), cosine


def synchronize(device: torch.device) -> float:
    """A timing point: waits for queued GPU work, then returns ``time.perf_counter()``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
