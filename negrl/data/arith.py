"""A synthetic, leveled math task for the CPU default: exact arithmetic in five difficulty levels.

Level 1: one addition/subtraction of non-negative integers up to 30.
Level 2: one multiplication, or an addition/subtraction with negative operands.
Level 3: three small non-negative integers and two operators with precedence (two steps).
Level 4: sum or difference of two fractions (common denominator, combine, reduce).
Level 5: a signed fraction sum times an integer, minus a fraction (four or more steps).

Answers are LaTeX (``-7``, ``\\frac{5}{6}``, ``-\\frac{3}{2}``) so the sympy verifier does real work; each
problem carries a worked solution ending in ``\\boxed{}`` for the supervised warm start. Generation is
deterministic in the seed; a problem goes to the test split exactly when a hash of its text says so, so
train and test never overlap whatever the requested sizes.

    >>> from negrl.data.arith import generate_split
    >>> test = generate_split("test", per_level=2, seed=0)
    >>> sorted({p["level"] for p in test})
    [1, 2, 3, 4, 5]
"""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction
from typing import Callable

from negrl.errors import ConfigError

LEVELS = (1, 2, 3, 4, 5)
TEST_BUCKETS = 8  # one problem text in 8 is test-eligible (by hash), the rest train-eligible
SUBJECTS = {1: "addition", 2: "signed arithmetic", 3: "order of operations", 4: "fractions", 5: "fraction expressions"}


def latex_number(value: Fraction) -> str:
    """``Fraction(-3, 2)`` -> ``-\\frac{3}{2}``; integers stay plain."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def plain_number(value: Fraction) -> str:
    """How the worked solutions write intermediate values: ``-3/2``, ``7``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _operand(value: int) -> str:
    return f"({value})" if value < 0 else str(value)


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction:
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _level1(rng: random.Random) -> tuple[str, list[str], Fraction]:
    a, b, op = rng.randint(0, 30), rng.randint(0, 30), rng.choice("+-")
    value = _apply(Fraction(a), op, Fraction(b))
    return f"{a}{op}{b}", [f"{a}{op}{b}={plain_number(value)}"], value


def _level2(rng: random.Random) -> tuple[str, list[str], Fraction]:
    if rng.random() < 0.5:
        a, b, op = rng.randint(2, 9), rng.randint(-9, 12), "*"
    else:
        a, b, op = rng.randint(-30, 30), rng.randint(-30, 30), rng.choice("+-")
    value = _apply(Fraction(a), op, Fraction(b))
    text = f"{_operand(a)}{op}{_operand(b)}"
    return text, [f"{text}={plain_number(value)}"], value


def _level3(rng: random.Random) -> tuple[str, list[str], Fraction]:
    a, b, c = rng.randint(0, 12), rng.randint(0, 12), rng.randint(0, 12)
    op1, op2 = rng.choice("+-*"), rng.choice("+-*")
    text = f"{_operand(a)}{op1}{_operand(b)}{op2}{_operand(c)}"
    if op2 == "*" and op1 != "*":  # b*c first
        inner = _apply(Fraction(b), op2, Fraction(c))
        value = _apply(Fraction(a), op1, inner)
        steps = [f"{_operand(b)}*{_operand(c)}={plain_number(inner)}",
                 f"{_operand(a)}{op1}{_operand(int(inner))}={plain_number(value)}"]
    else:  # left to right
        inner = _apply(Fraction(a), op1, Fraction(b))
        value = _apply(inner, op2, Fraction(c))
        steps = [f"{_operand(a)}{op1}{_operand(b)}={plain_number(inner)}",
                 f"{_operand(int(inner))}{op2}{_operand(c)}={plain_number(value)}"]
    return text, steps, value


def _fraction_sum_steps(x: Fraction, op: str, y: Fraction) -> tuple[list[str], Fraction]:
    """Worked steps for x op y with x, y fractions: common denominator, combine, reduce."""
    common = x.denominator * y.denominator // _gcd(x.denominator, y.denominator)
    xn, yn = x.numerator * (common // x.denominator), y.numerator * (common // y.denominator)
    raw_numerator = xn + yn if op == "+" else xn - yn
    value = Fraction(raw_numerator, common)
    steps = [f"{plain_number(x)}{op}{_frac_operand(y)}={xn}/{common}{op}{_signed(yn)}/{common}",
             f"={raw_numerator}/{common}"]
    if value.denominator != common:
        steps.append(f"={plain_number(value)}")
    return steps, value


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)


