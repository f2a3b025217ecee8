"""Paired method-vs-method differences and the detectable difference (CI half-width) of every comparison.

Exact values on handmade per-problem tables (problems paired between methods, seeds not), properties of
the half-width on random inputs, and the CSV/Markdown written by ``negrl report``.
"""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from negrl.cli import main
from negrl.config import from_dict
from negrl.errors import ConfigError
from negrl.evaluate.stats import paired_difference_interval
from negrl.report.tables import (DIFFERENCE_COLUMNS, accuracy_by_level, accuracy_by_seed, differences_vs_base,
                                 markdown_table, paired_differences)


def _table(acc_by_level: dict[int, list[float]]) -> pd.DataFrame:
    rows = [{"prompt_id": f"p{lv}-{i}", "level": lv, "accuracy": acc}
            for lv, accs in acc_by_level.items() for i, acc in enumerate(accs)]
    return pd.DataFrame(rows)


def _half_width(treatment, control, samples=1000) -> float:
    _, low, high = paired_difference_interval(np.asarray(treatment, float), np.asarray(control, float),
                                              samples=samples, seed=0)
    return (high - low) / 2


# ---- exact values of the paired interval ------------------------------------------------------------

def test_a_constant_difference_has_that_interval_and_half_width_zero():
    control = np.array([[0.25, 0.5, 0.0, 0.75], [0.25, 0.5, 0.0, 0.75]])
    assert paired_difference_interval(control + 0.25, control) == (0.25, 0.25, 0.25)
    tables = {"grpo-s1": _table({1: [0.25, 0.5], 2: [0.0, 0.75]}), "grpo-s2": _table({1: [0.25, 0.5], 2: [0.0, 0.75]}),
              "lens-s1": _table({1: [0.5, 0.75], 2: [0.25, 1.0]}), "lens-s2": _table({1: [0.5, 0.75], 2: [0.25, 1.0]})}
    rows = paired_differences(tables, "grpo", 0.95, 500, 0)
    assert rows["level"].tolist() == ["1", "2", "all"]
    assert rows[["delta", "ci_low", "ci_high", "ci_half_width", "seed_spread"]].to_numpy().tolist() == \
        [[0.25, 0.25, 0.25, 0.0, 0.0]] * 3
    assert rows["significant"].tolist() == [True] * 3


def test_two_problems_one_solved_gives_the_interval_zero_to_one():
    # per-problem differences (1, 0): a resample of two problems has mean 0, 1/2 or 1 (p = 1/4, 1/2, 1/4)
    assert paired_difference_interval(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]])) == (0.5, 0.0, 1.0)
    assert _half_width([[1.0, 0.0]], [[0.0, 0.0]], samples=2000) == 0.5


def test_problems_are_paired_so_a_shared_problem_difficulty_cancels():
    # very different problems, the same accuracy on each under both methods: no difference at all
    same = np.array([[1.0, 0.0, 1.0, 0.0, 0.5]])
    assert paired_difference_interval(same, same) == (0.0, 0.0, 0.0)


def test_seeds_of_two_methods_are_not_paired():
    # identical seed-by-problem matrices; were seeds paired, every resample would differ by 0. Each side's
    # seed mean is 0, 1/2 or 1 (p = 1/4, 1/2, 1/4), so the difference reaches -1 and +1 (p = 1/16 > 2.5%)
    runs = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert paired_difference_interval(runs, runs) == (0.0, -1.0, 1.0)
    # against a single-seed method only the two-seed side varies
    assert paired_difference_interval(runs, np.array([[0.5, 0.5]])) == (0.0, -0.5, 0.5)


# ---- the half-width: statistical power --------------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=8, max_size=30),
       st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=8, max_size=30))
def test_half_width_shrinks_as_the_problems_grow(treatment, control):
    n = min(len(treatment), len(control))
    treatment, control = np.array([treatment[:n]]), np.array([control[:n]])
    if np.ptp(treatment - control) == 0:  # a constant difference has half-width 0 at every size
        assert _half_width(np.tile(treatment, 4), np.tile(control, 4)) == 0.0
        return
    widths = [_half_width(np.tile(treatment, k), np.tile(control, k)) for k in (1, 4, 16)]
    # the same problem mix k times over: the bootstrap spread falls as 1/sqrt(k) (1, 1/2, 1/4); the bounds
    # leave room for the coarse percentiles of a few problems (one odd problem in 30: 0.58 and 0.33 seen)
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[1] <= 0.8 * widths[0] and widths[2] <= 0.5 * widths[0]


def test_half_width_matches_the_normal_approximation():
    rng = np.random.default_rng(3)
    control = rng.integers(0, 5, size=(1, 400)) / 4
    treatment = rng.integers(0, 5, size=(1, 400)) / 4
    expected = 1.96 * (treatment - control).std() / np.sqrt(400)
    assert _half_width(treatment, control, samples=4000) == pytest.approx(expected, rel=0.08)


