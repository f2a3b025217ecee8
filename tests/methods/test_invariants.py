"""Invariants (d) degenerate groups, (e) group-size guard, (h) weights, (j) uid grouping, (k) micro-batching."""

from __future__ import annotations

import pytest
import torch
from methods_testlib import F64, make_batch, on_policy

from negrl.errors import ConfigError
from negrl.methods import GroupSizeError, available_methods, get_method
from negrl.methods.common import LOSS_AGG_MODES
from negrl.train.dynamic_sampling import group_passes_filter

L_MAX = 8
# Every method and the notable variants; max_response_length is a common option the trainer always passes.
VARIANTS = {
    **{name: {} for name in available_methods()},
    "lens_mixed_only": {"_name": "lens", "mode": "mixed_only"},
    "lens_negative_only": {"_name": "lens", "mode": "negative_only"},
    "nft_grpo_sqrt": {"_name": "nft", "omega": "grpo_sqrt"},
    "nft_uniform": {"_name": "nft", "omega": "uniform"},
    "nft_clamped": {"_name": "nft", "clamp_degenerate_groups": True},
    "nft_eps_half": {"_name": "nft", "neg_clip": 0.5},
    "dapo_filter": {"_name": "dapo", "overlong_filter": True},
    "rft_keep_all_right": {"_name": "rft", "keep_all_right": True},
    "reinforce_pp_ntf": {"_name": "reinforce_pp", "ntf_keep": 0.3},
    "grpo_ntf_kl": {"_name": "grpo", "ntf_keep": 0.5, "kl_beta": 0.1},
    "grpo_dual_clip": {"_name": "grpo", "dual_clip_c": 3.0},
    "dapo_plain": {"_name": "dapo", "overlong_shaping": False},
    "grpo_filter_on": {"_name": "grpo", "dynamic_sampling": True},
    "rft_no_filter": {"_name": "rft", "dynamic_sampling": False},
}


def build(variant: str, **overrides):
    options = dict(VARIANTS.get(variant, {}))
    name = options.pop("_name", variant)
    options.setdefault("max_response_length", L_MAX)
    return get_method(name, **{**options, **overrides})