def _signed(n: int) -> str:
    return f"({n})" if n < 0 else str(n)


def _frac_operand(x: Fraction) -> str:
    return f"({plain_number(x)})" if x < 0 else plain_number(x)


def _random_fraction(rng: random.Random, allow_negative: bool) -> Fraction:
    denominator = rng.randint(2, 9)
    numerator = rng.randint(1, 9)
    if allow_negative and rng.random() < 0.5:
        numerator = -numerator
    return Fraction(numerator, denominator) if numerator % denominator else Fraction(numerator, denominator + 1)


def _fraction_text(x: Fraction) -> str:
    return f"({x.numerator}/{x.denominator})" if x < 0 else f"{x.numerator}/{x.denominator}"


def _level4(rng: random.Random) -> tuple[str, list[str], Fraction]:
    x, y, op = _random_fraction(rng, False), _random_fraction(rng, False), rng.choice("+-")
    steps, value = _fraction_sum_steps(x, op, y)
    return f"{_fraction_text(x)}{op}{_fraction_text(y)}", [" ".join(steps).replace(" =", "=")], value


def _level5(rng: random.Random) -> tuple[str, list[str], Fraction]:
    x, y, z = _random_fraction(rng, True), _random_fraction(rng, False), _random_fraction(rng, False)
    k = rng.choice([-4, -3, -2, 2, 3, 4, 5])
    op, op2 = rng.choice("+-"), rng.choice("+-")
    # ((x op y) * k) op2 z : a fraction sum, an integer product, then a second fraction sum
    first, inner = _fraction_sum_steps(x, op, y)
    product = inner * k
    last, value = _fraction_sum_steps(product, op2, z)
    steps = [" ".join(first).replace(" =", "="), f"{_frac_operand(inner)}*{_operand(k)}={plain_number(product)}",
             " ".join(last).replace(" =", "=")]
    return f"({_fraction_text(x)}{op}{_fraction_text(y)})*{_operand(k)}{op2}{_fraction_text(z)}", steps, value


GENERATORS: dict[int, Callable[[random.Random], tuple[str, list[str], Fraction]]] = {
    1: _level1, 2: _level2, 3: _level3, 4: _level4, 5: _level5,
}


def _is_test(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % TEST_BUCKETS == 0


def make_problem(level: int, expression: str, steps: list[str], value: Fraction) -> dict:
    answer = latex_number(value)
    problem = f"Compute {expression}."
    return {
        "id": f"arith/L{level}/{hashlib.sha256(expression.encode()).hexdigest()[:12]}",
        "problem": problem,
        "answer": answer,
        "level": level,
        "subject": SUBJECTS[level],
        "solution": "; ".join(steps) + f". \\boxed{{{answer}}}",
    }


def generate_split(split: str, per_level: int, seed: int = 0, max_attempts_factor: int = 200) -> list[dict]:
    """``per_level`` distinct problems of each level for ``split`` ("train" or "test").

    The test split must reach ``per_level`` (else ``ConfigError``); for train it is a maximum, since level 1
    has fewer distinct problems (about 1,700 train-eligible) than the higher levels."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    want_test = split == "test"
    problems: list[dict] = []
    for level in LEVELS:
        rng = random.Random(f"negrl-arith/{seed}/{level}")
        seen: set[str] = set()
        kept = 0
        for _ in range(per_level * max_attempts_factor):
            expression, steps, value = GENERATORS[level](rng)
            if expression in seen:
                continue
            seen.add(expression)
            if _is_test(expression) != want_test:
                continue
            problems.append(make_problem(level, expression, steps, value))
            kept += 1
            if kept == per_level:
                break
        else:
            if split == "train" and kept > 0:
                continue  # a small level (level 1) contributes every distinct problem it has
            raise ConfigError(
                f"data.arith: level {level} has only {kept} distinct {split} problems for seed {seed}; "
                f"ask for fewer than {per_level} per level"
            )
    return problems
