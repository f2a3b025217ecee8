"""The registry, options, metadata, diagnostics key names and the ``negrl methods`` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from methods_testlib import F64, make_batch, on_policy

import negrl.methods
from negrl.errors import ConfigError
from negrl.methods import available_methods, get_method, method_class
from negrl.methods.cli import method_rows

ALL = ["crf", "dapo", "dr_grpo", "grpo", "lens", "nft", "nsr", "reinforce_pp", "reinforce_pp_baseline", "rft",
       "rloo", "w_reinforce"]


def test_every_method_is_registered_with_its_metadata():
    assert available_methods() == ALL
    for name in ALL:
        cls = method_class(name)
        assert cls.name == name and re.fullmatch(r"\d{4}\.\d{5}", cls.paper.arxiv)
        assert cls.requires_groups in (1, 2) and cls.reward_convention in ("binary", "signed")
        module_doc = __import__(cls.__module__, fromlist=["_"]).__doc__
        assert cls.paper.arxiv in module_doc, f"{cls.__module__} docstring must name the paper"
    expected = {"grpo": (2, None, "seq-mean-token-mean"), "dapo": (2, "mixed", "token-mean"),
                "nft": (2, "mixed", "constant"), "rft": (1, "mixed", "constant"), "lens": (2, None, "seq-mean-token-mean"),
                "crf": (1, None, "seq-mean-token-mean"), "reinforce_pp": (1, None, "token-mean")}
    for name, (groups, criterion, agg) in expected.items():
        m = get_method(name, max_response_length=100)
        assert (m.requires_groups, m.filter_criterion if m.filters_groups else None, m.paper_loss_agg) == (
            groups, criterion, agg)
    assert get_method("dapo", max_response_length=10).reward_convention == "signed"


def test_unknown_option_names_option_and_method():
    with pytest.raises(ConfigError, match=r"'lens'.*'alfa'"):
        get_method("lens", alfa=0.25)
    with pytest.raises(ConfigError, match="available"):
        get_method("ppo")


@pytest.mark.parametrize(
    "name,options",
    [("grpo", {"std": "biased"}), ("grpo", {"loss_agg": "sum"}), ("lens", {"mode": "all"}), ("lens", {"alpha": "x"}),
     ("nft", {"omega": "sqrt"}), ("grpo", {"ntf_keep": 0.0}), ("grpo", {"ntf_keep": 1.5}), ("nft", {"neg_clip": 0}),
     ("grpo", {"loss_agg": "seq-mean-token-sum-norm"}), ("dapo", {}), ("grpo", {"clip_low": True}),
     ("lens", {"alpha": -1.0}), ("nft", {"rhat_clamp": (0.5, 0.2)})],
)
def test_bad_option_values_are_config_errors(name, options):
    with pytest.raises(ConfigError, match=name):
        get_method(name, **options)


def test_loss_agg_paper_and_method_defaults():
    assert get_method("nft", loss_agg="paper").loss_agg == "constant"
    assert get_method("dr_grpo", loss_agg="paper", max_response_length=8).loss_agg == "seq-mean-token-sum-norm"
    assert get_method("grpo").loss_agg == "token-mean"
    assert get_method("dapo", max_response_length=8).options.clip_high == 0.28
    assert get_method("crf").options.ntf_keep == 0.1 and get_method("crf", ntf_keep=None).options.ntf_keep is None
    assert get_method("grpo", dynamic_sampling=True).filters_groups
    assert not get_method("nft", dynamic_sampling=False).filters_groups


PREPARE_KEYS = {"batch/frac_all_wrong_groups", "batch/frac_all_right_groups", "batch/frac_mixed_groups", "batch/acc",
                "batch/frac_truncated", "batch/resp_len_mean", "batch/resp_len_correct_mean",
                "batch/resp_len_wrong_mean", "batch/frac_tokens_with_nonzero_weight", "adv/mean", "adv/std",
                "adv/min", "adv/max"}
LOSS_KEYS = {"actor/pg_loss", "actor/clipfrac_high", "actor/clipfrac_low", "actor/ppo_kl", "actor/ratio_max",
             "actor/entropy"}
EXTRA = {"lens": {"lens/pbar_wrong_mean", "lens/pbar_wrong_mean_allwrong", "lens/pbar_correct_mean",
                  "lens/frac_floor_active", "lens/abs_adv_mean_allwrong"},
         "nft": {"nft/rhat_mean", "nft/omega_mean", "nft/ratio_mean", "nft/neg_clip_frac"},
         "crf": {"ntf/kept_frac", "ntf/kept_logp_mean", "ntf/masked_logp_mean", "ntf/neg_responses"}}


@pytest.mark.parametrize("name", ALL)
def test_diagnostics_have_the_names_of_section_5(name):
    batch = make_batch([1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1], pbar=[0.5, 0.4, 0.3, 0.2, 0.6, 0.5, 0.4, 0.3] + [0.5] * 4,
                       lengths=[3, 4, 5, 6] * 3, uid=[0] * 4 + [1] * 4 + [2] * 4)
    method = get_method(name, max_response_length=8, kl_beta=0.1)
    batch.ref_logp = batch.old_logp - 0.1
    on, _ = on_policy(batch)
    on.entropy = torch.ones_like(batch.old_logp)
    loss, diag = method(on)
    assert set(diag) == PREPARE_KEYS | LOSS_KEYS | {"actor/kl_ref"} | EXTRA.get(name, set())
    assert all(isinstance(v, float) for v in diag.values())
    assert diag["batch/frac_all_wrong_groups"] == pytest.approx(1 / 3) and diag["batch/acc"] == pytest.approx(0.5)
    assert diag["batch/resp_len_mean"] == 4.5


def test_lens_diagnostics_values():
    batch = make_batch([1, 0, 0, 0, 0, 0, 0, 0], pbar=[0.1, 0.8, 0.4, 0.2, 0.8, 0.4, 0.2, 0.1], uid=[0] * 4 + [1] * 4)
    d = get_method("lens").prepare(batch).diagnostics
    assert d["lens/frac_floor_active"] == 1.0  # L2: the floor wins
    assert d["lens/pbar_wrong_mean_allwrong"] == pytest.approx(0.375)
    assert d["lens/pbar_correct_mean"] == pytest.approx(0.1)
    assert d["lens/abs_adv_mean_allwrong"] == pytest.approx((0.0384 + 0.0033 + 0.0152 + 0.0199) / 4, abs=1e-4)
    assert d["batch/frac_tokens_with_nonzero_weight"] == 1.0


def test_frac_tokens_with_nonzero_weight_counts_exact_zeros():
    batch = make_batch([1, 0, 0, 0, 1, 1, 1, 1], lengths=[1, 1, 1, 1, 3, 3, 3, 3], uid=[0] * 4 + [1] * 4)
    assert get_method("grpo").prepare(batch).diagnostics["batch/frac_tokens_with_nonzero_weight"] == 4 / 16


def test_select_slices_batch_and_prepared_consistently():
    batch = make_batch([1, 0, 0, 1], lengths=[1, 2, 3, 4], uid=[0, 0, 1, 1])
    prep = get_method("lens").prepare(batch)
    for rows in ([2, 0], torch.tensor([2, 0]), torch.tensor([False, False, True, True])):
        sub, sub_prep = batch.select(rows), prep.select(rows)
        index = torch.as_tensor(rows).nonzero()[:, 0] if torch.as_tensor(rows).dtype == torch.bool else torch.as_tensor(rows)
        assert torch.equal(sub.mask, batch.mask[index]) and torch.equal(sub.uid, batch.uid[index])
        assert torch.equal(sub_prep.weight, prep.weight[index])
        assert torch.equal(sub_prep.tensors["pbar"], prep.tensors["pbar"][index])
    assert batch.select([1]).logp is None


def test_prepare_stores_in_old_logp_dtype():
    for dtype in (torch.float32, F64):
        prep = get_method("nft").prepare(make_batch([1, 0, 0, 0], dtype=dtype))
        assert prep.adv.dtype == prep.weight.dtype == prep.tensors["rhat_c"].dtype == dtype


def test_cli_lists_every_method_with_its_paper(capsys):
    from negrl.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for row in method_rows():
        assert re.search(rf"^{row['method']}\s+.*{row['arXiv']}", out, re.M)
    assert len(method_rows()) == len(ALL)


def test_method_files_are_short():
    for path in Path(negrl.methods.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) < 500, path
