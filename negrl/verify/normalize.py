"""String-level normalisation of final answers, and the in-process fast path for plain numbers.

Everything here is pure Python on bounded-size strings with linear-time regexes: it runs in the
caller's process (no sympy), so the common case (integers, fractions, decimals, text answers) never
touches the sandbox pool.

    >>> normalize(r"\\left( \\dfrac{3}{4}, 5 \\right)")
    '(\\\\frac{3}{4},5)'
    >>> plain_number(r"-\\frac12")
    Fraction(-1, 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_ANSWER_CHARS = 4000
"""Longer final answers are not parsed at all (no MATH answer is close); they are ``unparseable``."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": r"\times ", "\u22c5": r"\cdot ",
    "\u00b7": r"\cdot ", "\u00f7": r"\div ", "\u03c0": r"\pi ", "\u221e": r"\infty ", "\u221a": r"\sqrt",
    "\u00b0": r"^\circ", "\u2264": r"\le ", "\u2265": r"\ge ", "\u2260": r"\ne ", "\u00b1": r"\pm ",
    "\u222a": r"\cup ", "\u2229": r"\cap ", "\u2205": r"\emptyset ", "\u00a0": " ", "\u2009": " ",
    "\u202f": " ", "\u200b": "",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

_SIZING = re.compile(r"\\(?:left|right|middle|[bB]igg?[lrm]?)(?![a-zA-Z])\s*(\.)?")
_STYLE_DROP = re.compile(
    r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|mathopen|mathclose|mathord|mathpunct|"
    r"mathrel|mathinner|mathstrut|strut|phantom\{[^{}]*\}|hphantom\{[^{}]*\}|vphantom\{[^{}]*\})(?![a-zA-Z])"
)
_SPACES = re.compile(r"(?<!\\)\\(?:!|,|;|:|>|\s|quad(?![a-zA-Z])|qquad(?![a-zA-Z])|enspace(?![a-zA-Z])|"
                     r"thinspace(?![a-zA-Z]))|~")
_RENAMES = [
    (re.compile(r"\\[dt]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\cfrac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), r"\\binom"),
    (re.compile(r"\\(?:leq|leqslant)(?![a-zA-Z])"), r"\\le"),
    (re.compile(r"\\(?:geq|geqslant)(?![a-zA-Z])"), r"\\ge"),
    (re.compile(r"\\(?:neq)(?![a-zA-Z])"), r"\\ne"),
    (re.compile(r"\\(?:varnothing)(?![a-zA-Z])"), r"\\emptyset"),
    (re.compile(r"\\(?:lbrace)(?![a-zA-Z])"), r"\\{"),
    (re.compile(r"\\(?:rbrace)(?![a-zA-Z])"), r"\\}"),
    (re.compile(r"\\(?:lbrack)(?![a-zA-Z])"), "["),
    (re.compile(r"\\(?:rbrack)(?![a-zA-Z])"), "]"),
    (re.compile(r"\\(?:langle)(?![a-zA-Z])"), "("),
    (re.compile(r"\\(?:rangle)(?![a-zA-Z])"), ")"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])"), r"\\dots"),
]
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}|"
                      r"\\degree(?![a-zA-Z])|\\circ(?![a-zA-Z])")
_PERCENT = re.compile(r"\\?%")
_DOLLAR = re.compile(r"\\\$|\$")
# \text{...} and friends with a flat argument (no nested braces): the common case.
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|textsf|texttt|mbox|mathrm|mathbf|mathit|mathsf|"
                       r"mathtt|operatorname|hbox|emph|textnormal|textup)\s*\{([^{}]*)\}")
