"""Find the final answer in a model response: ``\\boxed{}``/``\\fbox{}`` (nested braces, ``\\boxed 5``,
several boxes), else a "final answer is X" sentence.

Linear time in the length of the response (one pass per box command), so it runs in the caller's
process on untrusted text of any size.

    >>> extract_boxed_all(r"so $\\boxed{\\frac{1}{2}}$ and \\boxed 5.")
    ['\\\\frac{1}{2}', '5']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FINAL_ANSWER = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is|:|=)?\s*:?\s*", re.I
)
_DOLLAR_MATH = re.compile(r"^\$+(.*?)\$+")


@dataclass(frozen=True)
class Extraction:
    answers: list[str]
    """All complete boxed answers, in order (or the one fallback answer)."""
    source: str
    """``boxed``, ``text`` (a "final answer is" sentence) or ``none``."""
    unclosed_box: bool = False
    """A ``\\boxed{`` whose closing brace never came (a truncated response)."""

    @property
    def last(self) -> str | None:
        return self.answers[-1] if self.answers else None


def _match_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start``, or -1. ``\\{`` and ``\\}`` do not count."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def _next_box(text: str, pos: int) -> tuple[int, int] | None:
    m = _BOX_RE.search(text, pos)
    return None if m is None else (m.start(), m.end())


def extract_boxed_all(text: str) -> list[str]:
    return _scan(text)[0]


def _scan(text: str) -> tuple[list[str], bool]:
    answers: list[str] = []
    unclosed = False
    pos = 0
    n = len(text)
    while True:
        hit = _next_box(text, pos)
        if hit is None:
            break
        _, j = hit
        k = j
        while k < n and text[k] in " \t\n":
            k += 1
        if k < n and text[k] == "{":
            end = _match_brace(text, k)
            if end == -1:
                unclosed = True
                break  # everything after is inside the unclosed box
            answers.append(text[k + 1:end].strip())
            pos = end + 1
        elif k > j and k < n:  # \boxed 5: one token after a space
            m = re.match(r"[^\s$.,;]+|\\[a-zA-Z]+", text[k:k + 200])
            if m:
                answers.append(m.group(0))
            pos = k + (m.end() if m else 1)
        else:
            pos = j
    return answers, unclosed


def _final_answer_sentence(text: str) -> str | None:
    last = None
    for m in _FINAL_ANSWER.finditer(text[-5000:]):
        last = m
    if last is None:
        return None
    rest = text[-5000:][last.end():].strip()
    if not rest:
        return None
    m = _DOLLAR_MATH.match(rest)
    if m:
        ans = m.group(1)
    elif rest.startswith("\\("):
        end = rest.find("\\)")
        ans = rest[2:end] if end != -1 else rest[2:]
    elif rest.startswith("\\["):
        end = rest.find("\\]")
        ans = rest[2:end] if end != -1 else rest[2:]
    else:
        ans = re.split(r"\n|(?<=[^\d\\])\.(?:\s|$)|\.$", rest, maxsplit=1)[0]
    ans = ans.strip().rstrip(".").strip()
    if not ans or len(ans) > 500:
        return None
    return ans


def extract(text: str) -> Extraction:
    """The final answer(s) of a response."""
    answers, unclosed = _scan(text)
    if answers:
        return Extraction(answers, "boxed", unclosed)
    sent = _final_answer_sentence(text)
    if sent is not None:
        return Extraction([sent], "text", unclosed)
    return Extraction([], "none", unclosed)
