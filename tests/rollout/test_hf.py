"""The transformers rollout backend (negrl.rollout.hf) on a tiny random Qwen2 + char tokenizer."""

from __future__ import annotations

import pytest
import torch

from negrl.rollout import Completion, RolloutEngine, SamplingParams, logprob_mismatch, make_engine
from negrl.rollout.hf import native_unsupported_reason

from .tiny import make_model

IMPLS = ["native", "generic", "bucketed"]
# "bucketed": the native decoder in the (batch, KV-length) buckets and host-sync cadence that CUDA
# graphs use, run eagerly on CPU so that path is tested here too
OPTS = {
    "native": dict(impl="native"),
    "generic": dict(impl="generic"),
    "bucketed": dict(impl="native", bucketed=True, sync_every=4, len_bucket=16),
}
PROMPTS = ["What is 12+7?", "Hi", "Compute (3*4)-5 =", "x"]


@pytest.fixture(scope="module")
def sharp():
    """Peaked random model: varied, mostly EOS-free text."""
    return make_model(seed=0, scale=8.0)


@pytest.fixture(scope="module")
def uniform():
    """Zero final norm -> all logits 0 -> uniform next token (EOS w.p. 1/V each step)."""
    model, tok = make_model(seed=1)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    return model, tok


def _engine(pair, impl, **kw):
    model, tok = pair
    return make_engine("hf", model=model, tokenizer=tok, **{**OPTS.get(impl, dict(impl=impl)), **kw})


def test_native_supported_and_protocol(sharp):
    assert native_unsupported_reason(sharp[0]) == ""
    eng = _engine(sharp, "auto")
    assert eng.impl == "native"
    assert isinstance(eng, RolloutEngine)
    with pytest.raises(ValueError):
        make_engine("nope")


@pytest.mark.parametrize("impl", IMPLS)
def test_order_schema_and_seed_determinism(sharp, impl):
    eng = _engine(sharp, impl)
    p = SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=7)
    a = eng.generate(PROMPTS, p)
    b = eng.generate(PROMPTS, p)
    c = eng.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=8))
    assert [(o.prompt_index, o.sample_idx) for o in a] == [(i, s) for i in range(len(PROMPTS)) for s in range(3)]
    assert all(isinstance(o, Completion) for o in a)
    assert [o.token_ids for o in a] == [o.token_ids for o in b]
    assert [o.text for o in a] == [o.text for o in b]
    assert [o.token_ids for o in a] != [o.token_ids for o in c]
    tok = sharp[1]
    for o in a:
        assert o.prompt_token_ids == tok(PROMPTS[o.prompt_index])["input_ids"]
        assert o.truncated == (o.finish_reason == "length")
        assert len(o.sampler_logprobs) == len(o.token_ids)
    # the n samples of a prompt differ (sampling, not n copies)
    assert len({tuple(o.token_ids) for o in a[:3]}) > 1


@pytest.mark.parametrize("other", ["generic", "bucketed"])
def test_native_and_other_decoders_agree(sharp, other):
    p = SamplingParams(n=2, temperature=0.8, max_tokens=16, seed=3)
    a = _engine(sharp, "native").generate(PROMPTS, p)
    b = _engine(sharp, other).generate(PROMPTS, p)
    assert [o.token_ids for o in a] == [o.token_ids for o in b]
    for x, y in zip(a, b):
        assert x.sampler_logprobs == pytest.approx(y.sampler_logprobs, abs=1e-5)


def _greedy_ref(model, tok, prompt, m):
    ids = torch.tensor([tok(prompt)["input_ids"]])
    ref = model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=m,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )[0, ids.shape[1]:].tolist()
    return ref[: ref.index(tok.eos_token_id) + 1] if tok.eos_token_id in ref else ref


@pytest.fixture(scope="module")
def greedy_refs(sharp):
    model, tok = sharp
    return [_greedy_ref(model, tok, p, 24) for p in PROMPTS]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("max_batch_size", [256, 3])
