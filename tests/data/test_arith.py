from fractions import Fraction

import pytest

from negrl.data import arith
from negrl.errors import ConfigError
from negrl.verify import equivalent


def test_latex_numbers():
    assert arith.latex_number(Fraction(-3, 2)) == r"-\frac{3}{2}"
    assert arith.latex_number(Fraction(10, 5)) == "2"
    assert arith.latex_number(Fraction(0)) == "0"


@pytest.fixture(scope="module")
def splits():
    return arith.generate_split("train", 600, seed=0), arith.generate_split("test", 60, seed=0)


def test_deterministic_in_seed(splits):
    train, test = splits
    assert arith.generate_split("test", 60, seed=0) == test
    assert arith.generate_split("test", 60, seed=1) != test


def test_train_and_test_never_overlap(splits):
    train, test = splits
    assert not {p["problem"] for p in train} & {p["problem"] for p in test}
    assert len({p["id"] for p in train + test}) == len(train) + len(test)


def test_fields_levels_and_counts(splits):
    train, test = splits
    assert {p["level"] for p in test} == {1, 2, 3, 4, 5}
    assert all(sum(p["level"] == lv for p in test) == 60 for lv in range(1, 6))
    for p in train[:50] + test:
        assert set(p) == {"id", "problem", "answer", "level", "subject", "solution"}
        assert p["solution"].endswith(rf"\boxed{{{p['answer']}}}")


def test_answers_are_the_exact_value_of_the_expression(splits):
    """Evaluate each problem's expression with exact rationals (a tiny safe parser) and compare."""
    import ast

    def value(node):
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b}
        return ops[type(node.op)](value(node.left), value(node.right))

    _, test = splits
    for p in test:
        expression = p["problem"].removeprefix("Compute ").removesuffix(".")
        exact = value(ast.parse(expression, mode="eval").body)
        assert p["answer"] == arith.latex_number(exact), p


def test_answers_are_latex_the_verifier_understands(splits):
    _, test = splits
    fractions = [p for p in test if r"\frac" in p["answer"]]
    negatives = [p for p in test if p["answer"].startswith("-")]
    assert fractions and negatives
    p = fractions[0]
    numerator, denominator = p["answer"].lstrip("-").removeprefix(r"\frac{").removesuffix("}").split("}{")
    sign = "-" if p["answer"].startswith("-") else ""
    assert equivalent(p["answer"], f"{sign}{numerator}/{denominator}")
    assert not equivalent(p["answer"], f"{sign}{int(numerator) + 1}/{denominator}")


def test_difficulty_grows_with_level(splits):
    train, _ = splits
    mean_len = [sum(len(p["solution"]) for p in train if p["level"] == lv) / sum(p["level"] == lv for p in train)
                for lv in range(1, 6)]
    assert mean_len == sorted(mean_len)


def test_too_many_test_problems_is_a_config_error():
    with pytest.raises(ConfigError, match="level 1 has only"):
        arith.generate_split("test", 5000, seed=0)
