"""Symbolic equivalence of two normalised final answers. Runs only inside sandbox workers.

Structure (tuples, intervals, sets, unordered lists, unions, matrices, relations, plus-minus, words)
is parsed here at the string level; each mathematical atom is parsed by :mod:`negrl.verify.safe_latex`
(the ANTLR grammar of ``latex2sympy2_extended``, building sympy objects directly). Nothing here calls
``eval``, ``exec``, ``sympify`` or ``parse_expr`` on a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sympy

from negrl.verify.normalize import _closing, decimal_places, is_text_answer, split_top, text_key
from negrl.verify.safe_latex import I_SYM, Unparseable, to_sympy

__all__ = ["Node", "Unparseable", "compare", "equivalent_normalized", "parse", "to_sympy"]

# ------------------------------------------------------------------------------------------
# structure
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    kind: str  # expr | group | set | list | union | matrix | rel | text
    src: str
    items: tuple = ()
    value: Any = None
    open: str = ""
    close: str = ""
    op: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


_REL_TOKENS = [("\\le", "<="), ("\\ge", ">="), ("\\ne", "!="), ("<=", "<="), (">=", ">="), ("=", "="),
               ("<", "<"), (">", ">")]


_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}$", re.S)
_IN_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\\in(?![a-zA-Z])")


@lru_cache(maxsize=8192)
def parse(s: str) -> Node:
    s = s.strip()
    if not s:
        raise Unparseable("empty")
    if s in ("\\emptyset", "\\{\\}", "{}"):
        return Node("set", s, ())
    m = _MATRIX.match(s)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2))
                if r.strip() and not re.fullmatch(r"\s*\\hline\s*", r)]
        cells = tuple(tuple(parse(c.strip()) for c in row.split("&")) for row in rows)
        if not cells or len({len(r) for r in cells}) != 1:
            raise Unparseable("ragged matrix")
        return Node("matrix", s, cells)
    m = _IN_PREFIX.match(s)
    if m:
        return parse(s[m.end():])
    parts = split_top(s, ("\\cup",))
    if len(parts) > 1:
        return Node("union", s, tuple(parse(p) for p in parts))
    parts = split_top(s, (",", ";"))
    if len(parts) > 1 and not _THOUSANDS.fullmatch(s):
        if any(not p.strip() for p in parts):
            raise Unparseable("empty list element")
        return Node("list", s, tuple(parse(p) for p in parts))
    if s.startswith("\\{") and s.endswith("\\}") and _closing(s, 0) == len(s) - 2:
        inner = s[2:-2]
        return Node("set", s, tuple(parse(p) for p in split_top(inner, (",", ";")) if p.strip()))
    if s[0] in "([" and s[-1] in ")]" and _closing(s, 0) == len(s) - 1:
        inner = s[1:-1]
        elems = split_top(inner, (",",))
        if len(elems) > 1:
            return Node("group", s, tuple(parse(e) for e in elems), open=s[0], close=s[-1])
        if s[0] == "(" and s[-1] == ")":
            return parse(inner)
        raise Unparseable("bracketed single value")
    if "\\pm" in s or "\\mp" in s:
        plus = s.replace("\\pm", "+").replace("\\mp", "-")
        minus = s.replace("\\pm", "-").replace("\\mp", "+")
        plus = plus.replace("(+", "(").lstrip("+") or plus
        return Node("list", s, (parse(plus), parse(minus)), meta={"pm": True})
    parts = split_top(s, (":",))
    if len(parts) > 1 and all(p.strip() for p in parts):  # a ratio or a time of day: compared in order
        return Node("group", s, tuple(parse(p) for p in parts), open=":", close=":")
    rel = _split_relation(s)
    if rel is not None:
        lhs, op, rhs = rel
        return Node("rel", s, (parse(lhs), parse(rhs)), op=op)
    if is_text_answer(s):
        return Node("text", s, value=text_key(s))
    value = to_sympy(s)
    if isinstance(value, (list, tuple)):
        raise Unparseable("unexpected list")
    return Node("expr", s, value=value, meta={"decimals": decimal_places(s)})


def _split_relation(s: str):
    for tok, op in _REL_TOKENS:
        parts = split_top(s, (tok,))
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            if tok in ("<", ">") and (parts[1].startswith("=") or parts[0].endswith("\\")):
                continue
            if tok == "=" and (parts[0].endswith(("<", ">", "!")) or parts[1].startswith("=")):
                continue
            return parts[0], op, parts[1]
        if len(parts) > 2:
            return None
    return None


# ------------------------------------------------------------------------------------------
# comparison
# ------------------------------------------------------------------------------------------

_SAMPLES = [sympy.Rational(n, d) for n, d in ((37, 100), (-113, 100), (171, 70), (-29, 13), (53, 17), (7, 9))]


def _finite_complex(v) -> complex | None:
    try:
        c = complex(v)
    except (TypeError, ValueError, OverflowError):
        return None
    if c != c or abs(c) == float("inf"):
        return None
    return c


def _numeric_value(e, prec: int = 30):
    return _finite_complex(sympy.N(e, prec))


def _precise(e):
    """30-digit value as a sympy number (any exponent; complex allowed), or None."""
    try:
        v = sympy.N(e, 30)
    except (ValueError, TypeError, ArithmeticError, AttributeError):
        return None
    if not getattr(v, "is_number", False) or v.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    re_, im_ = v.as_real_imag()
    if not (re_.is_Number or re_.is_zero) or not (im_.is_Number or im_.is_zero):
        return None
    return sympy.Float(re_, 30) + sympy.I * sympy.Float(im_, 30) if not im_.is_zero else sympy.Float(re_, 30)


def _complexify(a, b):
    syms = getattr(a, "free_symbols", set()) | getattr(b, "free_symbols", set())
    if I_SYM in syms and syms <= {I_SYM}:
        a = a.subs(I_SYM, sympy.I) if hasattr(a, "subs") else a
        b = b.subs(I_SYM, sympy.I) if hasattr(b, "subs") else b
    return a, b


def _close(x: complex, y: complex, rel: float = 1e-12) -> bool:
    return abs(x - y) <= rel * max(1.0, abs(x), abs(y))


def exprs_equal(g: Any, p: Any, gold_decimals: int | None = None, pred_decimals: int | None = None) -> bool:
    if isinstance(g, sympy.MatrixBase) or isinstance(p, sympy.MatrixBase):
        if not (isinstance(g, sympy.MatrixBase) and isinstance(p, sympy.MatrixBase)) or g.shape != p.shape:
            return False
        return all(exprs_equal(a, b) for a, b in zip(g, p))
    if isinstance(g, sympy.Set) or isinstance(p, sympy.Set):
        try:
            return bool(g == p) or bool(sympy.simplify(g.symmetric_difference(p)) == sympy.S.EmptySet)
        except Exception:
            return False
    if isinstance(g, sympy.logic.boolalg.Boolean) or isinstance(p, sympy.logic.boolalg.Boolean):
        return g == p
    g, p = _complexify(g, p)
    try:
        if g == p:
            return True
    except Exception:
        pass
    if g.has(sympy.oo, -sympy.oo, sympy.zoo) or p.has(sympy.oo, -sympy.oo, sympy.zoo):
        try:
            return bool(sympy.simplify(g - p) == 0)
        except Exception:
            return False
    free = sorted(g.free_symbols | p.free_symbols, key=lambda x: x.name)
    if not free:
        gv, pv = _precise(g), _precise(p)
        if gv is None or pv is None:
            try:
                return bool(sympy.simplify(g - p) == 0)
            except Exception:
                return False
        scale = max(abs(gv), abs(pv))
        diff = abs(gv - pv)
        if diff == 0 or diff <= scale * sympy.Float("1e-25"):
            return True
        real = abs(sympy.im(gv)) < 1e-12 and abs(sympy.im(pv)) < 1e-12
        if gold_decimals and pred_decimals is None and real:
            return bool(diff * 2 * 10 ** gold_decimals <= 1 + 1e-9)
        return False
    if set(g.free_symbols) != set(p.free_symbols):
        # the same symbols must appear (x+1-x vs 1 is fine only after simplification)
        try:
            if sympy.simplify(g - p) == 0:
                return True
        except Exception:
            pass
        return False
    agree = 0
    for k in range(len(_SAMPLES)):
        point = {s: _SAMPLES[(k + j * 2) % len(_SAMPLES)] + sympy.Rational(j, 7) for j, s in enumerate(free)}
        try:
            gv = _numeric_value(g.subs(point))
            pv = _numeric_value(p.subs(point))
        except Exception:
            continue
        if gv is None or pv is None:
            continue
        if not _close(gv, pv, 1e-10):
            return False
        agree += 1
    if agree >= 3:
        return True
    try:
        return bool(sympy.simplify(g - p) == 0)
    except Exception:
        return False


def _as_set(node: Node):
    """sympy set for intervals / unions / finite sets of real expressions, else None."""
    if node.kind == "group" and len(node.items) == 2 and all(i.kind == "expr" for i in node.items):
        a, b = node.items[0].value, node.items[1].value
        return sympy.Interval(a, b, node.open == "(", node.close == ")")
    if node.kind in ("set", "list") and all(i.kind == "expr" for i in node.items):
        return sympy.FiniteSet(*[i.value for i in node.items])
    if node.kind == "union":
        parts = [_as_set(i) for i in node.items]
        if any(p is None for p in parts):
            return None
        return sympy.Union(*parts)
    if node.kind == "expr" and isinstance(node.value, sympy.Set):
        return node.value
    return None


def _unordered(gs: tuple, ps: tuple) -> bool:
    if len(gs) != len(ps):
        # allow duplicates on either side: compare as sets of distinct elements
        gs = _dedup(gs)
        ps = _dedup(ps)
        if len(gs) != len(ps):
            return False
    used = [False] * len(ps)
    for g in gs:
        for j, p in enumerate(ps):
            if not used[j] and compare(g, p):
                used[j] = True
                break
        else:
            return False
    return True


def _dedup(items: tuple) -> tuple:
    out: list[Node] = []
    for it in items:
        if not any(compare(it, o) for o in out):
            out.append(it)
    return tuple(out)


def _matrix_items(node: Node) -> list[Node] | None:
    """Entries of a row or column vector."""
    rows = node.items
    if len(rows) == 1:
        return list(rows[0])
    if all(len(r) == 1 for r in rows):
        return [r[0] for r in rows]
    return None


def _rel_equal(g: Node, p: Node) -> bool:
    gl, gr = g.items
    pl, pr = p.items
    flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}
    if g.op == p.op and compare(gl, pl) and compare(gr, pr):
        return True
    if flip[g.op] == p.op and compare(gl, pr) and compare(gr, pl):
        return True
    if g.op != "=" or p.op != "=" or any(x.kind != "expr" for x in (gl, gr, pl, pr)):
        return False
    # the same equation up to a nonzero constant factor: (gl-gr) / (pl-pr) is constant
    e1 = gl.value - gr.value
    e2 = pl.value - pr.value
    free = sorted(e1.free_symbols | e2.free_symbols, key=lambda x: x.name)
    if not free or e1.free_symbols != e2.free_symbols:
        return False
    ratios = []
    for k in range(len(_SAMPLES)):
        point = {s: _SAMPLES[(k + j * 2) % len(_SAMPLES)] + sympy.Rational(j, 7) for j, s in enumerate(free)}
        try:
            v1 = _numeric_value(e1.subs(point))
            v2 = _numeric_value(e2.subs(point))
        except Exception:
            continue
        if v1 is None or v2 is None or abs(v2) < 1e-12:
            continue
        ratios.append(v1 / v2)
    return len(ratios) >= 3 and abs(ratios[0]) > 1e-12 and all(_close(r, ratios[0], 1e-9) for r in ratios)


def _is_symbol(node: Node) -> bool:
    if node.kind == "text":  # a single letter parses as a multiple-choice letter
        return bool(re.fullmatch(r"[A-Za-z]", node.src))
    return node.kind == "expr" and (isinstance(node.value, sympy.Symbol)
                                    or isinstance(node.value, sympy.core.function.AppliedUndef))


def compare(g: Node, p: Node) -> bool:
    """Is prediction ``p`` the same answer as gold ``g``?"""
    if g.kind == "text" or p.kind == "text":
        gk = g.value if g.kind == "text" else text_key(g.src)
        pk = p.value if p.kind == "text" else text_key(p.src)
        return bool(gk) and gk == pk
    if g.kind == "rel" and p.kind == "rel":
        if g.op == "=" and p.op == "=" and _is_symbol(g.items[0]) and _is_symbol(p.items[0]):
            return compare(g.items[0], p.items[0]) and compare(g.items[1], p.items[1])
        return _rel_equal(g, p)
    if p.kind == "rel" and p.op == "=" and _is_symbol(p.items[0]) and g.kind != "rel":
        return compare(g, p.items[1])  # x = 3 vs 3
    if g.kind == "rel" and g.op == "=" and _is_symbol(g.items[0]) and p.kind != "rel":
        return compare(g.items[1], p)
    if g.kind == "rel" and g.op != "=" and p.kind in ("group", "union"):
        return _sets_equal(g, p)
    if p.kind == "rel" and p.op != "=" and g.kind in ("group", "union"):
        return _sets_equal(g, p)
    if g.kind == "expr":
        if p.kind == "expr":
            return exprs_equal(g.value, p.value, g.meta.get("decimals"), p.meta.get("decimals"))
        if p.kind == "set" and len(p.items) == 1:
            return compare(g, p.items[0])
        return False
    if g.kind == "group":
        if p.kind == "group":
            return (g.open == p.open and g.close == p.close and len(g.items) == len(p.items)
                    and all(compare(a, b) for a, b in zip(g.items, p.items)))
        if p.kind == "list" and g.open == "(" and g.close == ")" and not p.meta.get("pm"):
            return len(g.items) == len(p.items) and all(compare(a, b) for a, b in zip(g.items, p.items))
        if p.kind == "matrix" and g.open == "(":
            items = _matrix_items(p)
            return items is not None and len(items) == len(g.items) and all(
                compare(a, b) for a, b in zip(g.items, items))
        if p.kind == "union":
            return _sets_equal(g, p)
        return False
    if g.kind in ("set", "list"):
        if p.kind in ("set", "list"):
            return _unordered(g.items, p.items)
        if len(g.items) == 1:
            return compare(g.items[0], p)
        if p.kind == "union":
            return _sets_equal(g, p)
        return False
    if g.kind == "union":
        if p.kind in ("union", "group", "set"):
            if p.kind == "union" and _unordered(g.items, p.items):
                return True
            return _sets_equal(g, p)
        return False
    if g.kind == "matrix":
        if p.kind == "matrix":
            return (len(g.items) == len(p.items) and len(g.items[0]) == len(p.items[0])
                    and all(compare(a, b) for ra, rb in zip(g.items, p.items) for a, b in zip(ra, rb)))
        if p.kind == "group" and p.open == "(":
            items = _matrix_items(g)
            return items is not None and len(items) == len(p.items) and all(
                compare(a, b) for a, b in zip(items, p.items))
        return False
    if g.kind == "rel":
        return False
    return False


def _rel_as_set(node: Node):
    if node.kind != "rel" or node.op == "=":
        return None
    lhs, rhs = node.items
    if lhs.kind != "expr" or rhs.kind != "expr":
        return None
    ops = {"<": sympy.Lt, ">": sympy.Gt, "<=": sympy.Le, ">=": sympy.Ge}
    if node.op not in ops:
        return None
    rel = ops[node.op](lhs.value, rhs.value)
    syms = rel.free_symbols
    if len(syms) != 1:
        return None
    return rel.as_set()


def _sets_equal(g: Node, p: Node) -> bool:
    try:
        gs = _as_set(g) if g.kind != "rel" else _rel_as_set(g)
        ps = _as_set(p) if p.kind != "rel" else _rel_as_set(p)
        if gs is None or ps is None:
            return False
        if gs == ps:
            return True
        return bool(sympy.simplify(gs.symmetric_difference(ps)) == sympy.S.EmptySet)
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return False


def equivalent_normalized(gold: str, pred: str) -> tuple[bool, str]:
    """(correct, reason) for two normalised answers: reason is match, mismatch or unparseable."""
    try:
        g = parse(gold)
    except (Unparseable, ValueError, TypeError, OverflowError, ArithmeticError, AttributeError):
        gk = text_key(gold)  # e.g. \text{4:30 p.m.}: compare as words
        if gk:
            return (True, "match") if gk == text_key(pred) else (False, "mismatch")
        return False, "unparseable"
    try:
        p = parse(pred)
    except (Unparseable, ValueError, TypeError, OverflowError, ArithmeticError, AttributeError):
        return False, "unparseable"
    return (True, "match") if compare(g, p) else (False, "mismatch")
