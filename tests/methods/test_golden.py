"""Invariant (i): every worked example of methods.md §3 and the C8 aggregation example, atol 1e-4."""

from __future__ import annotations

import math

import pytest
import torch
from methods_testlib import F64, make_batch, on_policy

from negrl.methods import get_method
from negrl.methods.common import aggregate

ATOL = 1e-4
R1 = [1, 0, 0, 0]


def adv(method, batch):
    return method.prepare(batch).adv[:, 0]


def close(actual, expected):
    torch.testing.assert_close(actual.to(F64), torch.tensor(expected, dtype=F64), atol=ATOL, rtol=0)


def test_aggregation_example_c8():
    x = torch.tensor([[1, 1, 0, 0], [-1, -1, -1, -1]], dtype=F64)
    m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    expected = {"token-mean": -0.3333, "seq-mean-token-mean": 0.0, "seq-mean-token-sum-norm": -0.1250,
                "constant": -0.0020}
    for mode, value in expected.items():
        assert aggregate(x, m, mode, max_response_length=8, agg_constant=1000).item() == pytest.approx(value, abs=ATOL)


def test_grpo_examples():
    close(adv(get_method("grpo"), make_batch(R1)), [1.5, -0.5, -0.5, -0.5])
    close(adv(get_method("grpo", std="population"), make_batch(R1)), [1.7320, -0.5773, -0.5773, -0.5773])
    close(adv(get_method("grpo", std="population", adv_eps=0.0), make_batch(R1)), [1.7321, -0.5774, -0.5774, -0.5774])
    close(adv(get_method("grpo"), make_batch([1, 1, 0, 0])), [0.8660, 0.8660, -0.8660, -0.8660])
    close(adv(get_method("grpo", std="population"), make_batch([1, 1, 0, 0])), [1.0, 1.0, -1.0, -1.0])


def test_dr_grpo_example():
    close(adv(get_method("dr_grpo"), make_batch(R1)), [0.75, -0.25, -0.25, -0.25])


@pytest.mark.parametrize(
    "rewards,pbar,expected_rcal,expected_adv",
    [
        ([1, 0, 0, 0], [0.5, 0.8, 0.4, 0.2], [1, -0.1667, -0.0625, -0.0278], [1.4912, -0.6454, -0.4547, -0.3911]),
        ([1, 0, 0, 0], [0.1, 0.8, 0.4, 0.2], [1, -0.2500, -0.0833, -0.0357], [1.4803, -0.7166, -0.4237, -0.3400]),
        ([1, 1, 0, 0], [0.6, 0.3, 0.9, 0.05], [1, 1, -0.2500, -0.0071], [0.8562, 0.8562, -1.0404, -0.6719]),
        ([0, 0, 0, 0], [0.8, 0.4, 0.2, 0.1], [-0.2500, -0.0833, -0.0357, -0.0167], [-0.0384, 0.0033, 0.0152, 0.0199]),
        ([1, 1, 1, 1], [0.8, 0.4, 0.2, 0.1], [1, 1, 1, 1], [0, 0, 0, 0]),
    ],
    ids=["L1-D_imp", "L2-floor", "L3-two-correct", "L4-all-wrong", "L5-all-right"],
)
def test_lens_examples(rewards, pbar, expected_rcal, expected_adv):
    prep = get_method("lens").prepare(make_batch(rewards, pbar=pbar, lengths=[3, 1, 4, 2]))
    close(prep.tensors["calibrated_reward"], expected_rcal)
    close(prep.adv[:, 0], expected_adv)


def test_lens_example_D_values():
    for pbar, D in [([0.5, 0.8, 0.4, 0.2], 2.0), ([0.1, 0.8, 0.4, 0.2], 1.6)]:
        prep = get_method("lens").prepare(make_batch(R1, pbar=pbar))
        close(prep.tensors["log_D"].exp(), [D] * 4)
    prep = get_method("lens").prepare(make_batch([1, 1, 0, 0], pbar=[0.6, 0.3, 0.9, 0.05]))
    close(prep.tensors["log_D"].exp(), [1.8] * 4)


def test_lens_variants():
    L1 = make_batch(R1, pbar=[0.5, 0.8, 0.4, 0.2])
    close(adv(get_method("lens", std="population"), L1), [1.7219, -0.7453, -0.5250, -0.4516])
    close(adv(get_method("lens", mode="negative_only"), L1), [1.5, -0.5, -0.5, -0.5])
    L4 = make_batch([0, 0, 0, 0], pbar=[0.8, 0.4, 0.2, 0.1])
    close(adv(get_method("lens", mode="mixed_only"), L4), [0, 0, 0, 0])
    close(adv(get_method("lens", mode="negative_only"), L4), [-0.0384, 0.0033, 0.0152, 0.0199])
    close(adv(get_method("lens", alpha=1.0), L4), [-0.1536, 0.0131, 0.0607, 0.0798])


