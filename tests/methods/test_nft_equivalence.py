"""Invariants (a) NFT = GRPO family on-policy and (g) NFT's straight-through clip (NFT paper, arXiv 2505.18116)."""

from __future__ import annotations

import math

import pytest
import torch
from methods_testlib import F64, SoftmaxPolicy, TinyTransformerPolicy, max_abs_diff

from negrl.methods import get_method
from negrl.methods.nft import NFT, nft_token_loss, straight_through_max

MODES = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]


class UnrootedNFT(NFT):
    """omega = (1 - r)/r, the form quoted by secondary summaries (wrong: it is not GRPO)."""

    name = "nft_unrooted"  # not registered

    def omega(self, rhat_c):
        return (1.0 - rhat_c) / rhat_c


def gradient(batch, params, method):
    loss, _ = method(batch)
    return [g.detach() for g in torch.autograd.grad(loss, params, retain_graph=True)]


@pytest.fixture(scope="module")
def tiny_transformer():
    return TinyTransformerPolicy()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fixture", ["softmax", "transformer"])
def test_a_nft_equals_grpo_family_on_policy(fixture, mode, request):
    policy = SoftmaxPolicy() if fixture == "softmax" else request.getfixturevalue("tiny_transformer")
    opts = {"loss_agg": mode, "max_response_length": 8}
    batch, params = policy.batch(), policy.parameters()
    nft_dr = gradient(batch, params, get_method("nft", omega="one_minus_r", **opts))
    dr_grpo = gradient(batch, params, get_method("dr_grpo", **opts))
    assert max_abs_diff(nft_dr, dr_grpo) < 1e-6

    nft_sqrt = gradient(batch, params, get_method("nft", omega="grpo_sqrt", **opts))
    grpo_pop = gradient(batch, params, get_method("grpo", std="population", adv_eps=0.0, **opts))
    assert max_abs_diff(nft_sqrt, grpo_pop) < 1e-6

    # sanity: the test can fail
    grpo_sample = gradient(batch, params, get_method("grpo", std="sample", adv_eps=0.0, **opts))
    assert max_abs_diff(nft_sqrt, grpo_sample) > 1e-4
    unrooted = gradient(batch, params, UnrootedNFT(**opts))
    assert max_abs_diff(unrooted, grpo_pop) > 1e-3


def test_a_expected_magnitudes_softmax():
    """methods.md: equalities ~1e-17; sample std ~5e-3, unrooted omega ~9e-2 on the softmax fixture."""
    policy = SoftmaxPolicy()
    batch, params = policy.batch(), policy.parameters()
    grpo_pop = gradient(batch, params, get_method("grpo", std="population", adv_eps=0.0))
    assert max_abs_diff(gradient(batch, params, get_method("nft", omega="grpo_sqrt")), grpo_pop) < 1e-14
    assert 1e-4 < max_abs_diff(gradient(batch, params, get_method("grpo", adv_eps=0.0)), grpo_pop) < 5e-2
    assert 1e-2 < max_abs_diff(gradient(batch, params, UnrootedNFT()), grpo_pop) < 1.0


def test_g_straight_through_clip_passes_gradient():
    """One wrong token, r = 0.25, omega = 0.75, eps = 1, l_old = 0, l = log 2 (R = 2, argument 2/3 < eps)."""
    rhat, omega = torch.tensor([0.25], dtype=F64), torch.tensor([0.75], dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    logp = torch.full((1, 1), math.log(2.0), dtype=F64, requires_grad=True)
    x, y = nft_token_loss(logp - 0.0, rhat, pos_coef=zero, neg_coef=omega, neg_clip=1.0)
    (g,) = torch.autograd.grad(x.sum(), logp)
    assert x.item() == 0.0 and y.item() == pytest.approx(2 / 3)
    assert g.item() == pytest.approx(0.5, abs=1e-12)  # = omega r R / (eps (1 - r))

    # the same loss with torch.clamp: zero gradient, negative learning switched off
    logp2 = logp.detach().clone().requires_grad_(True)
    y2 = (1 - rhat * logp2.exp()) / (1 - rhat)
    x2 = -omega * torch.log(torch.clamp(y2, min=1.0))
    (g2,) = torch.autograd.grad(x2.sum(), logp2)
    assert x2.item() == 0.0 and g2.item() == 0.0

    # unclipped: R = 0.5
    logp3 = torch.full((1, 1), math.log(0.5), dtype=F64, requires_grad=True)
    x3, _ = nft_token_loss(logp3, rhat, pos_coef=zero, neg_coef=omega, neg_clip=1.0)
    (g3,) = torch.autograd.grad(x3.sum(), logp3)
    assert x3.item() == pytest.approx(-0.1156, abs=1e-4) and g3.item() == pytest.approx(0.1071, abs=1e-4)


def test_g_straight_through_max_is_exact_for_huge_arguments():
    """The forward value is exactly max(y, eps) even when y + sg(max(y, eps) - y) would round to <= 0."""
    y = torch.tensor([-2.4e10, -1e30, 0.3, 5.0], dtype=torch.float32, requires_grad=True)
    out = straight_through_max(y, 1.0)
    assert out.tolist() == [1.0, 1.0, 1.0, 5.0]
    (g,) = torch.autograd.grad(out.sum(), y)
    assert g.tolist() == [1.0, 1.0, 1.0, 1.0]
