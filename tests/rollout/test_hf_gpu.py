"""The transformers backend on CUDA: CUDA-graph decoding agrees with the generic decoder, with
``model.generate`` and with a full forward (fp32); EOS compaction across graph buckets; the bf16
train/inference log-prob mismatch is reported. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from negrl.rollout import SamplingParams, logprob_mismatch, make_engine

try:
    from .tiny import make_model
except ImportError:  # run as a script
    from tiny import make_model

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
PROMPTS = ["What is 12+7?", "Hi", "Compute (3*4)-5 =", "x", "A much longer prompt, to pad the others."]


def _recompute(model, comps, temperature, dtype=torch.float32):
    out = []
    for o in comps:
        seq = torch.tensor([o.prompt_token_ids + o.token_ids], device="cuda")
        with torch.no_grad():
            lg = model(seq).logits[0, len(o.prompt_token_ids) - 1 : -1].float() / temperature
        out.append(torch.log_softmax(lg, -1).gather(1, torch.tensor(o.token_ids, device="cuda")[:, None])[:, 0])
    return torch.cat(out).cpu()


@needs_cuda
def test_cuda_graph_decoder_exact_fp32():
    model, tok = make_model(seed=0, scale=8.0)
    model.cuda().eval()
    graphs = make_engine("hf", model=model, tokenizer=tok)
    assert graphs.impl == "native" and graphs.cuda_graphs
    generic = make_engine("hf", model=model, tokenizer=tok, impl="generic")
    eager = make_engine("hf", model=model, tokenizer=tok, cuda_graphs=False, bucketed=True)
    g = SamplingParams(n=2, temperature=0.0, max_tokens=40)
    a = graphs.generate(PROMPTS, g)
    assert [o.token_ids for o in a] == [o.token_ids for o in generic.generate(PROMPTS, g)]
    for o in a:
        x = torch.tensor([o.prompt_token_ids], device="cuda")
        ref = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=40,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, x.shape[1]:].tolist()
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id) + 1]
        assert o.token_ids == ref
    s = SamplingParams(n=8, temperature=0.9, max_tokens=40, seed=5, stop=("xy",))
    b1, b2 = graphs.generate(PROMPTS, s), graphs.generate(PROMPTS, s)
    assert [o.token_ids for o in b1] == [o.token_ids for o in b2]  # seeded
    assert [o.token_ids for o in b1] == [o.token_ids for o in eager.generate(PROMPTS, s)]
    sampler = torch.cat([torch.tensor(o.sampler_logprobs) for o in b1])
    m = logprob_mismatch(sampler, _recompute(model, b1, 0.9))
    print("fp32 cuda-graph sampler vs full forward:", m)
    assert m["rollout/logp_diff_max"] < 1e-4


@needs_cuda
def test_cuda_eos_compaction_buckets():
    model, tok = make_model(seed=1)
    with torch.no_grad():
        model.model.norm.weight.zero_()  # uniform next token: EOS w.p. 1/V per step
    model.cuda()
    eng = make_engine("hf", model=model, tokenizer=tok)
    m = 150
    outs = eng.generate(PROMPTS, SamplingParams(n=60, max_tokens=m, seed=0))
    assert {o.finish_reason for o in outs} == {"stop", "length"}
    for o in outs:
        assert tok.eos_token_id not in o.token_ids[:-1]
        assert (o.finish_reason == "stop") == (o.token_ids[-1] == tok.eos_token_id)
        assert o.truncated == (len(o.token_ids) == m and o.finish_reason == "length")
    assert len({k[0] for k in eng._runner._graphs}) > 2  # several batch buckets were used
    lp = torch.tensor([x for o in outs for x in o.sampler_logprobs])
    assert torch.allclose(lp, torch.full_like(lp, -torch.log(torch.tensor(float(model.config.vocab_size)))), atol=1e-5)


@needs_cuda
def test_bf16_mismatch_report():
    model, tok = make_model(seed=0, scale=8.0)
    model.cuda().to(torch.bfloat16).eval()
    eng = make_engine("hf", model=model, tokenizer=tok)
    outs = eng.generate(PROMPTS, SamplingParams(n=16, temperature=1.0, max_tokens=64, seed=1))
    sampler = torch.cat([torch.tensor(o.sampler_logprobs) for o in outs])
    m = logprob_mismatch(sampler, _recompute(model, outs, 1.0))
    print("bf16 sampler vs bf16 HF forward:", m)
    assert m["rollout/logp_diff_mean"] < 0.05


@needs_cuda
@pytest.mark.parametrize("temperature", [1.0, 0.6])
@pytest.mark.parametrize("which", ["fused", "torch"])
def test_sampler_distribution(temperature, which):
    from negrl.rollout.sampling import sample_next
    from negrl.rollout.triton_sampler import HAVE_TRITON
    from negrl.rollout.triton_sampler import fused_sample as _fused

    if which == "fused" and not HAVE_TRITON:
        pytest.skip("no triton")

    def fused_sample(lg, t, g):
        return _fused(lg, t, g) if which == "fused" else sample_next(lg, t, 1.0, g)

    torch.manual_seed(0)
    v, n = 3000, 200_000
    row = torch.randn(v, device="cuda") * 3
    logits = row[None].expand(n, v).contiguous()
    gen = torch.Generator(device="cuda").manual_seed(0)
    tok, lp = fused_sample(logits, temperature, gen)
    probs = torch.softmax(row.double() / temperature, -1)
    counts = torch.bincount(tok, minlength=v).double()
    big = probs * n >= 5  # normal approximation per category where it holds
    z = (counts - probs * n).abs()[big] / (probs * (1 - probs) * n).sqrt()[big]
    assert z.max() < 6, z.max()
    expected = float(probs[~big].sum()) * n  # the rest: total count is ~Poisson(expected)
    assert abs(int(counts[~big].sum()) - expected) <= 6 * expected**0.5 + 3
    assert torch.allclose(lp.double(), probs.log()[tok], atol=1e-4)
    gen2 = torch.Generator(device="cuda").manual_seed(0)
    assert torch.equal(fused_sample(logits, temperature, gen2)[0], tok)
    # a Qwen-sized vocabulary: unlikely tokens must not be drawn more often than their mass says
    v, n = 151_936, 4096
    row = torch.randn(v, device="cuda") * 4
    probs = torch.softmax(row.double() / temperature, -1)
    tok, _ = fused_sample(row[None].expand(n, v).contiguous(), temperature, gen)
    rare = probs < 1e-6
    expected = float(probs[rare].sum()) * n
    seen = int(rare[tok].sum())
    assert seen <= expected + 5 * expected**0.5 + 3, (seen, expected)


if __name__ == "__main__":
    for w in ("fused", "torch"):
        test_sampler_distribution(1.0, w)
        test_sampler_distribution(0.6, w)
    for f in (test_cuda_graph_decoder_exact_fp32, test_cuda_eos_compaction_buckets, test_bf16_mismatch_report):
        f()
        print("ok", f.__name__, flush=True)
