"""Invariants (b) calibrated reward = MLE gradient, (c) sign invariance, (l) numerics (LENS, arXiv 2510.08696)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from methods_testlib import F64, SoftmaxPolicy, make_batch

from negrl.methods import RolloutBatch, get_method
from negrl.methods.common import group_by_uid
from negrl.methods.lens import calibrated_reward


def test_b1_theorem1_sequence_level():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(8, generator=gen, dtype=F64).requires_grad_(True)
    responses = torch.tensor([0, 2, 3, 5, 6, 7])
    r = torch.tensor([1, 0, 0, 1, 0, 0], dtype=F64)
    log_pi = torch.log_softmax(theta, 0)[responses]
    log_D = math.log(1.5) + torch.log_softmax(theta, 0).max().detach()
    mle = -(r * log_pi + (1 - r) * torch.log(1 - (log_pi - log_D).exp())).sum()
    r_cal = calibrated_reward(log_pi.detach(), r, log_D, scale=1.0)
    rf = -(r_cal * log_pi).sum()
    (g_mle,) = torch.autograd.grad(mle, theta, retain_graph=True)
    (g_rf,) = torch.autograd.grad(rf, theta)
    assert float((g_mle - g_rf).abs().max()) < 1e-9
    assert float(g_mle.abs().max()) > 1e-2


def test_b2_implemented_form_softmax_policy():
    policy = SoftmaxPolicy()
    logp = policy.logp()
    m = policy.mask.to(F64)
    log_pbar = (logp * m).sum(-1) / m.sum(-1)
    groups = group_by_uid(policy.uid)
    G = groups.broadcast(groups.size.to(F64))
    log_D = math.log(2.0) + groups.broadcast(groups.max(log_pbar.detach()))  # D = 2 max pbar, fixed
    r = policy.rewards
    mle = -(r * log_pbar + (1 - r) / G * torch.log(1 - (log_pbar - log_D).exp())).sum()
    r_cal = calibrated_reward(log_pbar.detach(), r, log_D, scale=1.0 / G)
    (g_mle,) = torch.autograd.grad(mle, policy.theta, retain_graph=True)
    (g_rf,) = torch.autograd.grad(-(r_cal * log_pbar).sum(), policy.theta, retain_graph=True)
    assert float((g_mle - g_rf).abs().max()) < 1e-9

    # the library's own D and r~ (prepare) give the same identity with its D
    prep = get_method("lens").prepare(policy.batch())
    lib_log_D = prep.tensors["log_D"]
    mle = -(r * log_pbar + (1 - r) / G * torch.log(1 - (log_pbar - lib_log_D).exp())).sum()
    (g_mle,) = torch.autograd.grad(mle, policy.theta, retain_graph=True)
    (g_rf,) = torch.autograd.grad(-(prep.tensors["calibrated_reward"] * log_pbar).sum(), policy.theta)
    assert float((g_mle - g_rf).abs().max()) < 1e-9


def test_b3_theorem2_on_policy_value():
    gen = torch.Generator().manual_seed(1)
    theta = torch.randn(6, generator=gen, dtype=F64).requires_grad_(True)
    r = torch.tensor([1, 0, 0, 1, 0, 0], dtype=F64)
    log_pi = torch.log_softmax(theta, 0)
    pi = log_pi.exp()
    log_D = math.log(1.3) + log_pi.max().detach()
    z = (log_pi - log_D).exp()
    w = -torch.log1p(-z) / z - 1.0
    value = (pi * (r - (1 - r) * w)).sum()
    r_cal = calibrated_reward(log_pi.detach(), r, log_D, scale=1.0)
    surrogate = (pi.detach() * r_cal * log_pi).sum()
    (g_value,) = torch.autograd.grad(value, theta, retain_graph=True)
    (g_sur,) = torch.autograd.grad(surrogate, theta)
    assert float((g_value - g_sur).abs().max()) < 1e-9


@functools.lru_cache(maxsize=None)
def random_mixed_groups(num_groups: int, seed: int):
    """Random mixed groups, one token per response with l_old = log pbar (vectorized property test)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 33, num_groups)
    uid = np.repeat(np.arange(num_groups), sizes)
    rewards, log_pbar = [], []
    for G in sizes:
        correct = rng.integers(1, G)
        r = np.zeros(G)
        r[rng.choice(G, correct, replace=False)] = 1
        s = rng.choice([0.01, 1.0, 6.0, 20.0])
        lp = np.full(G, -rng.uniform(0, s)) if rng.random() < 0.1 else -rng.uniform(0, s, G)
        rewards.append(r)
        log_pbar.append(lp)
    return np.concatenate(rewards), np.concatenate(log_pbar), uid, sizes


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("std", ["sample", "population"])
def test_c_sign_invariance_in_mixed_groups(dtype, std):
    r_np, lp_np, uid_np, sizes = random_mixed_groups(10_000, seed=0 if dtype == torch.float64 else 1)
    B = len(r_np)
    batch = RolloutBatch(
        old_logp=torch.tensor(lp_np, dtype=dtype)[:, None], mask=torch.ones(B, 1, dtype=torch.bool),
        rewards=torch.tensor(r_np, dtype=dtype), uid=torch.tensor(uid_np), truncated=torch.zeros(B, dtype=torch.bool),
    )
    prep = get_method("lens", std=std).prepare(batch)
    adv, r_cal = prep.adv[:, 0].double(), prep.tensors["calibrated_reward"].double()
    correct = batch.rewards > 0.5
    assert (adv[correct] > 0).all() and (adv[~correct] < 0).all()
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    G = torch.tensor(np.repeat(sizes, sizes), dtype=F64)
    assert (r_cal[~correct] >= -1 / G[~correct] - tol).all() and (r_cal[~correct] < 0).all()
    # floor active and the most confident response wrong: that response has r~ = -1/G exactly
    log_pbar = batch.old_logp[:, 0].double()
    groups = group_by_uid(batch.uid)
    top = log_pbar == groups.broadcast(groups.max(log_pbar))
    floor = (prep.tensors["log_D"].double() - groups.broadcast(groups.max(log_pbar)) - math.log(2)).abs() < 1e-5
    hit = top & floor & ~correct
    assert hit.sum() > 100
    assert ((r_cal[hit] + 1 / G[hit]).abs() <= tol).all()


