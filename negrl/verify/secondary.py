"""Math-Verify (``math-verify`` on PyPI) as the secondary verifier.

Inside negrl it only ever runs in a sandbox worker (op ``math_verify``): Math-Verify evaluates plain
expressions with ``sympy.parse_expr``, which the worker's audit hook refuses, and its own timeouts use
``signal.alarm``, which we turn off because the worker is killed from outside instead.
The accuracy suite and the benchmark also call :func:`math_verify_grade` directly in-process (on
trusted inputs) to measure Math-Verify as users run it.
"""

from __future__ import annotations


def _gold_parse(gold: str, timeout):
    from math_verify import parse

    parsed = parse("\\boxed{" + gold + "}", parsing_timeout=timeout)
    if not parsed:
        parsed = parse("$" + gold + "$", parsing_timeout=timeout)
    return parsed


def math_verify_grade(response: str, gold: str, *, timeout: int | None = None) -> bool:
    """Math-Verify's verdict for a full response against a gold answer (its recommended usage)."""
    from math_verify import parse, verify

    gold_parsed = _gold_parse(gold, timeout)
    pred_parsed = parse(response, parsing_timeout=timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def math_verify_equivalent(gold: str, pred: str, *, timeout: int | None = None) -> bool:
    """Math-Verify's verdict for two final answers (a box around the prediction, as a response)."""
    return math_verify_grade("\\boxed{" + pred + "}", gold, timeout=timeout)


def make_math_verify_eval_free() -> None:
    """Replace the two places where Math-Verify turns model text into sympy through ``sympify``/``eval``
    (``parse_expr`` on plain expressions, ``Number(str)`` on numbers) with eval-free equivalents built on
    the LaTeX grammar. Called in sandbox workers, where eval is refused anyway; this keeps Math-Verify's
    verdicts on ordinary answers (``3``, ``1/2``, ``x**2+1``) instead of failing them."""
    import math_verify.parser as mp

    from negrl.verify import safe_latex

    if getattr(mp, "_negrl_eval_free", False):
        return

    def number(text: str):
        return safe_latex._compat_number(text)

    def parse_expr_cached(expr: str):
        latex = expr.replace("**", "^")
        return safe_latex._SafeLatex2Sympy(config=safe_latex._CONV).parse(latex)

    mp.Number = number
    mp.parse_expr_cached = parse_expr_cached
    mp._negrl_eval_free = True
