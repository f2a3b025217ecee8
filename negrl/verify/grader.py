"""Public API: :func:`equivalent`, :func:`grade`, :func:`grade_many` and :class:`Verdict`.

Each item goes through: extraction (in process, linear time) -> normalisation (in process) -> a fast
decision when both answers are plain numbers, identical strings or words (in process, exact
``Fraction`` arithmetic, no sympy) -> otherwise the symbolic comparison in the sandbox pool, under a
kill-based per-item timeout.

    >>> grade(r"... so the answer is $\\boxed{\\frac{3}{4}}$.", "0.75")
    Verdict(correct=True, extracted='\\\\frac{3}{4}', reason='match', detail='fast')
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from negrl.verify.extract import extract
from negrl.verify.normalize import (
    MAX_ANSWER_CHARS,
    is_text_answer,
    normalize,
    numbers_equal,
    parse_number,
    split_top,
    strip_assignment,
    text_key,
)
from negrl.verify.sandbox import get_pool

REASONS = ("match", "mismatch", "no_answer", "unparseable", "timeout", "truncated", "error")


@dataclass(frozen=True)
class Verdict:
    """The verifier's decision on one response."""

    correct: bool
    extracted: str | None
    """The final answer found in the response (the last box; all boxes joined by ``, `` when they
    matched together as a set), or None."""
    reason: str
    """One of :data:`REASONS`."""
    detail: str = ""
    """How it was decided (``fast``, ``sympy``) or the error message."""


@lru_cache(maxsize=1 << 16)
def _norm(s: str) -> str:
    return normalize(s)


def _is_listlike(g: str) -> bool:
    return len(split_top(g, (",", ";"))) > 1 or g.startswith("\\{") or "\\pm" in g


def _quick(g: str, p: str) -> bool | None:
    """Decide in process when it is safe and cheap: True/False, or None (needs sympy)."""
    if g == p:
        return True
    if not p:
        return False
    ga, pa = strip_assignment(g), strip_assignment(p)
    if ga == pa:
        return True
    gn = parse_number(ga)
    if gn is not None:
        pn = parse_number(pa)
        if pn is not None:
            return numbers_equal(gn, pn)
    if is_text_answer(g):
        return text_key(g) == text_key(p) and bool(text_key(g))
    return None


@dataclass
class _Item:
    verdict: Verdict | None = None
    pairs: list | None = None
    extracted: list | None = None  # extracted string per pair
    shown: str | None = None  # what a failed verdict reports as extracted (the last box)


def _prepare(gold: str, candidates: list[str]) -> _Item:
    """candidates: raw answers to try, best first (the last box, then all boxes as a set)."""
    g = _norm(gold)
    if len(g) > MAX_ANSWER_CHARS:
        return _Item(Verdict(False, candidates[0] if candidates else None, "error", "gold answer too long"))
    pairs, extracted, decided_false = [], [], 0
    for cand in candidates:
        if len(cand) > MAX_ANSWER_CHARS:
            continue
        p = _norm(cand)
        q = _quick(g, p)
        if q is True:
            return _Item(Verdict(True, cand, "match", "fast"))
        if q is False:
            decided_false += 1
            continue
        pairs.append([g, p])
        extracted.append(cand)
    if not pairs:
        if decided_false:
            return _Item(Verdict(False, candidates[0], "mismatch", "fast"))
        return _Item(Verdict(False, candidates[0] if candidates else None, "unparseable", "answer too long"))
    return _Item(None, pairs, extracted, candidates[0])


def _candidates_from_response(response: str, gold: str,
                              truncated: bool) -> tuple[list[str] | None, Verdict | None]:
    if not isinstance(response, str):
        return None, Verdict(False, None, "error", f"response is {type(response).__name__}, not str")
    ex = extract(response)
    if truncated and ex.source != "boxed":
        return None, Verdict(False, None, "truncated", "no complete boxed answer before the token limit")
    if not ex.answers:
        return None, Verdict(False, None, "no_answer", "")
    cands = [ex.answers[-1]]
    uniq = list(dict.fromkeys(a for a in ex.answers if a))
    if len(uniq) > 1 and _is_listlike(_norm(gold)):
        cands.append(", ".join(uniq))
    return cands, None


def _finish(item: _Item, outcome: tuple[str, object] | None) -> Verdict:
    if item.verdict is not None:
        return item.verdict
    first = item.shown
    status, res = outcome
    if status == "timeout":
        return Verdict(False, first, "timeout", "killed at the time limit")
    if status == "error" or not isinstance(res, dict):
        return Verdict(False, first, "error", str(res)[:300])
    k = res.get("index", 0)
    extracted = item.extracted[k] if isinstance(k, int) and 0 <= k < len(item.extracted) else first
    if res.get("correct"):
        return Verdict(True, extracted, "match", "sympy")
    reason = res.get("reason", "mismatch")
    return Verdict(False, first, reason if reason in REASONS else "mismatch", "sympy")


def _run_items(items: list[_Item], workers: int | None, timeout: float) -> list[Verdict]:
    todo = [k for k, it in enumerate(items) if it.verdict is None]
    outcomes: dict[int, tuple[str, object]] = {}
    if todo:
        tasks = [{"op": "equiv", "pairs": items[k].pairs} for k in todo]
        results = get_pool(workers).run(tasks, timeout=timeout)
        outcomes = dict(zip(todo, results))
    return [_finish(it, outcomes.get(k)) for k, it in enumerate(items)]


def equivalent(gold: str, pred: str, *, timeout: float = 5.0) -> bool:
    """Are two final answers (contents of a ``\\boxed{}``, LaTeX or plain) the same answer?"""
    try:
        item = _prepare(str(gold), [str(pred)])
    except Exception:  # noqa: BLE001
        return False
    return _run_items([item], None, timeout)[0].correct


def grade(response: str, gold: str, *, timeout: float = 5.0, truncated: bool = False) -> Verdict:
    """Extract the final answer from a full response and compare it with ``gold``.

    ``truncated=True`` (the response hit the token limit) gives ``reason="truncated"`` unless the
    response already holds a complete boxed answer."""
    return grade_many([(response, gold)], timeout=timeout, truncated=[truncated])[0]


def grade_many(items: Iterable[tuple[str, str]], *, workers: int | None = None, timeout: float = 5.0,
               truncated: Sequence[bool] | None = None) -> list[Verdict]:
    """Grade (response, gold) pairs, in input order; the hard cases run in the sandbox pool."""
    items = list(items)
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if truncated is not None and len(truncated) != len(items):
        raise ValueError(f"truncated has {len(truncated)} entries for {len(items)} items")
    prepared = []
    for k, (response, gold) in enumerate(items):
        try:
            cands, verdict = _candidates_from_response(response, gold, bool(truncated[k]) if truncated else False)
            prepared.append(_Item(verdict) if verdict is not None else _prepare(str(gold), cands))
        except Exception as exc:  # noqa: BLE001 - one bad item must never take down a training step
            prepared.append(_Item(Verdict(False, None, "error", f"{type(exc).__name__}: {exc}"[:300])))
    return _run_items(prepared, workers, timeout)