# ---- the tables -------------------------------------------------------------------------------------

def _three_methods() -> dict[str, pd.DataFrame]:
    """base < lens < grpo on every problem (grpo - lens = 1/2 at level 1, 3/4 at level 5, where grpo's two seeds
    differ); nft = grpo; levels 1 and 5, two problems each."""
    return {"base": _table({1: [0.0, 0.0], 5: [0.0, 0.0]}),
            "grpo-s1": _table({1: [1.0, 1.0], 5: [1.0, 0.5]}), "grpo-s2": _table({1: [1.0, 1.0], 5: [0.5, 1.0]}),
            "lens-s1": _table({1: [0.5, 0.5], 5: [0.0, 0.0]}), "lens-s2": _table({1: [0.5, 0.5], 5: [0.0, 0.0]}),
            "nft-s1": _table({1: [1.0, 1.0], 5: [1.0, 0.5]}), "nft-s2": _table({1: [1.0, 1.0], 5: [0.5, 1.0]})}


def test_reference_table_compares_every_other_method_with_the_reference_and_has_its_sign():
    tables = _three_methods()
    vs_grpo = paired_differences(tables, "grpo", 0.95, 500, 0)
    assert list(vs_grpo.columns) == DIFFERENCE_COLUMNS
    assert vs_grpo["method"].tolist() == ["lens"] * 3 + ["nft"] * 3  # neither base nor grpo itself
    lens = vs_grpo[vs_grpo["method"] == "lens"].set_index("level")
    assert lens["delta"].tolist() == [-0.5, -0.75, -0.625] and lens["significant"].all()
    # level 1: every resample differs by exactly -0.5; level 5: grpo's resampled mean lies in [0.5, 1]
    assert (lens.loc["1", "ci_low"], lens.loc["1", "ci_high"], lens.loc["1", "ci_half_width"]) == (-0.5, -0.5, 0.0)
    assert -1.0 <= lens.loc["5", "ci_low"] < -0.75 < lens.loc["5", "ci_high"] <= -0.5
    assert lens.loc["5", "ci_half_width"] == (lens.loc["5", "ci_high"] - lens.loc["5", "ci_low"]) / 2 > 0
    nft = vs_grpo[vs_grpo["method"] == "nft"].set_index("level")
    assert nft["delta"].tolist() == [0.0, 0.0, 0.0] and not nft["significant"].any()
    # the reverse comparison flips the sign
    vs_lens = paired_differences(tables, "lens", 0.95, 500, 0).set_index(["method", "level"])
    assert vs_lens.loc[("grpo", "all"), "delta"] == 0.625
    # differences of differences: (lens - base) - (grpo - base) = lens - grpo
    vs_base = differences_vs_base(tables, 0.95, 500, 0).set_index(["method", "level"])
    for level in ("1", "5", "all"):
        assert vs_base.loc[("lens", level), "delta"] - vs_base.loc[("grpo", level), "delta"] == \
            lens.loc[level, "delta"]
        assert vs_base.loc[("lens", level), "ci_half_width"] == pytest.approx(
            (vs_base.loc[("lens", level), "ci_high"] - vs_base.loc[("lens", level), "ci_low"]) / 2)


def test_missing_reference_gives_an_empty_table_with_the_columns():
    assert paired_differences(_three_methods(), "dapo", 0.95, 100, 0).columns.tolist() == DIFFERENCE_COLUMNS
    assert paired_differences(_three_methods(), "dapo", 0.95, 100, 0).empty
    only_grpo = {k: v for k, v in _three_methods().items() if not k.startswith(("lens", "nft"))}
    assert paired_differences(only_grpo, "grpo", 0.95, 100, 0).empty


def _markdown(tables, reference):
    deltas = differences_vs_base(tables, 0.95, 500, 0)
    return markdown_table(accuracy_by_level(tables, 0.95, 500, 0), deltas, accuracy_by_seed(tables), 0.95,
                          reference_deltas=paired_differences(tables, reference, 0.95, 500, 0), reference=reference)


def _cells(text: str, header_start: str, row_start: str) -> dict[str, str]:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    row = next(line for line in lines[at:] if line.startswith(row_start))
    return dict(zip(lines[at].strip("|").split("|")[1:], row.strip("|").split("|")[1:]))


