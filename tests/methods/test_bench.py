"""``negrl bench methods`` times every method on one batch and reports its ratio to grpo."""

from __future__ import annotations

from negrl.bench.methods import EXTRA_ROWS, format_rows, run_benchmark
from negrl.methods import available_methods


def test_bench_reports_every_method_relative_to_grpo():
    rows = run_benchmark(batch=16, length=12, vocab=8, group_size=4, repeats=1, warmup=0)
    labels = [r["label"] for r in rows]
    assert labels == available_methods() + [label for label, _, _ in EXTRA_ROWS]
    grpo = next(r for r in rows if r["label"] == "grpo")
    assert grpo["ratio"] == 1.0 and grpo["method_ratio"] == 1.0
    assert all(r["step_ms"] > 0 and r["method_ms"] > 0 for r in rows)
    table = format_rows(rows)
    assert all(label in table for label in labels)
