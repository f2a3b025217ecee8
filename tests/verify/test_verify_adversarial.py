"""Hostile model output: no execution, no hang beyond timeout + 1 s, and the pool keeps working."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from negrl.verify import equivalent, grade, grade_many

TIMEOUT = 2.0


def _attacks(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"__import__('os').system('touch {m}')",
        f"__import__(\"os\").system(\"touch {m}\")",
        f"eval(\"__import__('os').system('touch {m}')\")",
        f"exec('open(\"{m}\", \"w\")')",
        f"().__class__.__bases__[0].__subclasses__()[0]('touch {m}')",
        f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__=='Popen'][0]('touch {m}',shell=True)",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('touch {m}')",
        f"lambda: __import__('os').system('touch {m}')",
        f"S('__import__(\\\"os\\\").system(\\\"touch {m}\\\")')",
        f"\\input{{{m}}}", f"\\write18{{touch {m}}}", f"\\immediate\\write18{{touch {m}}}",
        f"\\include{{{m}}}", f"\\openout1={m} \\write1{{x}}", "\\def\\x{\\x}\\x", "\\catcode`\\{=12",
        "2^{2^{2^{2^{2^{100}}}}}", "9^{9^{9^{9}}}", "10^{10^{10}}", "(10^{100})!", "100000000!", "1000000!!",
        "\\prod_{k=1}^{10^{9}} k", "\\sum_{n=1}^{10^{12}} n^{n}", "(x+1)^{1000000}", "x^{10^{10}}-x^{10^{10}}",
        "\\frac{" * 3000 + "1" + "}{2}" * 3000, "(" * 20000 + "1" + ")" * 20000, "{" * 50000 + "}" * 50000,
        "\\sqrt{" * 2000 + "2" + "}" * 2000, "1+" * 1800 + "1", "x" * 3900, "1" * 3999,
        "1" * 2_000_000, "\\left(" * 5000, "a\x00b\x01c\x1b[31m\x7f", "\x00" * 1000, "\u202e\u2066evil",
        "1e999999999", "1.5e-999999999", "0." + "9" * 3000, "\\begin{pmatrix}" + "1&" * 2000 + "1\\end{pmatrix}",
        "\\begin{pmatrix}" + "1\\\\" * 2000 + "1\\end{pmatrix}", "\\boxed{" * 1000 + "}" * 1000,
        "\\int_0^{\\infty} e^{-x^{1000}} \\sin(x^{1000}) dx", "\\lim_{x\\to 0} \\frac{\\sin(x^{99})}{x^{98}}",
    ]


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    return tmp_path_factory.mktemp("adv") / "pwned"


def test_batch_of_attacks_returns_in_time_and_executes_nothing(pool, marker):
    attacks = _attacks(marker)
    items = [(f"The answer is \\boxed{{{a}}}.", "1") for a in attacks]
    items += [(f"The final answer is {a}", "x") for a in attacks[:12]]
    items += [(a, "1") for a in attacks]  # raw, no box at all
    t = time.monotonic()
    vs = grade_many(items, timeout=TIMEOUT)
    assert len(vs) == len(items)
    assert not any(v.correct for v in vs)
    assert max(pool.last_latencies) <= TIMEOUT + 1.0
    assert not marker.exists()
    assert time.monotonic() - t < 120


@pytest.mark.parametrize("k", [0, 5, 16, 22, 26, 28, 37])
def test_single_attack_latency(pool, marker, k):
    attack = _attacks(marker)[k]
    grade(r"\boxed{\sqrt{2}}", r"\sqrt2")  # make sure the pool is up
    t = time.monotonic()
    v = grade(f"\\boxed{{{attack}}}", "1", timeout=TIMEOUT)
    assert time.monotonic() - t <= TIMEOUT + 1.0
    assert not v.correct
    assert not marker.exists()


def test_attack_as_gold_is_harmless_too(pool, marker):
    for a in _attacks(marker)[:10]:
        assert not equivalent(a, "1", timeout=TIMEOUT)
    assert not marker.exists()


def test_secondary_verifier_cannot_be_used_to_execute(pool, marker):
    """Math-Verify evaluates plain expressions with parse_expr (eval); in our worker that is refused."""
    from negrl.verify.stage import secondary_verdicts

    attacks = _attacks(marker)[:9]
    responses = [f"The answer is {a}" for a in attacks]
    res = secondary_verdicts(responses, ["1"] * len(responses), workers=None, timeout=TIMEOUT)
    assert len(res) == len(responses)
    assert not marker.exists()
    pool.blocked_events.clear()


def test_pool_still_works_afterwards(pool):
    vs = grade_many([(r"\boxed{\frac{\sqrt3}{2}}", r"\frac{1}{2}\sqrt3"), (r"\boxed{(1,2]}", "(1,2)"),
                     (r"\boxed{x^2+2x+1}", "(x+1)^2"), (r"\boxed{7}", "7")], timeout=5.0)
    assert [v.correct for v in vs] == [True, False, True, True]
