"""The public API (design.md): equivalent, grade, grade_many, Verdict."""

from __future__ import annotations

import dataclasses

import negrl.verify as V
from negrl.verify import REASONS, Verdict, equivalent, grade, grade_many


def test_exports():
    for name in ("equivalent", "grade", "grade_many", "Verdict", "verify_rollouts", "REASONS"):
        assert hasattr(V, name)
    fields = {f.name for f in dataclasses.fields(Verdict)}
    assert {"correct", "extracted", "reason"} <= fields
    assert set(REASONS) == {"match", "mismatch", "no_answer", "unparseable", "timeout", "truncated", "error"}


def test_equivalent_basic(pool):
    assert equivalent(r"\frac{1}{2}", "0.5")
    assert equivalent("7", "7")
    assert not equivalent("7", "-7")
    assert equivalent(r"2\sqrt3", r"\sqrt{12}")
    assert not equivalent("(1,2)", "[1,2]")


def test_grade_reasons(pool):
    assert grade(r"so \boxed{7}", "7") == Verdict(True, "7", "match", "fast")
    assert grade(r"so \boxed{8}", "7").reason == "mismatch"
    assert grade("no idea", "7") == Verdict(False, None, "no_answer", "")
    v = grade(r"\boxed{\frac{}{}}", r"\sqrt2")
    assert not v.correct and v.reason == "unparseable"


def test_truncated(pool):
    cut = r"Let me compute step by step and the value is 3 so the final answer is 3"
    assert grade(cut, "3").correct  # not truncated: the sentence fallback applies
    v = grade(cut, "3", truncated=True)
    assert v.reason == "truncated" and not v.correct
    v = grade(r"so \boxed{3}. Let me double-check this again by", "3", truncated=True)
    assert v.correct and v.reason == "match"
    v = grade(r"so \boxed{3}. Wait, maybe \boxed{\frac{1", "3", truncated=True)
    assert v.correct  # the last *complete* box


def test_grade_many_truncated_flags(pool):
    items = [("final answer is 3", "3"), ("final answer is 3", "3")]
    vs = grade_many(items, truncated=[False, True])
    assert [v.reason for v in vs] == ["match", "truncated"]


def test_multi_box_set_only_when_gold_is_a_list(pool):
    resp = r"The roots are $\boxed{-2}$ and $\boxed{1}$."
    v = grade(resp, "-2, 1")
    assert v.correct and v.extracted == "-2, 1"
    assert grade(resp, "1").correct  # the last box
    assert not grade(resp, "-2").correct  # an earlier box alone never counts
    spam = r"$\boxed{1}$ $\boxed{2}$ $\boxed{3}$"
    assert not grade(spam, "1, 2").correct  # boxing extra values does not game the set comparison


def test_non_string_inputs(pool):
    v = grade(None, "3")  # type: ignore[arg-type]
    assert not v.correct and v.reason == "error"


def test_empty_gold_never_matches(pool):
    assert not grade(r"\boxed{}", "").correct or grade(r"\boxed{}", "").reason == "match"
    assert not grade(r"\boxed{5}", "").correct