_BOXED_WRAP = re.compile(r"^\\(?:boxed|fbox)\s*\{(.*)\}$", re.S)
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF1 = re.compile(r"\\frac\s*(\d)\s*(?=\{)")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_FRAC_CMDS = re.compile(r"\\frac\s*(\\[a-zA-Z]+|[0-9a-zA-Z])\s*(\\[a-zA-Z]+|[0-9a-zA-Z])")
_THOUSANDS_IN = re.compile(r"(?:^|(?<=[{=]))(-?\d{1,3})((?:,\d{3})+)(?=$|\}|\\)")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])(?![a-zA-Z])")
_BASE_SUBSCRIPT = re.compile(r"^([0-9A-Fa-f]+)_\{?(\d{1,2})\}?$")
_CMD_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9\\])")
_WS = re.compile(r"\s+")
_AND_OR = re.compile(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|(?<![a-zA-Z])(?:and|or)(?![a-zA-Z]))\s*")
_ASSIGN = re.compile(r"^[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?(?:\([a-zA-Z]\))?=(?!=)")
_UNIT_WORDS = frozenset("""
unit units sq sq. square cubic cm centimeter centimeters mm millimeter millimeters km kilometer kilometers
m meter meters metre metres inch inches in feet foot ft yard yards yd mile miles mi mph kph km/h kmh m/s
second seconds sec s minute minutes min hour hours hr hrs h day days week weeks month months year years
degree degrees deg radian radians rad dollar dollars cent cents pound pounds lb lbs oz ounce ounces gram
grams g kg kilogram kilograms liter liters litre litres l ml gallon gallons gal cup cups point points
people person persons student students way ways time times piece pieces box boxes marble marbles coin
coins card cards ball balls book books tile tiles step steps handshake handshakes game games team teams
per each total number numbers integer integers digit digits value values term terms side sides edge edges
face faces vertex vertices diagonal diagonals triangle triangles rectangle rectangles cube cubes circle
circles
""".split())
_UNIT_EXPONENTS = ("^{2}", "^{3}", "^2", "^3")
_PUNCT = " .,;:?"
_WORD3 = re.compile(r"[a-zA-Z]{3,}")
_LATEX_CMD_WORD = re.compile(r"\\[a-zA-Z]+")
_CHOICE = re.compile(r"^\(?\s*([A-Ea-e])\s*\)?$")


def _unicode(s: str) -> str:
    return _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)


def clean(s: str) -> str:
    """Remove control characters and map Unicode math symbols to LaTeX."""
    return _unicode(_CONTROL.sub(" ", s))


def _rstrip_punct(s: str) -> str:
    """Drop trailing spaces, ``\\ `` and sentence punctuation (linear time, no regex backtracking)."""
    while True:
        t = s.rstrip(_PUNCT)
        if t.endswith("\\") and not t.endswith("\\\\") and len(t) < len(s):
            t = t[:-1]  # "\ " (a spacing command) lost its space above
        if t == s:
            return s
        s = t


def _pop_unit_word(s: str) -> str | None:
    """``s`` without one trailing unit word (and its ``^2``), or None. Scans back from the end only."""
    t = s.rstrip()
    for exp in _UNIT_EXPONENTS:
        if t.endswith(exp):
            t = t[: -len(exp)]
            break
    j = len(t)
    while j > 0 and (t[j - 1].isalpha() or t[j - 1] in "/.") and len(t) - j <= 16:
        j -= 1
    word = t[j:]
    if not word or word.lower() not in _UNIT_WORDS or (j > 0 and (t[j - 1].isalpha() or t[j - 1] == "\\")):
        return None
    rest = t[:j]
    while True:  # separators before the unit: spaces and thin spaces
        r = rest.rstrip(" ")
        if r.endswith("\\,"):
            r = r[:-2]
        if r == rest:
            break
        rest = r
    return rest


def _strip_unit_words(s: str) -> str:
    """``5 cm`` -> ``5``, ``12 square units`` -> ``12``: only after a value that contains a digit."""
    out = s
    for _ in range(4):
        nxt = _pop_unit_word(out)
        if nxt is None or not nxt.strip():
            break
        out = nxt
    if out is s or not re.search(r"\d", out) or not re.search(r"[0-9}a-zA-Z)]$", out):
        return s
    if _WORD3.search(_LATEX_CMD_WORD.sub("", out)):
        return s
    return out


def _strip_text_units(s: str) -> str:
    """Drop ``\\text{ cm}``-style units after a value; keep the text when it is the whole answer."""
    out = s
    for _ in range(8):  # several \text{} groups; bounded
        m = None
        for m in _TEXT_CMD.finditer(out):
            pass
        if m is None:
            break
        body = m.group(1)
        before = out[: m.start()].rstrip()
        after = out[m.end():]
        after_stripped = re.sub(r"^\s*(?:\^\{?[23]\}?)?", "", after)
        if before and not after_stripped.strip() and re.search(r"[0-9}a-zA-Z)]$", before) and \
                re.fullmatch(r"[\sa-zA-Z./\-]*", body) and re.search(r"[a-zA-Z]", body):
            out = before  # a trailing unit (possibly squared)
            continue
        break
    # unwrap the remaining text commands
    for _ in range(8):
        new = _TEXT_CMD.sub(lambda m: m.group(1), out)
        if new == out:
            break
        out = new
    return out


