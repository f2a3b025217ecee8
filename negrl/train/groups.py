"""One rollout step's data: sample G responses per prompt, verify them, and pack them for the method.

The training loop and the evaluation stage share the rollout engine and the verifier; this module is the
training side's glue: prompts -> ``Group`` objects (one per prompt, C3) -> a ``RolloutBatch`` with
old (and reference) log-probs recomputed by the trainer (C4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from negrl.methods import RolloutBatch
from negrl.rollout.base import Completion, SamplingParams
from negrl.train.logprobs import PackedSequences, pack_sequences, response_logprobs
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
                  verify_timeout: float) -> list[Group]:
    """Generate ``params.n`` responses for each prompt and verify them; truncated responses get reward 0 (C2)."""
    completions = engine.generate([prompts[i] for i in problem_indices], params)
    verdicts = grade_many(
        [(c.text, answers[problem_indices[c.prompt_index]]) for c in completions],
        workers=verify_workers, timeout=verify_timeout, truncated=[c.truncated for c in completions],
    )
    groups = [Group(uid=first_uid + k, problem_index=i, level=int(levels[i]), completions=[], rewards=[])
              for k, i in enumerate(problem_indices)]
    for completion, verdict in zip(completions, verdicts):
        group = groups[completion.prompt_index]
        group.completions.append(completion)
        group.rewards.append(1.0 if (verdict.correct and not completion.truncated) else 0.0)
        group.reasons.append("truncated" if completion.truncated else verdict.reason)
    return groups


@torch.no_grad()
def batch_logprobs(model, seqs: PackedSequences, temperature: float, micro_batch_size: int) -> torch.Tensor:
    """No-grad token log-probs [B, T] in micro-batches (the old or reference policy)."""
    rows = torch.arange(seqs.input_ids.shape[0])
    parts = []
    for chunk in rows.split(micro_batch_size):
        logp, _ = response_logprobs(model, seqs.select(chunk), temperature)
        parts.append(logp)
    return torch.cat(parts)


def build_batch(groups: Sequence[Group], model, ref_model, pad_id: int, temperature: float,
                micro_batch_size: int, device: torch.device, dtype: torch.dtype = torch.float32,
                ) -> tuple[RolloutBatch, PackedSequences]:
    completions = [c for g in groups for c in g.completions]
    seqs = pack_sequences([c.prompt_token_ids for c in completions], [c.token_ids for c in completions],
                          pad_id).to(device)
    old_logp = batch_logprobs(model, seqs, temperature, micro_batch_size).to(dtype)
    ref_logp = None
    if ref_model is not None:
        ref_logp = batch_logprobs(ref_model, seqs, temperature, micro_batch_size).to(dtype)
    batch = RolloutBatch(
        old_logp=old_logp,
        mask=seqs.response_mask,
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
