"""Invariant (f): negative token filtering keeps exactly the lowest-l_old tokens of negative responses."""

from __future__ import annotations

import math

import pytest
import torch
from methods_testlib import F64, make_batch, on_policy

from negrl.methods import get_method
from negrl.methods.common import aggregate
from negrl.methods.ntf import negative_token_mask, tokens_to_keep

EXAMPLE = [-0.01, -2.3, -0.05, -0.7, -4.1, -0.02, -0.3, -1.2, -0.01, -0.9, -3.0, -0.1]


def kept_positions(old, keep, reward=0.0):
    old = torch.tensor([old], dtype=F64)
    mask = negative_token_mask(old, torch.ones_like(old, dtype=torch.bool), torch.tensor([reward]), keep)
    return set(mask[0].nonzero()[:, 0].tolist())


def test_ntf_example():
    assert kept_positions(EXAMPLE, 0.1) == {4, 10}
    assert kept_positions(EXAMPLE, 0.2) == {1, 4, 10}
    assert kept_positions(EXAMPLE, 0.5) == {1, 3, 4, 7, 9, 10}
    assert kept_positions(EXAMPLE, 1.0) == set(range(12))
    assert kept_positions([-1, -1, -1, -0.5], 0.5) == {0, 1}  # ties: lower position first
    assert kept_positions(EXAMPLE, 0.1, reward=1.0) == set(range(12))  # positives untouched
    assert tokens_to_keep(torch.tensor([100]), 0.07).item() == 7


def test_ntf_example_loss_and_diagnostics():
    """A = -1 at rho = 1 on the L = 12 response alone: token-mean loss 2/12, not 1."""
    batch = make_batch([0], old_logp=[EXAMPLE], lengths=[12])
    method = get_method("nsr", ntf_keep=0.1)
    prep = method.prepare(batch)
    on, _ = on_policy(batch)
    assert method.loss(on, prep)[0].item() == pytest.approx(2 / 12, abs=1e-12)
    d = prep.diagnostics
    assert d["ntf/kept_frac"] == pytest.approx(2 / 12)
    assert d["ntf/kept_logp_mean"] == pytest.approx(-3.55)
    assert d["ntf/masked_logp_mean"] == pytest.approx(-0.559, abs=1e-3)
    assert d["ntf/neg_responses"] == 1


def random_batch(seed=0, B=16, T=200):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = 100
    # deliberate ties: log-probs drawn from a small set of values
    values = -torch.tensor([0.0, 0.01, 0.5, 1.0, 2.0, 5.0], dtype=F64)
    old = values[torch.randint(0, len(values), (B, T), generator=gen)]
    rewards = torch.randint(0, 2, (B,), generator=gen).double()
    rewards[0] = 0.0
    return make_batch(rewards, old_logp=old, lengths=lengths, uid=torch.arange(B) // 4, T=T)


@pytest.mark.parametrize("keep", [0.07, 0.1, 0.2, 0.5, 1.0])
def test_ntf_keeps_lowest_tokens_of_negatives_only(keep):
    batch = random_batch()
    mask = negative_token_mask(batch.old_logp, batch.mask, batch.rewards, keep)
    for i in range(len(batch.rewards)):
        L = int(batch.mask[i].sum())
        old = batch.old_logp[i, :L]
        if batch.rewards[i] > 0.5:
            assert torch.equal(mask[i], batch.mask[i])
            continue
        k = min(L, max(1, math.ceil(keep * L - 1e-6)))
        assert int(mask[i].sum()) == k and not mask[i, L:].any()
        expected = set(torch.sort(old, stable=True).indices[:k].tolist())
        assert set(mask[i, :L].nonzero()[:, 0].tolist()) == expected
        if k < L:
            assert old[mask[i, :L]].max() <= old[~mask[i, :L]].min()
    if keep == 0.07:
        assert int(mask[0].sum()) == 7  # L = 100


@pytest.mark.parametrize("keep", [0.07, 0.1, 0.2, 0.5, 1.0])
def test_ntf_denominator_unchanged(keep):
    """x = 1 on negatives, 0 on positives: token-mean = sum_neg k_i / sum_all |o_i|."""
    batch = random_batch(seed=1)
    method = get_method("nsr", ntf_keep=keep)
    prep = method.prepare(batch)
    x = (batch.rewards <= 0.5)[:, None].double().expand_as(batch.old_logp) * prep.ntf_mask
    k = prep.ntf_mask[batch.rewards <= 0.5].sum()
    assert aggregate(x, batch.mask, "token-mean").item() == pytest.approx(k.item() / batch.mask.sum().item(), abs=1e-15)
    assert method.aggregation_denominator(batch) == float(batch.mask.sum())


def test_ntf_keep_one_is_bit_identical_to_off():
    batch = random_batch(seed=2)
    gen = torch.Generator().manual_seed(0)
    logp = batch.old_logp + 0.1 * torch.randn(batch.old_logp.shape, generator=gen, dtype=F64)
    for name in ["reinforce_pp", "crf", "grpo", "nft"]:
        losses = []
        for keep in [None, 1.0]:
            method = get_method(name, ntf_keep=keep, dynamic_sampling=False)
            leaf = logp.clone().requires_grad_(True)
            loss, _ = method.loss(batch.with_logp(leaf), method.prepare(batch))
            losses.append((loss.item(), torch.autograd.grad(loss, leaf)[0]))
        assert losses[0][0] == losses[1][0] and torch.equal(losses[0][1], losses[1][1]), name


def test_ntf_mask_depends_only_on_old_logp():
    batch = random_batch(seed=3)
    method = get_method("reinforce_pp", ntf_keep=0.2)
    prep = method.prepare(batch)
    # the current policy is not an input of prepare: a batch carrying some logp gives the same mask
    again = method.prepare(batch.with_logp(batch.old_logp + torch.randn_like(batch.old_logp)))
    assert torch.equal(prep.ntf_mask, again.ntf_mask)
    # mini-batch partition: the rows of a mini-batch carry the rollout-level mask unchanged
    rows = [3, 7, 0, 12]
    assert torch.equal(prep.select(rows).ntf_mask, prep.ntf_mask[rows])
    # the mask is a per-response function of l_old: recomputing on a sub-batch gives the same rows
    sub = negative_token_mask(batch.old_logp[rows], batch.mask[rows], batch.rewards[rows], 0.2)
    assert torch.equal(sub, prep.ntf_mask[rows])
