"""negrl vs Math-Verify on the equivalence suite: at least as accurate in every category, better overall.
Also a smoke run of `negrl bench verify`."""

from __future__ import annotations

import pytest

from verify_accuracy import run_math_verify, run_negrl, table

pytest.importorskip("math_verify")


@pytest.mark.slow
def test_accuracy_per_category_vs_math_verify(pool, capsys):
    per, text = table(run_negrl(), run_math_verify())
    with capsys.disabled():
        print("\n" + text)
    for cat, (n, ours, theirs) in per.items():
        assert ours >= theirs, f"{cat}: negrl {ours}/{n} < math-verify {theirs}/{n}"
    n, ours, theirs = per["ALL"]
    assert ours > theirs


@pytest.mark.slow
def test_bench_verify_smoke(pool, math_data_dir, capsys):
    from negrl.cli import main

    assert main(["bench", "verify", "-n", "60", "--workers", "2", "--timeout", "5",
                 "--data", str(math_data_dir / "math_test.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "ratio negrl / math-verify" in out and "responses" in out