def normalize(s: str) -> str:
    """Canonical string form of one final answer (contents of a box), for comparison and parsing.

    Keeps structure (brackets, commas, ``\\{ \\}``, ``\\cup``, matrices) and drops presentation
    (sizing, spacing, ``\\dfrac``, units, degrees, percent and dollar signs, trailing punctuation).
    """
    if len(s) > MAX_ANSWER_CHARS:
        return s
    s = _WS.sub(" ", clean(s)).strip()
    for _ in range(3):
        m = _BOXED_WRAP.match(s)
        if not m:
            break
        s = m.group(1).strip()
    s = _SIZING.sub("", s)
    s = _STYLE_DROP.sub("", s)
    for pat, rep in _RENAMES:
        s = pat.sub(rep, s)
    s = s.replace("\\!", "").replace("{,}", ",")
    s = _SPACES.sub(" ", s)
    s = _DEGREES.sub("", s)
    s = _PERCENT.sub("", s)
    s = _DOLLAR.sub("", s)
    if "and" in s or "or" in s:
        s = _AND_OR.sub(",", s)
        s = re.sub(r",(?:\s*,)+", ",", s).strip(" ,")
    s = _strip_text_units(s)
    s = _strip_unit_words(_rstrip_punct(s.strip()))
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_CMDS.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF1.sub(r"\\frac{\1}", s)
    s = _FRAC_HALF2.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = s.replace("\\infty", "\\infty ").replace("\\inf ", "\\infty ")
    if "," in s:  # 12,345 -> 12345 (a comma list is written with spaces: "12, 345")
        s = _THOUSANDS_IN.sub(lambda m: m.group(1) + m.group(2).replace(",", ""), s)
    # whitespace: keep a single space only where it separates a command from a following letter
    s = _CMD_SPACE.sub(lambda m: m.group(1) + "\x01", s)
    s = _WS.sub("", s).replace("\x01", " ")
    s = _rstrip_punct(s)
    if s.startswith("+") and len(s) > 1:
        s = s[1:]
    m = _BASE_SUBSCRIPT.match(s)
    if m:
        s = m.group(1)
    return s


def strip_assignment(s: str) -> str:
    """``x=3`` -> ``3`` (single variable, or ``f(x)``, on the left; one ``=``)."""
    m = _ASSIGN.match(s)
    if m and "=" not in s[m.end():] and s[m.end():]:
        return s[m.end():]
    return s


def is_text_answer(s: str) -> bool:
    """A word answer (``Monday``, ``\\text{even}``, ``(C)``) rather than mathematics."""
    body = _LATEX_CMD_WORD.sub("", s)
    if _CHOICE.match(s):
        return True
    if re.search(r"[0-9=^_{}\\]", s.replace("\\text", "")):
        return False
    return bool(_WORD3.search(body))


def text_key(s: str) -> str:
    """Comparison key for word answers: lowercase letters and digits only."""
    s = _TEXT_CMD.sub(lambda m: m.group(1), s)
    return re.sub(r"[^a-z0-9]", "", s.lower())


# ---------------------------------------------------------------------------------------------
# structure helpers (shared with symbolic.py)
# ---------------------------------------------------------------------------------------------

_OPENERS = "([{"
_CLOSERS = ")]}"
def split_top(s: str, seps: tuple[str, ...]) -> list[str]:
    """Split at separators outside any bracket (any of ([{ and \\{ closes with any of )]} and \\})."""
    parts, depth, start, i, n = [], 0, 0, 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            if s.startswith("\\begin{", i):
                depth += 1
                i += 7
                continue
            if s.startswith("\\end{", i):
                depth -= 1
                i += 5
                continue
            if depth == 0:
                hit = next((sep for sep in seps if sep.startswith("\\") and s.startswith(sep, i)
                            and not s[i + len(sep):i + len(sep) + 1].isalpha()), None)
                if hit:
                    parts.append(s[start:i])
                    i += len(hit)
                    start = i
                    continue
            if i + 1 < n and s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
                i += 2
                continue
            i += 1
            while i < n and s[i].isalpha():
                i += 1
            continue
        if c in _OPENERS:
            depth += 1
        elif c in _CLOSERS:
            depth -= 1
        elif depth == 0:
            hit = next((sep for sep in seps if not sep.startswith("\\") and s.startswith(sep, i)), None)
            if hit:
                parts.append(s[start:i])
                i += len(hit)
                start = i
                continue
        i += 1
    parts.append(s[start:])
    return parts