def test_dapo_example():
    method = get_method("dapo", max_response_length=20, overlong_buffer_len=4)
    batch = make_batch(R1, lengths=[10, 18, 20, 12], truncated=[False, False, True, False])
    close(method.signed_reward(batch), [1, -1.5, -2, -1])
    close(adv(method, batch), [1.4259, -0.4753, -0.8555, -0.0951])
    assert method.filters_groups and method.filter_criterion == "mixed" and method.options.clip_high == 0.28
    # default L_cache = floor(0.2 L_max)
    assert get_method("dapo", max_response_length=20480).buffer_len == 4096


def test_dapo_overlong_filter_drops_truncated_from_numerator_and_denominator():
    method = get_method("dapo", max_response_length=20, overlong_buffer_len=4, overlong_filter=True)
    batch = make_batch(R1, lengths=[10, 18, 20, 12], truncated=[False, False, True, False])
    prep = method.prepare(batch)
    assert (prep.weight[2] == 0).all()
    assert method.aggregation_denominator(batch) == 10 + 18 + 12


def test_rloo_example():
    close(adv(get_method("rloo"), make_batch(R1)), [1.0, -1 / 3, -1 / 3, -1 / 3])


def test_reinforce_pp_example():
    batch = make_batch([1, 0, 0, 1, 0], lengths=[2, 3, 1, 2, 4], uid=[0, 1, 2, 3, 4])
    r, m = batch.rewards, batch.mask.double()
    mu = (m * r[:, None]).sum() / m.sum()
    var = (m * (r[:, None] - mu) ** 2).sum() / m.sum() * 12 / 11
    assert (mu.item(), var.item()) == (pytest.approx(0.3333, abs=ATOL), pytest.approx(0.2424, abs=ATOL))
    close(adv(get_method("reinforce_pp"), batch), [1.3540, -0.6770, -0.6770, 1.3540, -0.6770])


def test_reinforce_pp_baseline_example():
    batch = make_batch([1, 0, 1, 1, 0, 0], lengths=[2, 3, 1, 2, 2, 2], uid=[0, 0, 1, 1, 2, 2])
    close(adv(get_method("reinforce_pp_baseline"), batch), [1.6204, -1.3711, 0.1246, 0.1246, 0.1246, 0.1246])


def test_rft_example():
    method = get_method("rft")
    batch = make_batch(R1, lengths=[1, 1, 1, 1], old_logp=torch.zeros(4, 1))
    prep = method.prepare(batch)
    close(prep.weight[:, 0], [1, 0, 0, 0])
    leaf = torch.tensor([[math.log(1.5)], [0.3], [0.0], [-0.2]], dtype=F64, requires_grad=True)
    x, *_ = method.token_loss(batch.with_logp(leaf), prep)
    (g,) = torch.autograd.grad(x.sum(), leaf)
    assert x[0, 0].item() == pytest.approx(-0.4055, abs=ATOL) and g[0, 0].item() == -1.0
    assert (x[1:] == 0).all() and (g[1:] == 0).all()
    assert method.filter_criterion == "mixed"
    assert get_method("rft", keep_all_right=True).filter_criterion == "has_correct"


def test_nft_on_policy_weights():
    expected = {"one_minus_r": [0.75, -0.25, -0.25, -0.25], "grpo_sqrt": [1.7321, -0.5774, -0.5774, -0.5774],
                "uniform": [1.0, -1 / 3, -1 / 3, -1 / 3]}
    for omega, w in expected.items():
        close(get_method("nft", omega=omega).prepare(make_batch(R1)).weight[:, 0], w)


def test_nft_single_tokens():
    """Single tokens, omega = 1 - r = 0.75, eps = 1: (x, dx/dl) for the four cases of §3.8."""
    method = get_method("nft")
    batch = make_batch(R1, lengths=[1, 1, 1, 1], old_logp=torch.zeros(4, 1))
    leaf = torch.tensor([[math.log(1.5)], [0.0], [math.log(0.5)], [math.log(2.0)]], dtype=F64, requires_grad=True)
    x, *_ = method.token_loss(batch.with_logp(leaf), method.prepare(batch))
    (g,) = torch.autograd.grad(x.sum(), leaf)
    close(x[:, 0], [-0.3041, 0.0, -0.1156, 0.0])
    close(g[:, 0], [-0.75, 0.25, 0.1071, 0.5])
    assert x[1, 0].item() == 0.0 and x[3, 0].item() == 0.0  # exactly, R = 2 is clipped


@pytest.mark.parametrize("omega,wrong,right", [("one_minus_r", -0.02, 0.02), ("grpo_sqrt", -0.1429, 0.1429),
                                               ("uniform", -0.0204, 1.0)])
def test_nft_clamp_degenerate_groups(omega, wrong, right):
    batch = make_batch([0, 0, 0, 0, 1, 1, 1, 1], uid=[0] * 4 + [1] * 4)
    prep = get_method("nft", omega=omega, clamp_degenerate_groups=True).prepare(batch)
    close(prep.weight[:, 0], [wrong] * 4 + [right] * 4)
    limit = get_method("nft", omega=omega).prepare(batch).weight[:, 0]
    assert limit.tolist() == [0.0] * 4 + [1.0 if omega == "uniform" else 0.0] * 4