def test_greedy_equals_model_generate(sharp, greedy_refs, impl, max_batch_size):
    outs = _engine(sharp, impl, max_batch_size=max_batch_size).generate(
        PROMPTS, SamplingParams(n=2, temperature=0.0, max_tokens=24)
    )
    assert [o.token_ids for o in outs] == [greedy_refs[o.prompt_index] for o in outs]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_match_full_forward(sharp, impl, temperature):
    model, tok = sharp
    outs = _engine(sharp, impl).generate(
        PROMPTS, SamplingParams(n=2, temperature=temperature, max_tokens=20, seed=11)
    )
    for o in outs:
        seq = torch.tensor([o.prompt_token_ids + o.token_ids])
        with torch.no_grad():
            logits = model(seq).logits[0, len(o.prompt_token_ids) - 1 : -1].float() / temperature
        lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(o.token_ids)[:, None]).squeeze(1)
        assert torch.allclose(lp, torch.tensor(o.sampler_logprobs), atol=1e-5), (lp, o.sampler_logprobs)
        m = logprob_mismatch(torch.tensor([o.sampler_logprobs]), lp[None], torch.ones(1, len(lp)))
        assert m["rollout/logp_diff_max"] < 1e-5
        assert m["rollout/frac_ratio_outside_0.9_1.1"] == 0.0


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.6)])
def test_first_token_distribution_is_softmax(temperature, top_p):
    model, tok = make_model(seed=2, scale=3.0)  # moderately peaked first-token distribution
    prompt = "2+2="
    n = 6000
    outs = make_engine("hf", model=model, tokenizer=tok).generate(
        [prompt], SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=1, seed=5)
    )
    ids = torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad():
        probs = torch.softmax(model(ids).logits[0, -1].double() / temperature, -1)
    if top_p < 1:
        sp, order = probs.sort(descending=True)
        keep = (sp.cumsum(0) - sp) < top_p
        trunc = torch.zeros_like(probs)
        trunc[order[keep]] = sp[keep]
        probs = trunc / trunc.sum()
    counts = torch.bincount(torch.tensor([o.token_ids[0] for o in outs]), minlength=probs.numel()).double()
    emp = counts / n
    sigma = (probs * (1 - probs) / n).sqrt()
    assert ((emp - probs).abs() <= 5 * sigma + 1e-12).all(), (emp - probs).abs().max()
    assert counts[probs == 0].sum() == 0  # nothing outside the nucleus
    # the reported log-probs are those of the sampled-from distribution
    for o in outs[:50]:
        assert o.sampler_logprobs[0] == pytest.approx(float(probs[o.token_ids[0]].log()), abs=1e-4)


@pytest.mark.parametrize("impl", IMPLS)
def test_eos_and_truncation(uniform, impl):
    model, tok = uniform
    eos, m = tok.eos_token_id, 30
    outs = _engine(uniform, impl, max_batch_size=64).generate(
        PROMPTS, SamplingParams(n=40, max_tokens=m, seed=0)
    )
    reasons = {o.finish_reason for o in outs}
    assert reasons == {"stop", "length"}
    v = model.config.vocab_size
    for o in outs:
        assert eos not in o.token_ids[:-1]
        if o.finish_reason == "stop":
            assert o.token_ids[-1] == eos and not o.truncated and len(o.token_ids) <= m
        else:
            assert len(o.token_ids) == m and o.truncated and o.token_ids[-1] != eos
        assert o.text == tok.decode(o.token_ids, skip_special_tokens=True)
        assert "<eos>" not in o.text
        assert o.sampler_logprobs == pytest.approx([-torch.log(torch.tensor(float(v))).item()] * len(o.token_ids))


@pytest.mark.parametrize("impl", IMPLS)
def test_stop_strings(uniform, impl):
    model, tok = uniform
    stops = ("xy", "Q", "7")
    outs = _engine(uniform, impl).generate(PROMPTS, SamplingParams(n=30, max_tokens=40, seed=4, stop=stops))
    n_stop_str = 0
    for o in outs:
        full = tok.decode(o.token_ids, skip_special_tokens=True)
        if o.finish_reason == "stop" and o.token_ids[-1] != tok.eos_token_id:
            n_stop_str += 1
            assert any(full.endswith(s) for s in stops)
            assert not any(s in tok.decode(o.token_ids[:-1], skip_special_tokens=True) for s in stops)
            cut = min(full.find(s) for s in stops if s in full)
            assert o.text == full[:cut]
        else:
            assert not any(s in full for s in stops)
            assert o.text == full
    assert n_stop_str > 10
    # include_stop_str_in_output keeps the matched stop string
    outs2 = _engine(uniform, impl, include_stop_str_in_output=True).generate(
        PROMPTS, SamplingParams(n=30, max_tokens=40, seed=4, stop=stops)
    )
    assert [o.token_ids for o in outs2] == [o.token_ids for o in outs]
    for o in outs2:
        assert o.text == tok.decode(o.token_ids, skip_special_tokens=True)


