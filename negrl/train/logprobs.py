"""Per-token log-probabilities of responses under a causal LM (methods.md C4).

Prompt and response are concatenated and right-padded, so every sequence starts at position 0 exactly as
an unpadded forward would see it; the log-prob of response token t is read from the logits at the position
before it, after dividing the logits by the sampling temperature.

    >>> seqs = pack_sequences([[5, 6]], [[7, 2]], pad_id=0)
    >>> seqs.input_ids.tolist(), seqs.response_mask.tolist()
    ([[5, 6, 7, 2]], [[True, True]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedSequences:
    input_ids: torch.Tensor  # [B, L] prompt + response, right-padded
    attention_mask: torch.Tensor  # [B, L]
    target_index: torch.Tensor  # [B, T] position in input_ids of each response token
    response_mask: torch.Tensor  # [B, T] bool
    response_ids: torch.Tensor  # [B, T] response tokens, padded with pad_id

    def to(self, device: torch.device | str) -> "PackedSequences":
        return PackedSequences(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.target_index,
                                                      self.response_mask, self.response_ids)))

    def select(self, rows: torch.Tensor) -> "PackedSequences":
        picked = PackedSequences(*(t[rows] for t in (self.input_ids, self.attention_mask, self.target_index,
                                                    self.response_mask, self.response_ids)))
        # trim padding columns no selected row uses (shorter forward); [B, T] stays aligned with the methods
        length = int(picked.attention_mask.sum(1).max())
        picked.input_ids, picked.attention_mask = picked.input_ids[:, :length], picked.attention_mask[:, :length]
        return picked


def pack_sequences(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int) -> PackedSequences:
    if len(prompt_ids) != len(response_ids):
        raise ValueError("pack_sequences: prompt and response lists differ in length")
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids)]
    batch, max_len = len(prompt_ids), max(lengths)
    max_response = max(1, max(len(r) for r in response_ids))
    input_ids = torch.full((batch, max_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, max_len), dtype=torch.long)
    target_index = torch.zeros((batch, max_response), dtype=torch.long)
    response_mask = torch.zeros((batch, max_response), dtype=torch.bool)
    responses = torch.full((batch, max_response), pad_id, dtype=torch.long)
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        sequence = list(prompt) + list(response)
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
        n = len(response)
        target_index[row, :n] = torch.arange(len(prompt), len(prompt) + n)
        response_mask[row, :n] = True
        responses[row, :n] = torch.tensor(response, dtype=torch.long)
    return PackedSequences(input_ids, attention_mask, target_index, response_mask, responses)


def response_logprobs(model, seqs: PackedSequences, temperature: float = 1.0, with_entropy: bool = False,
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [B, T] of the response tokens (0 on padding), and optionally the entropy [B, T]
    of the temperature-scaled next-token distribution at each response position."""
    logits = model(input_ids=seqs.input_ids, attention_mask=seqs.attention_mask).logits
    # logits at position j predict token j + 1: gather the rows that predict response tokens
    predict_index = (seqs.target_index - 1).clamp(min=0)
    gathered = torch.gather(logits, 1, predict_index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    log_probs = torch.log_softmax(gathered.float() / temperature, dim=-1)
    token_logp = torch.gather(log_probs, 2, seqs.response_ids.unsqueeze(-1)).squeeze(-1)
    token_logp = token_logp.masked_fill(~seqs.response_mask, 0.0)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(log_probs.exp() * log_probs).sum(-1).masked_fill(~seqs.response_mask, 0.0)
    return token_logp, entropy
