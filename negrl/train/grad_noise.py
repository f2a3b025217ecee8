"""Gradient signal-to-noise diagnostic of the policy updates, and the training-log warning built on it.

Measurement (``PolicyUpdater.minibatch_step`` with ``grad_noise=True``): the mini-batch's groups (whole
prompt uids, already in the seeded shuffle order) are split into two halves A and B (``split_halves``); A's
micro-batches run backward first, the accumulated gradient g_A is copied (``grad_snapshot``), then B's run,
and ``half_cosine`` returns cos(g_A, g - g_A) = cos(g_A, g_B). The loss denominator is the whole
mini-batch's (C8) and every row's loss term is computed exactly as without the diagnostic, so the update is
the same sum of per-row gradients; only the micro-batch plan differs (each half is planned on its own, at
most one extra micro-batch), which changes the floating-point summation order and nothing else (a test
checks the weights after an update agree to 1e-12 in float64 with the diagnostic on and off).

Cost: one extra copy of the gradients (4 bytes per parameter in fp32; under FSDP only this rank's shard) while
the update runs; a few dot products (3.4 ms per update for the 0.8M-parameter toy model on one CPU thread);
under DDP/FSDP one extra gradient reduction (the A half is reduced at the half boundary, so g_A and g are
global and every rank computes the same cosine; FSDP sums the three shard-local dot products with one
all-reduce); and the micro-batch plan: each half is length-sorted on its own, so with few micro-batches per
half the padding grows (simulated, uniform lengths: +16% padded tokens for 64 rows in micro-batches of 32,
+8% for 128 rows in 16s, +1% for 512 rows in 8s; -1% when a half fits one micro-batch, as in the toy
default, where the update measured 7% faster with the diagnostic on). ``train.grad_noise_check_every: k``
measures every k-th rollout step only; 0 turns it off (and with it all of these costs).

Interpretation. Write each half's gradient as g_H = mu + e_H, with the noise e_A, e_B independent and of
the same size, E|e_H|^2 = s^2 (the halves hold the same number of groups, within one). Then

    c = cos(g_A, g_B) ~ |mu|^2 / (|mu|^2 + s^2)           the signal fraction of a half's squared norm
    SNR_half = |mu|^2 / s^2 = c / (1 - c)
    actor/grad_snr = 2 c / (1 - c)                          the whole mini-batch's |E g|^2 / E|g - E g|^2

(g = g_A + g_B: signal 2 mu, |2 mu|^2 = 4 |mu|^2, noise E|e_A + e_B|^2 = 2 s^2). The SNR grows linearly
with the responses per update, so an update needs about 1 / SNR times as many responses for its signal to
match its noise (c = 1/3: SNR 1; c = 0.1: SNR 0.22). c < 0 (possible when the signal is ~0) reads as SNR 0.

Metrics (added to the rollout step's ``metrics.jsonl`` record; omitted on steps with no measured update,
i.e. when the check skips the step or every mini-batch holds a single group or a zero gradient half):

- ``actor/grad_half_cosine``: mean over the step's optimizer updates of cos(g_A, g_B) (before clipping).
- ``actor/grad_snr``: 2 c / (1 - c) of that mean (c clipped to [0, 0.999]).

Warning (``GradNoiseMonitor``, rank 0): when the mean cosine of the last ``window`` measured steps is below
``train.grad_noise_warn_cosine``, the log gets (via ``logging``, logger ``negrl.train``; at most once every
``5 * window`` steps)::

    negrl train: WARNING gradient is noise-dominated: cosine between half-batch gradients 0.03 over the last
    10 steps (< 0.10; implied gradient SNR 0.06, ~16x more responses per update for SNR 1); each update sees
    64 responses: raise train.prompts_per_step*n per update (fewer mini_batches) or lower lr

and, as a second signal, when ``reward/mean`` of the last ``window`` steps is below that of the first
``window`` steps by more than 3 standard errors (``negrl train: WARNING reward/mean is falling: ...``).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Iterable, Sequence

import numpy as np
import torch

from negrl.train.distributed import DistContext, all_reduce_sum_

log = logging.getLogger("negrl.train")

COSINE_KEY = "actor/grad_half_cosine"
SNR_KEY = "actor/grad_snr"
_CHUNK = 1 << 24  # elements per float64 partial dot product (bounds the temporary memory)


def split_halves(chunk: Sequence[int]) -> tuple[list[int], list[int]] | None:
    """The mini-batch's groups (uids, in their shuffled order) as halves A (the first floor(G/2)) and B (the
    rest); None for fewer than two groups.

        >>> split_halves([7, 3, 5, 1, 4])
        ([7, 3], [5, 1, 4])
        >>> split_halves([2]) is None
        True
    """
    uids = [int(u) for u in chunk]
    if len(uids) < 2:
        return None
    half = len(uids) // 2
    return uids[:half], uids[half:]


def _local(grad: torch.Tensor | None) -> torch.Tensor | None:
    """The gradient tensor this rank holds (an FSDP DTensor's local shard)."""
    if grad is None:
        return None
    return grad.to_local() if hasattr(grad, "to_local") else grad


def grad_snapshot(params: Iterable[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    """A copy of each parameter's (local) gradient, in its own dtype and device."""
    out = []
    for p in params:
        g = _local(p.grad)
        out.append(None if g is None else g.detach().clone())
    return out


def half_cosine(params: Sequence[torch.nn.Parameter], snapshot: Sequence[torch.Tensor | None],
                ctx: DistContext) -> float | None:
    """cos(g_A, g - g_A) with g_A = ``snapshot`` and g the parameters' current gradients, accumulated in
    float64 in chunks; under FSDP the shard-local sums are all-reduced (the same value on every rank). None
    when either half's gradient is zero (e.g. only zero-advantage groups)."""
    device = next((p.device for p in params), torch.device("cpu"))
    stats = torch.zeros(3, dtype=torch.float64, device=device)  # <a, b>, |a|^2, |b|^2
    if len(params) != len(snapshot):
        raise RuntimeError(f"gradient snapshot of {len(snapshot)} tensors for {len(params)} parameters")
    for p, a in zip(params, snapshot):
        g = _local(p.grad)
        if g is None:
            continue
        if a is not None and a.shape != g.shape:
            raise RuntimeError(f"gradient snapshot of shape {tuple(a.shape)} for a gradient of shape "
                               f"{tuple(g.shape)}: parameters listed in different (un)sharded states")
        g = g.detach().reshape(-1)
        a = None if a is None else a.reshape(-1)
        for start in range(0, g.numel(), _CHUNK):
            total = g[start:start + _CHUNK].double()
            if a is None:
                stats[2] += total @ total
                continue
            x = a[start:start + _CHUNK].double()
            y = total - x
            stats += torch.stack([x @ y, x @ x, y @ y])
    if any(hasattr(p, "full_tensor") for p in params):  # FSDP (DTensor parameters): sum over the shards
        all_reduce_sum_(stats, ctx)
    dot, norm_a, norm_b = stats.tolist()
    if norm_a <= 0.0 or norm_b <= 0.0:
        return None
    return float(max(-1.0, min(1.0, dot / math.sqrt(norm_a * norm_b))))


def snr_from_cosine(cosine: float) -> float:
    """The mini-batch gradient's signal-to-noise ratio implied by the half-batch cosine c: 2c / (1 - c),
    c clipped to [0, 0.999].

        >>> round(snr_from_cosine(0.03), 4), snr_from_cosine(-0.2), round(snr_from_cosine(1 / 3), 6)
        (0.0619, 0.0, 1.0)
    """
    c = min(max(float(cosine), 0.0), 0.999)
    return 2.0 * c / (1.0 - c)


def grad_noise_metrics(cosines: Sequence[float]) -> dict[str, float]:
    """The step's metrics from its updates' cosines (empty when none was measured)."""
    if not cosines:
        return {}
    mean = float(np.mean(cosines))
    return {COSINE_KEY: mean, SNR_KEY: snr_from_cosine(mean)}


class GradNoiseMonitor:
    """Running checks over the rollout steps' records; ``observe`` returns (and logs) the warnings of a step.

    ``threshold``: warn when the mean half-batch cosine of the last ``window`` measured steps is below it.
    ``responses_per_update``: named in the message (None: omitted). Each warning kind repeats at most once
    every ``repeat_every`` steps (default ``5 * window``)."""

    def __init__(self, threshold: float, window: int = 10, responses_per_update: int | None = None,
                 repeat_every: int | None = None, logger: logging.Logger | None = None) -> None:
        self.threshold, self.window = float(threshold), max(1, int(window))
        self.responses_per_update = responses_per_update
        self.repeat_every = repeat_every if repeat_every is not None else 5 * self.window
        self.log = logger or log
        self.cosines: deque[float] = deque(maxlen=self.window)
        self.rewards: list[float] = []
        self.reward_steps: list[int] = []
        self.last_warned: dict[str, int] = {}

    def record(self, step: int, record: dict[str, float]) -> None:
        """Add one step's metrics without checking (to restore the history of a resumed run)."""
        cosine = record.get(COSINE_KEY)
        if isinstance(cosine, (int, float)) and math.isfinite(cosine):
            self.cosines.append(float(cosine))
        reward = record.get("reward/mean")
        if isinstance(reward, (int, float)) and math.isfinite(reward):
            self.rewards.append(float(reward))
            self.reward_steps.append(int(step))

    def observe(self, step: int, record: dict[str, float]) -> list[str]:
        """Record rollout step ``step`` (1-based) and log the warnings that are due."""
        self.record(step, record)
        messages = []
        for kind, message in (("noise", self.noise_message()), ("reward", self.reward_message())):
            if message is None:
                continue
            last = self.last_warned.get(kind)
            if last is not None and step - last < self.repeat_every:
                continue
            self.last_warned[kind] = step
            self.log.warning(message)
            messages.append(message)
        return messages

    def noise_message(self) -> str | None:
        if len(self.cosines) < self.window:
            return None
        mean = float(np.mean(self.cosines))
        if not mean < self.threshold:
            return None
        snr = snr_from_cosine(mean)
        more = f"~{1.0 / snr:.0f}x more responses per update for SNR 1" if snr > 0 else "no measurable signal"
        per_update = self.responses_per_update
        sees = f"each update sees {per_update} responses: " if per_update else ""
        return (f"negrl train: WARNING gradient is noise-dominated: cosine between half-batch gradients "
                f"{mean:.2f} over the last {len(self.cosines)} steps (< {self.threshold:.2f}; implied "
                f"gradient SNR {snr:.2f}, {more}); {sees}raise train.prompts_per_step*n per update "
                f"(fewer mini_batches) or lower lr")

    def reward_message(self) -> str | None:
        """reward/mean of the last ``window`` steps more than 3 standard errors below the first ``window``
        steps' (the standard error from the step-to-step spread within each window)."""
        k = self.window
        if k < 2 or len(self.rewards) < 2 * k:
            return None
        first, last = np.array(self.rewards[:k]), np.array(self.rewards[-k:])
        se = math.sqrt(first.var(ddof=1) / k + last.var(ddof=1) / k)
        drop = float(first.mean() - last.mean())
        if drop <= 0 or drop <= 3.0 * se:
            return None
        s = self.reward_steps
        errors = f"{drop / se:.1f} standard errors" if se > 0 else "no step-to-step spread"
        noise = f"; half-batch gradient cosine {np.mean(self.cosines):.2f}" if self.cosines else ""
        return (f"negrl train: WARNING reward/mean is falling: {first.mean():.3f} over steps "
                f"{s[0]}-{s[k - 1]} -> {last.mean():.3f} over steps {s[-k]}-{s[-1]} ({errors}{noise}); the "
                f"policy is getting worse on the training prompts: check the gradient noise "
                f"(actor/grad_half_cosine) and lr")
