"""Final-answer extraction (in process, linear time)."""

from __future__ import annotations

import time

import pytest

from negrl.verify.extract import extract, extract_boxed_all


@pytest.mark.parametrize("text, expected", [
    (r"so $\boxed{5}$.", ["5"]),
    (r"\boxed{\frac{\sqrt{3}}{2}}", [r"\frac{\sqrt{3}}{2}"]),
    (r"\boxed{\{1,2\}}", [r"\{1,2\}"]),
    (r"\boxed 5.", ["5"]),
    (r"\boxed  {7}", ["7"]),
    (r"\fbox{7} apples", ["7"]),
    (r"\boxed{1} then \boxed{2} and \boxed{3}", ["1", "2", "3"]),
    (r"\boxed{\boxed{10}}", [r"\boxed{10}"]),
    (r"\boxedx{3} no box", []),
    (r"\boxed{unclosed", []),
    (r"\boxed{ 12 }", ["12"]),
    ("no box at all", []),
    (r"\boxed{a}{b}", ["a"]),
])
def test_boxed(text, expected):
    assert extract_boxed_all(text) == expected


def test_last_box_and_source():
    ex = extract(r"first \boxed{3}, actually \boxed{4}")
    assert ex.last == "4" and ex.source == "boxed" and ex.answers == ["3", "4"]


def test_unclosed_box_flag():
    ex = extract(r"done: \boxed{3}. Hmm, wait \boxed{\frac{1}{")
    assert ex.answers == ["3"] and ex.unclosed_box


@pytest.mark.parametrize("text, expected", [
    ("Adding up, the final answer is 7.", "7"),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("Final Answer: 3.5", "3.5"),
    ("The answer is \\(x^2\\)", "x^2"),
    ("the answer is 12\nmore text", "12"),
])
def test_final_answer_sentence(text, expected):
    ex = extract(text)
    assert ex.source == "text" and ex.last == expected


def test_box_wins_over_sentence():
    assert extract(r"The final answer is 3. \boxed{4}").last == "4"


@pytest.mark.parametrize("text", [
    "{" * 200_000 + "}" * 200_000,
    "\\boxed{" * 100_000,
    "\\boxed{1}" * 100_000,
    "\\" * 1_000_000,
    "final answer is " * 50_000,
    "a" * 3_000_000,
])
def test_linear_time_on_huge_inputs(text):
    t = time.perf_counter()
    extract(text)
    assert time.perf_counter() - t < 2.0
