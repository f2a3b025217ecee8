"""Shared pieces: groups by uid, surrogate clipping, KL estimators, aggregation, update diagnostics."""

from __future__ import annotations

import math

import pytest
import torch
from methods_testlib import F64, make_batch

from negrl.methods import get_method
from negrl.methods.common import (
    aggregation_denominator,
    clipped_surrogate,
    group_by_uid,
    group_std_advantage,
    kl_penalty,
    masked_whiten,
)


def test_group_statistics_by_uid_any_order():
    uid = torch.tensor([9, 3, 9, 3, 3, 9])
    values = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=F64)
    groups = group_by_uid(uid)
    assert groups.uid.tolist() == [3, 9] and groups.size.tolist() == [3, 3]
    assert groups.mean(values).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert groups.std(values, "population").tolist() == pytest.approx([math.sqrt(2 / 9)] * 2)
    assert groups.std(values, "sample").tolist() == pytest.approx([math.sqrt(1 / 3)] * 2)
    assert groups.max(values).tolist() == [1.0, 1.0]
    adv = group_std_advantage(values, groups, "sample", 0.0)
    assert adv[0].item() == pytest.approx((1 - 1 / 3) / math.sqrt(1 / 3))


def test_sample_and_population_std_differ_by_sqrt_16_over_15():
    groups = group_by_uid(torch.zeros(16, dtype=torch.long))
    values = torch.tensor([1.0] * 5 + [0.0] * 11, dtype=F64)
    ratio = groups.std(values, "sample") / groups.std(values, "population")
    assert ratio.item() == pytest.approx(math.sqrt(16 / 15))


def test_clipped_surrogate_clips_each_side():
    ratio = torch.tensor([0.5, 1.5, 0.5, 1.5, 1.0], dtype=F64, requires_grad=True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0], dtype=F64)
    s = clipped_surrogate(ratio, adv, 0.2, 0.28)
    assert s.tolist() == pytest.approx([0.5, 1.28, -0.8, -1.5, -1.0])
    (g,) = torch.autograd.grad(s.sum(), ratio)
    assert g.tolist() == [1.0, 0.0, 0.0, -1.0, -1.0]  # the clip removes gradient at (A>0, rho>1+eh), (A<0, rho<1-el)
    dual = clipped_surrogate(torch.tensor([5.0], dtype=F64), torch.tensor([-1.0], dtype=F64), 0.2, 0.2, 3.0)
    assert dual.item() == -3.0


def test_kl_estimators():
    logp = torch.tensor([-1.0, -2.0], dtype=F64)
    ref = torch.tensor([-1.5, -1.0], dtype=F64)
    d = ref - logp
    assert kl_penalty(logp, ref, "k1").tolist() == pytest.approx((-d).tolist())
    assert kl_penalty(logp, ref, "k2").tolist() == pytest.approx((0.5 * d**2).tolist())
    assert kl_penalty(logp, ref, "k3").tolist() == pytest.approx((d.exp() - d - 1).tolist())
    big = kl_penalty(torch.tensor([-50.0]), torch.tensor([0.0]), "k3")
    assert big.item() == 10.0  # clamped (verl low_var_kl)


def test_kl_term_enters_loss_with_beta_and_is_not_ntf_masked():
    batch = make_batch([0, 0, 1, 1], lengths=[4, 4, 4, 4], uid=[0, 0, 1, 1])
    batch.ref_logp = batch.old_logp - 0.3
    logp = batch.old_logp.clone().requires_grad_(True)
    plain = get_method("nsr", ntf_keep=0.25)
    with_kl = get_method("nsr", ntf_keep=0.25, kl_beta=0.5)
    on = batch.with_logp(logp)
    l0, _ = plain.loss(on, plain.prepare(batch))
    l1, diag = with_kl.loss(on, with_kl.prepare(batch))
    k3 = math.exp(-0.3) + 0.3 - 1
    assert (l1 - l0).item() == pytest.approx(0.5 * k3, abs=1e-12)  # over every token, not only NTF-kept ones
    assert diag["actor/kl_ref"] == pytest.approx(k3)


def test_whitening_is_token_weighted_and_unbiased():
    values = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=F64)
    mask = torch.tensor([[True, True], [True, False]])
    out = masked_whiten(values, mask)
    mu, var = 2 / 3, ((1 / 3) ** 2 * 2 + (2 / 3) ** 2) / 3 * 3 / 2
    assert out[0, 0].item() == pytest.approx((1 - mu) / math.sqrt(var + 1e-8))


def test_denominators():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert aggregation_denominator(mask, "token-mean") == 5
    assert aggregation_denominator(mask, "seq-mean-token-mean") == 2
    assert aggregation_denominator(mask, "seq-mean-token-sum-norm", max_response_length=8) == 16
    assert aggregation_denominator(mask, "constant", agg_constant=1000) == 1000
    with pytest.raises(ValueError):
        aggregation_denominator(mask, "sum")


def test_update_diagnostics_values():
    batch = make_batch([1, 0, 0, 0], lengths=[2, 2, 2, 2], uid=[0] * 4)
    method = get_method("grpo", clip_high=0.28)
    prep = method.prepare(batch)
    logp = batch.old_logp + torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.1, 0.0], [0.0, 0.0]], dtype=F64)
    _, diag = method.loss(batch.with_logp(logp), prep)
    assert diag["actor/clipfrac_high"] == 1 / 8  # A > 0, rho = e^0.5 > 1.28
    assert diag["actor/clipfrac_low"] == 1 / 8  # A < 0, rho = e^-0.5 < 0.8
    assert diag["actor/ratio_max"] == pytest.approx(math.exp(0.5))
    assert diag["actor/ppo_kl"] == pytest.approx(-0.1 / 8)


def test_nft_update_diagnostics():
    batch = make_batch([1, 0, 0, 0], lengths=[1, 1, 1, 1], old_logp=torch.zeros(4, 1))
    method = get_method("nft")
    logp = torch.tensor([[0.0], [math.log(2.0)], [0.0], [math.log(0.5)]], dtype=F64)
    _, diag = method.loss(batch.with_logp(logp), method.prepare(batch))
    assert diag["nft/neg_clip_frac"] == pytest.approx(1 / 3)  # only R = 2 has argument 2/3 < eps = 1
    assert diag["nft/ratio_mean"] == pytest.approx(4.5 / 4)
    assert diag["actor/clipfrac_high"] == 0 and diag["actor/clipfrac_low"] == 0