def test_multichar_stop_string_in_greedy_text(sharp):
    eng = _engine(sharp, "native")
    base = eng.generate(["Hi"], SamplingParams(temperature=0, max_tokens=30))[0]
    stop = base.text[5:8]
    first = base.text.find(stop)
    o = eng.generate(["Hi"], SamplingParams(temperature=0, max_tokens=30, stop=(stop,)))[0]
    assert o.finish_reason == "stop" and o.text == base.text[:first]
    assert o.token_ids == base.token_ids[: first + len(stop)]


@pytest.mark.parametrize("impl", IMPLS)
def test_mode_restored_and_weight_sync(impl):
    model, tok = make_model(seed=3, scale=8.0)
    model.train()
    eng = _engine((model, tok), impl)
    greedy = SamplingParams(temperature=0.0, max_tokens=16)
    before = eng.generate(PROMPTS, greedy)
    assert model.training
    # an optimizer step changes the weights in place: same object -> seen without copying
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ids = torch.tensor([tok("abc")["input_ids"]])
    model(ids, labels=ids).loss.backward()
    opt.step()
    eng.sync_weights(model)
    after = eng.generate(PROMPTS, greedy)
    assert [o.token_ids for o in after] != [o.token_ids for o in before]
    model.eval()
    with torch.no_grad():
        for o in after:
            assert o.token_ids == _greedy_ref(model, tok, PROMPTS[o.prompt_index], 16)
    # another object: its weights are copied in
    other, _ = make_model(seed=9, scale=8.0)
    eng.sync_weights(other)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_converted_dtype_copy_is_refreshed():
    model, tok = make_model(seed=4, scale=8.0)
    eng = make_engine("hf", model=model, tokenizer=tok, dtype=torch.float64)
    p = SamplingParams(temperature=0.0, max_tokens=10)
    a = eng.generate(["Hi"], p)[0]
    with torch.no_grad():
        for q in model.parameters():
            q.mul_(-1.0)
    assert eng.generate(["Hi"], p)[0].token_ids == a.token_ids  # stale copy until sync
    eng.sync_weights(model)
    ref = make_engine("hf", model=model, tokenizer=tok).generate(["Hi"], p)[0]
    assert eng.generate(["Hi"], p)[0].token_ids == ref.token_ids


def test_model_path(tmp_path, sharp):
    model, tok = sharp
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    eng = make_engine("hf", model_path=str(tmp_path))
    p = SamplingParams(temperature=0.0, max_tokens=8)
    assert eng.generate(["Hi"], p)[0].token_ids == _engine(sharp, "native").generate(["Hi"], p)[0].token_ids


def test_logprob_mismatch_values():
    s = torch.tensor([[0.0, -1.0, -2.0], [-1.0, 0.0, 0.0]])
    t = torch.tensor([[0.0, -1.2, -2.0], [-1.05, 5.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    m = logprob_mismatch(s, t, mask)
    assert m["rollout/logp_diff_mean"] == pytest.approx((0 + 0.2 + 0 + 0.05) / 4)
    assert m["rollout/logp_diff_max"] == pytest.approx(0.2)
    assert m["rollout/frac_ratio_outside_0.9_1.1"] == pytest.approx(1 / 4)
    assert logprob_mismatch(s, t, torch.zeros_like(mask))["rollout/logp_diff_max"] == 0.0


def test_bench_rollout_runs_on_cpu(tmp_path):
    import argparse
    import json

    from negrl.bench.rollout import add_arguments, format_table, run_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "bench.json"
    args = p.parse_args(["--shape", "toy", "--batch", "4", "--n", "2", "--prompt-len", "6", "--gen-len", "5",
                         "--backends", "generate,hf,hf-generic,vllm", "--device", "cpu", "--out", str(out)])
    assert run_from_args(args) == 0
    res = json.loads(out.read_text())
    for name in ("generate", "hf", "hf-generic"):
        assert res["results"][name]["tokens"] > 0, res["results"][name]
    assert "ratio_to_generate" in res["results"]["hf"]
    assert "hf" in format_table(res)


def test_config_options_fit_each_backend_constructor():
    """rollout.backend is the one switch: the options built from the config bind to either constructor."""
    import inspect

    from negrl.config import from_dict
    from negrl.rollout import engine_options
    from negrl.rollout.hf import HFEngine
    from negrl.rollout.vllm import VLLMEngine  # imports vllm lazily, so this runs without it

    for backend, cls in (("hf", HFEngine), ("vllm", VLLMEngine)):
        rollout = from_dict({"rollout": {"backend": backend}}).rollout
        inspect.signature(cls).bind(model=None, tokenizer=None, **engine_options(rollout, "bfloat16"))
