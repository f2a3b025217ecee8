"""Eval-free LaTeX -> sympy for one mathematical atom, on top of ``latex2sympy2_extended``'s ANTLR grammar.

The library builds sympy objects directly from the parse tree, except for number tokens, which it
turns into numbers with ``sympy.Number(text)``, i.e. ``sympify`` of a string. Here number tokens go
through ``int``/``fractions.Fraction`` instead (:func:`_safe_number`), with limits on digits and
exponents; :func:`patch_library_numbers` does the same for the library as Math-Verify uses it.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy
from latex2sympy2_extended import latex2sympy2 as _l2s_mod
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, _Latex2Sympy
from latex2sympy2_extended.math_normalization import NormalizationConfig, normalize_latex

MAX_DIGITS = 2000
MAX_EXPONENT = 400


class Unparseable(ValueError):
    pass


def _safe_number(text: str) -> sympy.Number:
    t = text.replace(",", "").replace(" ", "")
    if not re.fullmatch(r"[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?", t) or not re.search(r"[0-9]", t):
        raise Unparseable(f"bad number token {text[:40]!r}")
    mant, _, exp = t.partition("e") if "e" in t else t.partition("E")
    if len(mant) > MAX_DIGITS or (exp and abs(int(exp)) > MAX_EXPONENT):
        raise Unparseable("number too large")
    return sympy.Rational(Fraction(t))


class _SafeLatex2Sympy(_Latex2Sympy):
    """latex2sympy's converter with exact, eval-free number tokens (decimals become Rationals)."""

    def parse_number(self, text):
        return _safe_number(text)

    def parse(self, latex_str: str):
        if _l2s_mod.comma_number_regex.match(latex_str):
            return _safe_number(latex_str)
        return super().parse(latex_str)


def _compat_number(number: str):
    """Drop-in for ``sympy.Number(token)`` in the library (same values, Float for decimals), no sympify."""
    t = number.replace(",", "").replace(" ", "")
    if re.fullmatch(r"[0-9]+", t):
        if len(t) > MAX_DIGITS:
            raise Unparseable("number too large")
        return sympy.Integer(int(t))
    if not re.fullmatch(r"[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?", t) or not re.search(r"[0-9]", t):
        raise Unparseable(f"bad number token {number[:40]!r}")
    return sympy.Float(t)


def patch_library_numbers() -> None:
    """Make latex2sympy2_extended (also as used by Math-Verify) build number tokens without
    ``sympify``. Called in sandbox workers, where ``sympify`` of a string is refused."""

    def convert_number(number: str):
        if "," in number and number.startswith("0"):
            number = number.replace(",", ".")
        integer = number.translate(str.maketrans("", "", ", ")).lstrip("0") or "0"
        return _compat_number(integer)

    def parse_number(self, text):
        text = text.replace(",", "")
        if text.isdigit():
            text = text.lstrip("0") or "0"
        return _compat_number(text)

    _l2s_mod.convert_number = convert_number
    _Latex2Sympy.parse_number = parse_number


_CONV = ConversionConfig(lowercase_symbols=False, interpret_as_mixed_fractions=True)
_NORM = NormalizationConfig(basic_latex=True, units=False, malformed_operators=True, nits=False,
                            boxed="none", equations=False)
I_SYM = sympy.Symbol("i")


@lru_cache(maxsize=8192)
def to_sympy(s: str) -> Any:
    if not s:
        raise Unparseable("empty")
    try:
        return _SafeLatex2Sympy(config=_CONV).parse(normalize_latex(s, _NORM))
    except Unparseable:
        raise
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # the parser raises bare Exceptions
        raise Unparseable(str(exc).split("\n")[0][:200]) from None
