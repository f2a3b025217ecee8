"""The warm start's length-sorted micro-batches: the same update as the whole batch, with less padding."""

from __future__ import annotations

import torch

from negrl.models import build_toy_model, build_toy_tokenizer
from negrl.train.sft import length_sorted_chunks, supervised_warmstart


def test_chunks_are_sorted_by_length_and_cover_the_batch_once():
    lengths = [9, 3, 7, 1, 5, 8]
    assert length_sorted_chunks([0, 1, 2, 3, 4, 5], lengths, 4) == [[3, 1, 4, 2], [5, 0]]
    assert length_sorted_chunks([5, 0, 2], lengths, None) == [[5, 0, 2]]
    assert length_sorted_chunks([5, 0, 2], lengths, 3) == [[5, 0, 2]]  # one chunk keeps the given order


def _warm_start(micro_batch_size):
    tokenizer = build_toy_tokenizer()
    model = build_toy_model(tokenizer, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                            intermediate_size=64, max_position=96, seed=0).double()
    examples = [(f"Compute {a}+{b}. ", f"{a}+{b}={a + b}" + " pad" * (a % 4)) for a in range(12) for b in (3, 17)]
    log = supervised_warmstart(model, tokenizer, examples, steps=6, batch_size=8, lr=1e-2, warmup_steps=0,
                               weight_decay=0.0, seed=3, micro_batch_size=micro_batch_size, show_progress=False)
    return model, log


def test_micro_batched_warm_start_trains_exactly_like_whole_batches():
    whole, whole_log = _warm_start(None)
    micro, micro_log = _warm_start(3)
    for (name, a), (_, b) in zip(whole.named_parameters(), micro.named_parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-10), name
    for a, b in zip(whole_log, micro_log):
        assert abs(a["loss"] - b["loss"]) < 1e-10
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-10
    assert whole_log[-1]["loss"] < whole_log[0]["loss"]  # and it does learn
