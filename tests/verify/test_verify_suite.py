"""The table-driven equivalence suite (verify_cases.py): every case must be graded as labelled."""

from __future__ import annotations

from collections import Counter

import pytest

from verify_cases import CASES, CATEGORIES, as_response


@pytest.fixture(scope="module")
def verdicts(pool):
    from negrl.verify import grade_many

    return grade_many([(as_response(cat, pred), gold) for cat, gold, pred, _ in CASES], timeout=10.0)


def test_suite_shape():
    assert len(CASES) >= 300
    for cat, rows in CATEGORIES.items():
        labels = Counter(exp for _, _, exp in rows)
        assert labels[True] >= 3 and labels[False] >= 3, f"{cat} needs equivalent and non-equivalent pairs"


@pytest.mark.parametrize("k", range(len(CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_case(verdicts, k):
    cat, gold, pred, expected = CASES[k]
    v = verdicts[k]
    assert v.correct is expected, f"{cat}: gold={gold!r} pred={pred!r} -> {v}"
    assert v.reason in ("match", "mismatch", "no_answer", "unparseable")


def test_symmetric_where_it_should_be(pool):
    """Equivalence is symmetric, except that a decimal gold is read as an approximation."""
    from negrl.verify import grade_many

    sym_cats = ("numbers", "radicals", "expressions", "intervals", "tuples", "sets", "matrices", "complex")
    rows = [(g, p, e) for cat in sym_cats for g, p, e in CATEGORIES[cat] if "." not in g + p]
    vs = grade_many([("\\boxed{" + g + "}", p) for g, p, _ in rows], timeout=10.0)
    bad = [(g, p) for (g, p, e), v in zip(rows, vs) if v.correct is not e]
    assert not bad


def test_no_sandbox_refusals_on_normal_inputs(pool, verdicts):
    assert pool.blocked_events == []
