"""String normalisation and the in-process exact fast path."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negrl.verify.grader import _quick
from negrl.verify.normalize import normalize, numbers_equal, parse_number, plain_number


@pytest.mark.parametrize("raw, expected", [
    (r"\left( \dfrac{3}{4}, 5 \right)", r"(\frac{3}{4},5)"),
    (r"\tfrac12", r"\frac{1}{2}"),
    (r"10,\!236", "10236"),
    (r"5\text{ cm}", "5"),
    (r"12 \text{ square units}", "12"),
    (r"30^\circ", "30"),
    (r"30^{\circ}", "30"),
    (r"50\%", "50"),
    (r"\$18.90", "18.90"),
    ("7.", "7"),
    (r"\text{Navin}", "Navin"),
    (r"\sin x", r"\sin x"),
    (r"\frac \pi4", r"\frac{\pi}{4}"),
    (r"\sqrt2", r"\sqrt{2}"),
    ("4130_5", "4130"),
    (r"[-36,104]", "[-36,104]"),
    (r"19 \text{ and }43", "19,43"),
    ("\u22123", "-3"),
    ("\u03c0", r"\pi"),
    ("1\x00 2", "12"),
    (r"\boxed{5}", "5"),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("s, value", [
    ("7", 7), ("-12", -12), (r"\frac{3}{4}", Fraction(3, 4)), (r"-\frac{5}{2}", Fraction(-5, 2)),
    (r"\frac{-5}{2}", Fraction(-5, 2)), ("3/4", Fraction(3, 4)), ("0.75", Fraction(3, 4)), (".5", Fraction(1, 2)),
    ("1,000", 1000), (r"2\frac{1}{3}", Fraction(7, 3)), (r"0.\overline{3}", Fraction(1, 3)),
    (r"0.1\overline{6}", Fraction(1, 6)), ("3e5", 300000), (r"1.5\times10^{-3}", Fraction(3, 2000)),
    ("x", None), (r"\frac{1}{0}", None), ("1e999999", None), (r"\sqrt{2}", None), ("9" * 2000, None),
])
def test_plain_number(s, value):
    assert plain_number(s) == (None if value is None else Fraction(value))


def test_decimal_gold_tolerance_only_for_non_decimal_predictions():
    gold = parse_number("0.43")
    assert numbers_equal(gold, parse_number(r"\frac{3}{7}"))
    assert not numbers_equal(gold, parse_number("0.428"))
    assert not numbers_equal(parse_number(r"\frac{3}{7}"), parse_number("0.43"))


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(1, 10**4))
def test_fraction_forms_agree(num, den):
    f = Fraction(num, den)
    gold = rf"\frac{{{f.numerator}}}{{{f.denominator}}}" if f.denominator != 1 else str(f.numerator)
    g = normalize(gold)
    for pred in (rf"\dfrac{{{num}}}{{{den}}}", f"{num}/{den}", rf"\frac{{{num * 3}}}{{{den * 3}}}"):
        assert _quick(g, normalize(pred)) is True
    assert _quick(g, normalize(str(f.numerator + 1) + "/" + str(f.denominator))) is False


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**9, 10**9))
def test_integers_and_thousands(n):
    assert _quick(str(n), normalize(f"{n:,}")) is True
    assert _quick(str(n), normalize(str(n * 10 if n else 1))) is False


@settings(max_examples=100, deadline=None)
@given(st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False))
def test_decimals_match_their_fraction(d):
    f = Fraction(d)
    gold = rf"\frac{{{f.numerator}}}{{{f.denominator}}}"
    assert _quick(normalize(gold), normalize(str(d))) is True


_ALPHABET = st.sampled_from(list("0123456789+-*/^_=,.;:()[]{}\\ $%!?xyzabciepnt") +
                            ["\\frac", "\\sqrt", "\\boxed{", "\\text{", "\\left(", "\\right)", "\\pi", "\\infty",
                             "\\{", "\\}", "\\pm", "\\cup", "\\begin{pmatrix}", "\\end{pmatrix}", "\\\\", "&",
                             "\\dfrac", "^\\circ", "\\%", "\\$", " and ", " cm", "\x00", "\u2212", "\u03c0"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join), st.lists(_ALPHABET, max_size=12).map("".join))
def test_in_process_path_never_raises(response, gold):
    from negrl.verify.grader import _candidates_from_response, _prepare

    cands, verdict = _candidates_from_response(response, gold, False)
    if verdict is None:
        item = _prepare(gold, cands)
        assert item.verdict is not None or item.pairs
