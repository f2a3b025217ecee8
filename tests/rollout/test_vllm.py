"""The vLLM backend end to end on CPU (vllm-cpu) or GPU: generate, take a training step, sync the
weights in place, and check that vLLM's log-probs match the trainer's recomputed ones.

Tolerance: fp32 on both sides, |Δ log p| <= 1e-4 per token (observed ~1e-6 on vllm-cpu 0.32);
without the sync the same check fails by orders of magnitude (asserted too, so a no-op sync
cannot pass)."""

from __future__ import annotations

import os

import pytest
import torch

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TOL = 1e-4
PROMPTS = ["What is 12+7?", "Hi", "Compute (3*4)-5 ="]


def _recompute(model, comps, temperature):
    out = []
    model.eval()
    for o in comps:
        seq = torch.tensor([o.prompt_token_ids + o.token_ids])
        with torch.no_grad():
            lg = model(seq).logits[0, len(o.prompt_token_ids) - 1 : -1].float() / temperature
        out.append(torch.log_softmax(lg, -1).gather(1, torch.tensor(o.token_ids)[:, None]).squeeze(1))
    return torch.cat(out)


def _mismatch(model, comps, temperature):
    from negrl.rollout import logprob_mismatch

    sampler = torch.cat([torch.tensor(o.sampler_logprobs) for o in comps])
    return logprob_mismatch(sampler, _recompute(model, comps, temperature))


def test_vllm_generate_step_sync_logprobs():
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from negrl.rollout import SamplingParams, make_engine

    from .tiny import make_model

    # head_dim 32: the smallest the vLLM CPU attention backend supports
    model, tok = make_model(seed=0, scale=4.0, hidden_size=64, num_attention_heads=2,
                            num_key_value_heads=1, intermediate_size=128)
    eng = make_engine("vllm", model=model, tokenizer=tok, dtype="float32", max_model_len=256,
                      enforce_eager=True, gpu_memory_utilization=0.3)
    try:
        T = 1.0
        p = SamplingParams(n=4, temperature=T, max_tokens=24, seed=3, stop=("Q",))
        c1 = eng.generate(PROMPTS, p)
        assert [(o.prompt_index, o.sample_idx) for o in c1] == [(i, s) for i in range(3) for s in range(4)]
        assert [o.token_ids for o in eng.generate(PROMPTS, p)] == [o.token_ids for o in c1]  # seeded
        for o in c1:
            assert o.prompt_token_ids == tok(PROMPTS[o.prompt_index])["input_ids"]
            assert o.truncated == (o.finish_reason == "length")
            assert len(o.sampler_logprobs) == len(o.token_ids)
            if o.finish_reason == "length":
                assert len(o.token_ids) == 24
            if tok.eos_token_id in o.token_ids:
                assert o.token_ids.index(tok.eos_token_id) == len(o.token_ids) - 1
                assert o.finish_reason == "stop"
        assert _mismatch(model, c1, T)["rollout/logp_diff_max"] <= TOL

        # one optimizer step on the trainer's copy
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        ids = torch.tensor([tok("What is 12+7? 19")["input_ids"]])
        model(ids, labels=ids).loss.backward()
        opt.step()

        stale = _mismatch(model, eng.generate(PROMPTS, p), T)
        assert stale["rollout/logp_diff_max"] > 100 * TOL  # the step changed the policy visibly

        eng.sync_weights(model)  # in place, no disk
        c3 = eng.generate(PROMPTS, p)
        fresh = _mismatch(model, c3, T)
        assert fresh["rollout/logp_diff_max"] <= TOL, fresh
        assert fresh["rollout/frac_ratio_outside_0.9_1.1"] == 0.0

        # greedy after the sync equals the transformers backend on the trainer's weights
        g = SamplingParams(n=1, temperature=0.0, max_tokens=16)
        hf = make_engine("hf", model=model, tokenizer=tok).generate(PROMPTS, g)
        assert [o.token_ids for o in eng.generate(PROMPTS, g)] == [o.token_ids for o in hf]
    finally:
        eng.close()