def _closing(s: str, i: int) -> int:
    """Index of the bracket closing the opener at i (any bracket type), or -1."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c == "\\":
            if j + 1 < len(s) and s[j + 1] in "{}":
                depth += 1 if s[j + 1] == "{" else -1
                if depth == 0:
                    return j
                j += 2
                continue
            j += 1
            continue
        if c in _OPENERS:
            depth += 1
        elif c in _CLOSERS:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


# ---------------------------------------------------------------------------------------------
# fast path: plain numbers as exact fractions
# ---------------------------------------------------------------------------------------------

_INT = r"[0-9]{1,400}"
_DEC = r"(?:[0-9]{1,400}(?:\.[0-9]{0,400})?|\.[0-9]{1,400})"
_RE_DEC = re.compile(rf"([+-]?)({_DEC})")
_RE_THOUSANDS = re.compile(r"([+-]?)([0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,400})?)")
_RE_FRAC = re.compile(rf"([+-]?)\\frac\{{([+-]?)({_DEC})\}}\{{([+-]?)({_DEC})\}}")
_RE_SLASH = re.compile(rf"([+-]?)({_DEC})/({_DEC})")
_RE_MIXED = re.compile(rf"([+-]?)({_INT})\\frac\{{({_INT})\}}\{{({_INT})\}}")
_RE_REPEAT = re.compile(r"([+-]?)([0-9]{0,50})\.([0-9]{0,50})\\overline\{([0-9]{1,50})\}")
_RE_SCI = re.compile(rf"([+-]?)({_DEC})(?:[eE]|\\times10\^\{{?|\\cdot10\^\{{?)([+-]?[0-9]{{1,3}})\}}?")


@dataclass(frozen=True)
class Num:
    value: Fraction
    decimals: int | None
    """Number of digits after the point when written as a decimal literal, else None."""


def _sign(s: str) -> int:
    return -1 if s == "-" else 1


def plain_number(s: str) -> Fraction | None:
    n = parse_number(s)
    return None if n is None else n.value


def parse_number(s: str) -> Num | None:
    """Exact value of a normalised plain number (int, decimal, ``\\frac{a}{b}``, ``a/b``, mixed number,
    ``1,000``, repeating decimal, scientific notation with a small exponent), else None."""
    if not s or len(s) > 900:
        return None
    m = _RE_DEC.fullmatch(s)
    if m:
        body = m.group(2)
        dec = len(body.split(".", 1)[1]) if "." in body else None
        return Num(_sign(m.group(1)) * Fraction(body), dec)
    m = _RE_THOUSANDS.fullmatch(s)
    if m:
        body = m.group(2).replace(",", "")
        dec = len(body.split(".", 1)[1]) if "." in body else None
        return Num(_sign(m.group(1)) * Fraction(body), dec)
    m = _RE_FRAC.fullmatch(s)
    if m:
        den = Fraction(m.group(5))
        if den == 0:
            return None
        sign = _sign(m.group(1)) * _sign(m.group(2)) * _sign(m.group(4))
        return Num(sign * Fraction(m.group(3)) / den, None)
    m = _RE_SLASH.fullmatch(s)
    if m:
        den = Fraction(m.group(3))
        if den == 0:
            return None
        return Num(_sign(m.group(1)) * Fraction(m.group(2)) / den, None)
    m = _RE_MIXED.fullmatch(s)
    if m:
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if den == 0 or num >= den:
            return None
        return Num(_sign(m.group(1)) * (whole + Fraction(num, den)), None)
    m = _RE_REPEAT.fullmatch(s)
    if m:
        ip, fp, rep = m.group(2) or "0", m.group(3), m.group(4)
        base = Fraction(int(ip + fp), 10 ** len(fp)) if fp else Fraction(int(ip))
        value = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fp))
        return Num(_sign(m.group(1)) * value, None)
    m = _RE_SCI.fullmatch(s)
    if m:
        body = m.group(2)
        exp = int(m.group(3))
        dec = len(body.split(".", 1)[1]) - exp if "." in body else None
        return Num(_sign(m.group(1)) * Fraction(body) * Fraction(10) ** exp,
                   dec if dec is not None and dec > 0 else None)
    return None


def decimal_places(s: str) -> int | None:
    """Digits after the point if ``s`` is a plain decimal literal (a possible approximation)."""
    n = parse_number(s)
    return None if n is None else n.decimals


def numbers_equal(gold: Num, pred: Num) -> bool:
    """Exact equality; a gold written as a decimal also accepts a non-decimal prediction (a fraction)
    that rounds to it at the gold's precision (the gold is then an approximation)."""
    if gold.value == pred.value:
        return True
    if gold.decimals and pred.decimals is None:
        return abs(pred.value - gold.value) * 2 * 10 ** gold.decimals <= 1
    return False
