"""One rollout step's data: sample G responses per prompt, verify them, and pack them for the method.

The training loop and the evaluation stage share the rollout engine and the verifier; this module is the
training side's glue: prompts -> ``Group`` objects (one per prompt, C3) -> a ``RolloutBatch`` with
old (and reference) log-probs recomputed by the trainer (C4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from negrl.methods import RolloutBatch
from negrl.rollout.base import Completion, SamplingParams
from negrl.train.logprobs import PackedSequences, pack_sequences
from negrl.verify import grade_many


@dataclass
class Group:
    """All responses to one prompt in one rollout step."""

    uid: int
    problem_index: int
    level: int
    completions: list[Completion]
    rewards: list[float]
    reasons: list[str] = field(default_factory=list)


def sample_groups(engine, prompts: Sequence[str], answers: Sequence[str], levels: Sequence[int],
                  problem_indices: Sequence[int], params: SamplingParams, *, first_uid: int, verify_workers: int,
                  verify_timeout: float, timer: dict[str, float] | None = None) -> list[Group]:
    """Generate ``params.n`` responses for each prompt and verify them; truncated responses get reward 0 (C2).
    ``timer`` (optional) accumulates the seconds spent under ``time/rollout`` and ``time/verify``."""
    start = time.perf_counter()
    completions = engine.generate([prompts[i] for i in problem_indices], params) if problem_indices else []
    generated = time.perf_counter()
    verdicts = [] if not completions else grade_many(
        [(c.text, answers[problem_indices[c.prompt_index]]) for c in completions],
        workers=verify_workers, timeout=verify_timeout, truncated=[c.truncated for c in completions],
    )
    if timer is not None:
        timer["time/rollout"] = timer.get("time/rollout", 0.0) + generated - start
        timer["time/verify"] = timer.get("time/verify", 0.0) + time.perf_counter() - generated
    groups = [Group(uid=first_uid + k, problem_index=i, level=int(levels[i]), completions=[], rewards=[])
              for k, i in enumerate(problem_indices)]
    for completion, verdict in zip(completions, verdicts):
        group = groups[completion.prompt_index]
        group.completions.append(completion)
        group.rewards.append(1.0 if (verdict.correct and not completion.truncated) else 0.0)
        group.reasons.append("truncated" if completion.truncated else verdict.reason)
    return groups


def sampler_logprobs(completions: Sequence[Completion], seqs: PackedSequences) -> torch.Tensor:
    """The rollout engine's log-probs of the sampled tokens, laid out like the trainer's [B, T] (0 at padding)."""
    out = torch.zeros(seqs.response_mask.shape, dtype=torch.float64)
    for row, completion in enumerate(completions):
        given = completion.sampler_logprobs
        if given is None or len(given) != len(completion.token_ids):
            raise ValueError(f"train.old_logprobs: sampler needs the engine's log-prob of every sampled token; "
                             f"completion {row} has {0 if given is None else len(given)} for "
                             f"{len(completion.token_ids)} tokens")
        out[row, : len(completion.token_ids)] = torch.tensor(completion.sampler_logprobs, dtype=torch.float64)
    return out


def build_batch(groups: Sequence[Group], pad_id: int, logprobs: Callable[[PackedSequences], torch.Tensor] | None,
                ref_logprobs: Callable[[PackedSequences], torch.Tensor] | None, device: torch.device,
                dtype: torch.dtype = torch.float32) -> tuple[RolloutBatch, PackedSequences]:
    """The ``RolloutBatch`` of the groups (tensors on ``device``) and their packed sequences (on the CPU;
    micro-batches move to the device when used). ``logprobs(seqs)`` / ``ref_logprobs(seqs)`` return the
    old / reference token log-probs [B, T] (the trainer's no-grad passes, C4); ``logprobs=None`` takes the
    old log-probs from the sampler instead (``train.old_logprobs: sampler``)."""
    completions = [c for g in groups for c in g.completions]
    seqs = pack_sequences([c.prompt_token_ids for c in completions], [c.token_ids for c in completions], pad_id)
    old_logp = logprobs(seqs) if logprobs is not None else sampler_logprobs(completions, seqs)
    old_logp = old_logp.to(device=device, dtype=dtype)
    ref_logp = None
    if ref_logprobs is not None:
        ref_logp = ref_logprobs(seqs).to(device=device, dtype=dtype)
    batch = RolloutBatch(
        old_logp=old_logp,
        mask=seqs.response_mask.to(device),
        rewards=torch.tensor([r for g in groups for r in g.rewards], dtype=dtype, device=device),
        uid=torch.tensor([g.uid for g in groups for _ in g.completions], dtype=torch.long, device=device),
        truncated=torch.tensor([c.truncated for c in completions], dtype=torch.bool, device=device),
        ref_logp=ref_logp,
    )
    return batch, seqs


def level_diagnostics(groups: Sequence[Group]) -> dict[str, float]:
    """Per-difficulty accuracy and group composition: where do all-wrong groups come from?"""
    out: dict[str, float] = {}
    all_wrong_total = sum(1 for g in groups if sum(g.rewards) == 0)
    for level in sorted({g.level for g in groups}):
        at_level = [g for g in groups if g.level == level]
        rewards = [r for g in at_level for r in g.rewards]
        all_wrong = sum(1 for g in at_level if sum(g.rewards) == 0)
        out[f"level{level}/acc"] = sum(rewards) / len(rewards)
        out[f"level{level}/groups"] = float(len(at_level))
        out[f"level{level}/frac_all_wrong_groups"] = all_wrong / len(at_level)
        out[f"level{level}/share_of_all_wrong_groups"] = all_wrong / all_wrong_total if all_wrong_total else 0.0
    return out