def degenerate_batch(noise_seed=0):
    """Groups: 0 mixed, 1 all-right, 2 all-wrong (G = 4, distinct pbar and lengths), l = l_old + N(0, 0.1^2)."""
    batch = make_batch(
        [1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        pbar=[0.5, 0.8, 0.4, 0.2, 0.9, 0.6, 0.3, 0.1, 0.7, 0.45, 0.25, 0.05],
        lengths=[3, 5, 2, 8, 1, 4, 6, 7, 2, 3, 5, 8],
        uid=[7] * 4 + [3] * 4 + [11] * 4,
        truncated=[False] * 7 + [True] + [False] * 3 + [True],
        T=L_MAX,
    )
    gen = torch.Generator().manual_seed(noise_seed)
    noise = 0.1 * torch.randn(batch.old_logp.shape, generator=gen, dtype=F64)
    return batch, (batch.old_logp + noise) * batch.mask


def logp_grad(method, batch, logp):
    leaf = logp.clone().requires_grad_(True)
    loss, diag = method.loss(batch.with_logp(leaf, entropy=torch.ones_like(logp)), method.prepare(batch))
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss, grad, diag


ALL_RIGHT, ALL_WRONG = slice(4, 8), slice(8, 12)
ZERO_ON_ALL_RIGHT = ["grpo", "dr_grpo", "rloo", "lens", "lens_mixed_only", "lens_negative_only", "nft",
                     "nft_grpo_sqrt", "nsr", "dapo_plain"]
ZERO_ON_ALL_WRONG = ["grpo", "dr_grpo", "rloo", "rft", "nft", "nft_grpo_sqrt", "nft_uniform", "lens_mixed_only"]


@pytest.mark.parametrize("variant", ZERO_ON_ALL_RIGHT)
def test_d_zero_gradient_on_all_right_group(variant):
    batch, logp = degenerate_batch()
    _, grad, _ = logp_grad(build(variant, dynamic_sampling=False), batch, logp)
    assert (grad[ALL_RIGHT] == 0.0).all()


@pytest.mark.parametrize("variant", ZERO_ON_ALL_WRONG)
def test_d_zero_gradient_on_all_wrong_group(variant):
    batch, logp = degenerate_batch()
    _, grad, _ = logp_grad(build(variant, dynamic_sampling=False), batch, logp)
    assert (grad[ALL_WRONG] == 0.0).all()


@pytest.mark.parametrize(
    "variant,rows",
    [("lens", ALL_WRONG), ("lens_negative_only", ALL_WRONG), ("reinforce_pp", ALL_WRONG), ("crf", ALL_WRONG),
     ("nsr", ALL_WRONG), ("w_reinforce", ALL_WRONG), ("reinforce_pp", ALL_RIGHT), ("w_reinforce", ALL_RIGHT),
     ("rft_keep_all_right", ALL_RIGHT), ("nft_uniform", ALL_RIGHT)],
)
def test_d_nonzero_gradient_where_papers_say(variant, rows):
    batch, logp = degenerate_batch()
    _, grad, _ = logp_grad(build(variant, dynamic_sampling=False), batch, logp)
    assert (grad[rows] != 0).any()


def test_d_reinforce_pp_baseline_degenerate_groups_share_minus_mu_over_sigma():
    batch, _ = degenerate_batch()
    adv = build("reinforce_pp_baseline").prepare(batch).adv[:, 0]
    degenerate = adv[4:12]
    assert torch.allclose(degenerate, degenerate[0].expand(8), atol=1e-15, rtol=0) and degenerate[0] != 0


def test_d_filters_remove_the_right_groups():
    groups = {"mixed": [1, 0, 0, 1], "all_right": [1, 1, 1, 1], "all_wrong": [0, 0, 0, 0]}
    assert [k for k, r in groups.items() if group_passes_filter(r, "mixed")] == ["mixed"]
    assert [k for k, r in groups.items() if group_passes_filter(r, "has_correct")] == ["mixed", "all_right"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_d_no_nan_anywhere(variant):
    batch, logp = degenerate_batch()
    method = build(variant, dynamic_sampling=False)
    if method.options.kl_beta > 0:
        batch.ref_logp = batch.old_logp - 0.05
    loss, grad, diag = logp_grad(method, batch, logp)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert all(v == v and abs(v) != float("inf") for v in diag.values()), diag


GROUP_METHODS = ["grpo", "dr_grpo", "dapo", "rloo", "reinforce_pp_baseline", "lens", "nft"]


@pytest.mark.parametrize("variant", GROUP_METHODS + ["rft", "grpo_filter_on"])
def test_e_group_methods_refuse_one_sample_per_prompt(variant):
    method = build(variant)
    with pytest.raises(ConfigError, match=method.name):
        method.validate_config(n=1)
    method.validate_config(n=2)
    batch = make_batch([1, 0, 0, 1, 0], uid=[5, 5, 42, 9, 9], lengths=[2, 2, 2, 2, 2])
    with pytest.raises(GroupSizeError) as info:
        method.prepare(batch)
    message = str(info.value)
    assert method.name in message and "uid 42" in message and "has 1" in message
    assert f"minimum {method.min_group_size}" in message


@pytest.mark.parametrize("variant", ["reinforce_pp", "crf", "nsr", "w_reinforce", "rft_no_filter"])
def test_e_single_rollout_methods_accept_n_1(variant):
    method = build(variant)
    method.validate_config(n=1)
    batch = make_batch([1, 0, 0, 1, 0], uid=range(5), lengths=[2, 3, 1, 2, 4])
    on, _ = on_policy(batch)
    loss, _ = method(on)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_h_weight_is_minus_token_gradient_on_policy(variant):
    batch, _ = degenerate_batch()
    method = build(variant, dynamic_sampling=False, kl_beta=0.0)
    prep = method.prepare(batch)
    on, leaf = on_policy(batch)
    x, *_ = method.token_loss(on, prep)
    (grad,) = torch.autograd.grad(x.sum(), leaf)
    torch.testing.assert_close(-grad * batch.mask, prep.weight, atol=1e-12, rtol=0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_j_statistics_by_uid_not_position(variant):
    batch, _ = degenerate_batch()
    method = build(variant, dynamic_sampling=False)
    prep = method.prepare(batch)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    permuted = method.prepare(batch.select(perm))
    for a, b in [(prep.adv, permuted.adv), (prep.weight, permuted.weight), (prep.ntf_mask, permuted.ntf_mask)]:
        torch.testing.assert_close(a[perm], b, atol=1e-14, rtol=0)
    # interleaving two groups' rows does not change their advantages
    interleaved = [0, 8, 1, 9, 2, 10, 3, 11, 4, 5, 6, 7]
    torch.testing.assert_close(prep.adv[interleaved], method.prepare(batch.select(interleaved)).adv, atol=1e-14, rtol=0)


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_k_micro_batching_is_exact(variant, mode):
    batch, logp = degenerate_batch()
    batch.ref_logp = batch.old_logp - 0.05
    method = build(variant, dynamic_sampling=False, loss_agg=mode)
    prep = method.prepare(batch)
    rows = torch.tensor([0, 4, 8, 1, 5, 9, 2, 10])  # a mini-batch of 8 rows
    mini, mini_prep = batch.select(rows), prep.select(rows)

    leaf = logp.clone().requires_grad_(True)
    loss, _ = method.loss(mini.with_logp(leaf[rows]), mini_prep)
    (whole,) = torch.autograd.grad(loss, leaf)

    leaf = logp.clone().requires_grad_(True)
    den = method.aggregation_denominator(mini)
    for micro in rows.split(2):
        part = torch.isin(rows, micro).nonzero()[:, 0]
        loss, _ = method.loss(mini.select(part).with_logp(leaf[micro]), mini_prep.select(part), denominator=den)
        loss.backward()
    torch.testing.assert_close(leaf.grad, whole, atol=1e-10, rtol=0)
