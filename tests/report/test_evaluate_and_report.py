import numpy as np
import pandas as pd
import pytest

from negrl.evaluate.metrics import pass_at_k, per_problem_accuracy, summarize
from negrl.evaluate.stats import bootstrap_interval, paired_difference_interval
from negrl.report.tables import accuracy_by_level, differences_vs_base, markdown_table, accuracy_by_seed


def test_pass_at_k_matches_the_combinatorial_definition():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 2) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)


def test_truncated_responses_count_as_wrong():
    rollouts = pd.DataFrame({"prompt_id": ["a", "a"], "sample_idx": [0, 1], "level": [3, 3],
                             "subject": ["s", "s"], "truncated": [True, False]})
    verdicts = pd.DataFrame({"prompt_id": ["a", "a"], "sample_idx": [0, 1], "correct": [True, True]})
    table = per_problem_accuracy(rollouts, verdicts)
    assert table["accuracy"].tolist() == [0.5]
    assert summarize(table)["by_level"]["3"]["frac_truncated"] == 0.5


def test_bootstrap_interval_contains_mean_and_shrinks_with_more_problems():
    rng = np.random.default_rng(0)
    small, large = rng.random((2, 20)), rng.random((2, 2000))
    lo_s, hi_s = bootstrap_interval(small, samples=500)
    lo_l, hi_l = bootstrap_interval(large, samples=500)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3
    assert bootstrap_interval(np.ones((3, 10))) == (1.0, 1.0)


def test_paired_difference_detects_a_shift():
    rng = np.random.default_rng(1)
    control = rng.random((1, 300))
    diff, low, high = paired_difference_interval(np.clip(control + 0.2, 0, 1)[None, 0].repeat(2, 0), control)
    assert low > 0.1 and diff == pytest.approx(np.clip(control + 0.2, 0, 1).mean() - control.mean())


def _table(acc_by_level):
    rows = [{"prompt_id": f"p{lv}-{i}", "level": lv, "accuracy": acc}
            for lv, accs in acc_by_level.items() for i, acc in enumerate(accs)]
    return pd.DataFrame(rows)


def test_report_tables_have_the_contract_columns_and_values():
    tables = {"base": _table({1: [1, 1], 5: [0, 0]}), "grpo-s1": _table({1: [1, 1], 5: [1, 0]}),
              "grpo-s2": _table({1: [1, 0], 5: [1, 1]})}
    summary = accuracy_by_level(tables, 0.95, 200, 0)
    assert list(summary.columns) == ["method", "level", "accuracy", "ci_low", "ci_high", "n_problems", "n_seeds"]
    assert summary["method"].tolist()[:3] == ["base"] * 3
    grpo = summary[summary["method"] == "grpo"].set_index("level")
    assert grpo.loc["5", "accuracy"] == 0.75 and grpo.loc["1", "accuracy"] == 0.75
    assert grpo.loc["all", "accuracy"] == 0.75 and grpo.loc["all", "n_seeds"] == 2
    deltas = differences_vs_base(tables, 0.95, 200, 0).set_index("level")
    assert deltas.loc["5", "delta"] == 0.75 and deltas.loc["1", "delta"] == -0.25
    assert deltas.loc["5", "seed_spread"] == 0.5
    text = markdown_table(summary, differences_vs_base(tables, 0.95, 200, 0), accuracy_by_seed(tables), 0.95)
    assert "| grpo (n=2) |" in text and "| grpo / 2 |" in text
    # every Markdown cell sits under its own level's column
    header = next(line for line in text.splitlines() if line.startswith("| method - base |"))
    row = next(line for line in text.splitlines() if line.startswith("| grpo |"))
    cells = dict(zip(header.strip("|").split("|")[1:], row.strip("|").split("|")[1:]))
    assert cells[" L5 "].startswith(" +0.750") and cells[" L1 "].startswith(" -0.250")
    assert cells[" all "].startswith(f" {0.75 - 0.5:+.3f}")