def test_l_lens_numerics_long_responses_bf16():
    T = 4000
    gen = torch.Generator().manual_seed(0)
    means = torch.tensor([-0.3, -15.0, -0.3, -15.0])
    old = (means[:, None] + 0.1 * torch.randn(4, T, generator=gen)).to(torch.bfloat16).to(torch.float32)
    for rewards in ([1, 0, 0, 0], [0, 0, 0, 0]):
        batch = make_batch(rewards, old_logp=old, lengths=[T] * 4, dtype=torch.float32)
        prep = get_method("lens").prepare(batch)
        for t in (prep.tensors["pbar"], prep.tensors["log_D"], prep.adv):
            assert torch.isfinite(t).all()
        assert prep.tensors["pbar"][1] > 0  # exp(-15) survives (float64 inside)
    assert (prep.adv[:, 0] != 0).any()


def test_l_grpo_all_same_group_is_exactly_zero():
    for rewards in ([1, 1, 1, 1], [0, 0, 0, 0]):
        for dtype in (torch.float32, torch.float64):
            prep = get_method("grpo").prepare(make_batch(rewards, dtype=dtype))
            assert (prep.adv == 0).all() and not prep.adv.isnan().any()


def test_l_degenerate_groups_with_zero_eps_never_nan():
    """adv_eps = 0 on all-equal groups: the 0/0 is never evaluated, A = 0 exactly (C10)."""
    batch = make_batch([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0], pbar=[0.5] * 12, uid=[0] * 4 + [1] * 4 + [2] * 4)
    for name, extra in [("grpo", {}), ("lens", {}), ("dapo", {"max_response_length": 4, "overlong_shaping": False})]:
        for std in ("sample", "population"):
            adv = get_method(name, adv_eps=0.0, std=std, **extra).prepare(batch).adv
            assert torch.isfinite(adv).all() and (adv[:8] == 0).all() and (adv[8:] != 0).all()