def test_markdown_has_the_reference_section_detectable_rows_and_the_ranking_line():
    tables = _three_methods()
    text = _markdown(tables, "grpo")
    assert "## Difference from grpo (paired bootstrap 95% CI over problems and seeds; * = CI excludes 0)" in text
    lens = _cells(text, "| method - grpo |", "| lens |")
    assert lens[" L1 "] == " -0.500 [-0.500, -0.500]* " and lens[" all "].startswith(" -0.625 [")
    detectable = _cells(text, "| method - grpo |", "| lens: detectable difference (±) |")
    assert detectable[" L1 "] == " 0.000 "
    vs_grpo = paired_differences(tables, "grpo", 0.95, 500, 0).set_index(["method", "level"])
    assert detectable[" L5 "] == f" {vs_grpo.loc[('lens', '5'), 'ci_half_width']:.3f} "
    base_detectable = _cells(text, "| method - base |", "| grpo: detectable difference (±) |")
    assert base_detectable[" L1 "] == " 0.000 "
    overall = differences_vs_base(tables, 0.95, 500, 0).set_index(["method", "level"])["ci_half_width"]
    assert (f"Detectable difference overall (CI half-width): grpo - base ±{overall[('grpo', 'all')]:.3f}, "
            f"lens - base ±{overall[('lens', 'all')]:.3f}, nft - base ±{overall[('nft', 'all')]:.3f}.") in text
    lens_all, nft = vs_grpo.loc[("lens", "all")], vs_grpo.loc[("nft", "all")]
    ranking = ("Can this run rank the methods? Overall, paired against grpo: lens - grpo = -0.625 "
               f"[{lens_all.ci_low:+.3f}, {lens_all.ci_high:+.3f}], detectable difference "
               f"±{lens_all.ci_half_width:.3f} (resolved: the CI excludes 0); nft - grpo = +0.000 "
               f"[{nft.ci_low:+.3f}, {nft.ci_high:+.3f}], detectable difference ±{nft.ci_half_width:.3f} "
               "(not resolved: the CI includes 0).")
    assert text.count(ranking) == 2  # under the accuracy table and in the reference section
    assert text.index("## Difference from the base model") < text.index("## Difference from grpo") < \
        text.index("## Per seed")


def test_markdown_notes_a_missing_or_lonely_reference():
    text = _markdown(_three_methods(), "dapo")
    assert ("## Difference from dapo" in text and "Skipped: the reference method 'dapo' (report.reference_method) "
            "was not evaluated; methods: grpo, lens, nft.") in text
    assert "Can this run rank" not in text
    only_grpo = {k: v for k, v in _three_methods().items() if not k.startswith(("lens", "nft"))}
    assert "Skipped: grpo is the only method evaluated" in _markdown(only_grpo, "grpo")


# ---- negrl report end to end, and the config key ------------------------------------------------------

def _run_report(tmp_path, tables, reference):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"experiment": "toy", "methods": ["grpo", "lens", "nft"],
                                      "report": {"bootstrap_samples": 300, "reference_method": reference}}))
    argv = ["report", "--config", str(config), "--out-dir", str(tmp_path / "report")]
    for label, table in tables.items():
        table.to_parquet(tmp_path / f"{label}.parquet")
        argv += ["--per-problem", f"{label}={tmp_path / f'{label}.parquet'}"]
    assert main(argv) == 0
    return tmp_path / "report"


def test_negrl_report_writes_the_reference_csv_and_sections(tmp_path, capsys):
    out = _run_report(tmp_path, _three_methods(), "grpo")
    vs_grpo = pd.read_csv(out / "difference_vs_grpo.csv")
    assert vs_grpo.columns.tolist() == DIFFERENCE_COLUMNS
    assert vs_grpo[vs_grpo["level"] == "1"][["method", "delta", "ci_half_width"]].values.tolist() == \
        [["lens", -0.5, 0.0], ["nft", 0.0, 0.0]]
    vs_base = pd.read_csv(out / "difference_vs_base.csv")
    assert vs_base.columns.tolist() == DIFFERENCE_COLUMNS and set(vs_base["method"]) == {"grpo", "lens", "nft"}
    text = (out / "accuracy_by_level.md").read_text()
    assert text.startswith("# toy: accuracy by level\n") and "## Difference from grpo" in text
    assert "| lens: detectable difference (±) |" in text and "Can this run rank the methods?" in text


def test_negrl_report_without_the_reference_writes_a_header_only_csv(tmp_path, capsys):
    tables = {k: v for k, v in _three_methods().items() if not k.startswith("grpo")}
    out = _run_report(tmp_path, tables, "grpo")
    assert (out / "difference_vs_grpo.csv").read_text().strip() == ",".join(DIFFERENCE_COLUMNS)
    assert "Skipped: the reference method 'grpo'" in (out / "accuracy_by_level.md").read_text()


@pytest.mark.parametrize("reference", ["base", "grpo/../x", ""])
def test_reference_method_must_be_a_method_name_other_than_base(reference):
    with pytest.raises(ConfigError, match="key 'report.reference_method'"):
        from_dict({"report": {"reference_method": reference}})
    assert from_dict({}).report.reference_method == "grpo"


@pytest.mark.parametrize("name", ["negrl.report.tables", "negrl.evaluate.stats"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