def test_crf_examples():
    method = get_method("crf", ntf_keep=None, loss_agg="seq-mean-token-mean")
    batch = make_batch([1, 0, 0, 1, 0], uid=range(5), lengths=[1, 2, 3, 4, 5])
    prep = method.prepare(batch)
    close(prep.adv[:, 0], [1.25, -0.8333, -0.8333, 1.25, -0.8333])
    on, leaf = on_policy(batch)
    (g,) = torch.autograd.grad(method.loss(on, prep)[0], leaf)
    close(-g.sum(-1), [0.25, -1 / 6, -1 / 6, 0.25, -1 / 6])  # 1/(2 N+) and -1/(2 N-) per response
    close(adv(method, make_batch([0, 0, 0], uid=range(3))), [-1, -1, -1])
    close(adv(method, make_batch([1, 1], uid=range(2))), [1, 1])
    assert get_method("crf").options.ntf_keep == 0.1 and get_method("crf").options.clip_high == 10.0


def test_crf_equals_paper_form_off_policy():
    """With seq-mean-token-mean, C-RF is exactly L = -1/2 (mean_pos l+ - mean_neg l-) of the paper."""
    gen = torch.Generator().manual_seed(1)
    batch = make_batch([1, 0, 0, 1, 0, 0], uid=range(6), lengths=[3, 5, 2, 6, 4, 6], T=6)
    batch.old_logp.copy_(-torch.rand(6, 6, generator=gen, dtype=F64) * 3 * batch.mask)
    method = get_method("crf", loss_agg="seq-mean-token-mean")
    prep = method.prepare(batch)
    logp = batch.old_logp + 0.5 * torch.randn(6, 6, generator=gen, dtype=F64) * batch.mask
    loss, _ = method.loss(batch.with_logp(logp), prep)
    rho = (logp - batch.old_logp).exp()
    L = batch.mask.sum(-1)
    l_pos = (torch.minimum(rho, torch.tensor(11.0)) * batch.mask).sum(-1) / L
    l_neg = (torch.maximum(rho, torch.tensor(0.8, dtype=F64)) * prep.ntf_mask).sum(-1) / L
    pos = batch.rewards > 0.5
    paper = -0.5 * (l_pos[pos].mean() - l_neg[~pos].mean())
    assert loss.item() == pytest.approx(paper.item(), abs=1e-12)


def test_nsr_w_reinforce_examples():
    close(adv(get_method("nsr"), make_batch(R1)), [0, -1, -1, -1])
    close(adv(get_method("w_reinforce"), make_batch(R1)), [0.1, -1, -1, -1])
    close(adv(get_method("w_reinforce", lam=0.5), make_batch(R1)), [0.5, -1, -1, -1])


def test_dapo_degenerate_group_gets_signal_only_from_overlong_shaping():
    batch = make_batch([0, 0, 0, 0], lengths=[10, 18, 20, 12], truncated=[False, False, True, False])
    shaped = adv(get_method("dapo", max_response_length=20, overlong_buffer_len=4), batch)
    assert (shaped != 0).all()
    assert (adv(get_method("dapo", max_response_length=20, overlong_shaping=False), batch) == 0).all()


def test_rft_equals_nft_uniform_without_negative_term():
    batch = make_batch([1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0], lengths=[3, 2, 4, 1] * 3, uid=[0] * 4 + [1] * 4 + [2] * 4)
    logp = batch.old_logp + 0.3 * torch.randn(batch.old_logp.shape, generator=torch.Generator().manual_seed(0),
                                              dtype=F64)
    results = []
    for method in (get_method("rft", keep_all_right=True), get_method("nft", omega="uniform", neg_weight=0.0)):
        leaf = logp.clone().requires_grad_(True)
        loss, _ = method.loss(batch.with_logp(leaf), method.prepare(batch))
        results.append((loss.item(), torch.autograd.grad(loss, leaf)[0]))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-15)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-15, rtol=0)


def test_lens_mixed_only_equals_full_with_alpha_zero():
    batch = make_batch([1, 0, 0, 0, 0, 0, 0, 0], pbar=[0.5, 0.8, 0.4, 0.2, 0.8, 0.4, 0.2, 0.1], uid=[0] * 4 + [1] * 4)
    a = adv(get_method("lens", mode="mixed_only"), batch)
    b = adv(get_method("lens", alpha=0.0), batch)
    assert torch.equal(a, b) and (a[4:] == 0).all() and (a[:4] != 0).all()


def test_reinforce_pp_needs_two_tokens_and_equal_rewards_give_zero():
    with pytest.raises(ValueError, match="M >= 2"):
        get_method("reinforce_pp").prepare(make_batch([1], lengths=[1]))
    assert (adv(get_method("reinforce_pp"), make_batch([1, 1, 1], lengths=[1, 2, 3], uid=range(3))) == 0).all()
