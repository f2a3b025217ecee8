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


_IN_PROCESS_PROBE = r'''
import sys, time
from negrl.verify.extract import extract
from negrl.verify.grader import _quick
from negrl.verify.normalize import normalize
cases = ["1 " + "m" * 3000 + "!", "1" + " m" * 1900 + "!", "1" + " square units" * 300 + " x", "." * 3990 + "x",
         "1" + " " * 3990 + "x", " and" * 990 + "x", "\\text{" * 600, "\\frac" * 800, "{1" + ",000" * 900 + "x",
         "$" * 3999, "^ " * 1999, "\\" + "a" * 3999, "\\left" * 799, ", " * 1999, "\\ " * 1999 + "x",
         "\\," * 1999 + "x", "5\\text{ cm}" * 300, "1" * 3990 + "_5x", "x" + "_{a" * 1000, "(" * 3999,
         "1" * 399 + "." + "1" * 399 + "e", "\\boxed{" * 600, "0.\\overline{" + "3" * 3000]
worst = 0.0
for c in cases:
    t = time.perf_counter()
    _quick("1", normalize(c))
    extract("The final answer is " + c)
    extract("\\boxed{" + c + "}")
    worst = max(worst, time.perf_counter() - t)
print(worst)
'''


def test_in_process_steps_are_linear_time():
    """Extraction and normalisation run in the caller's process: no regex may backtrack badly.
    Run in a subprocess so that a regression fails the test instead of hanging it."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _IN_PROCESS_PROBE], capture_output=True, text=True, timeout=60,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip()) < 0.5


def test_random_latex_soup_is_graded_cleanly(pool):
    """Seeded random token soup (both as prediction and as gold): every item gets a verdict, none is an
    internal error, nothing is refused by the sandbox, nothing exceeds its timeout."""
    import random

    alphabet = list("0123456789+-*/^_=,.;:()[]{}\\ xyzabciepnt") + [
        "\\frac", "\\sqrt", "\\text{", "\\left(", "\\right)", "\\pi", "\\infty", "\\{", "\\}", "\\pm", "\\cup",
        "\\begin{pmatrix}", "\\end{pmatrix}", "\\\\", "&", "^\\circ", "\\le", "\\sin", "\\log", "!", "\\cdot",
        "\\times", "|", "\\in", "\\emptyset"]
    rng = random.Random(1)

    def soup(n):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, n)))

    golds = [r"\frac{1}{2}", "x^2+1", "(1,2]", r"\{1,2\}", "1,2", r"\begin{pmatrix}1\\2\end{pmatrix}", "y=2x+3",
             "3+4i", r"\sqrt2", "(1,2)", r"x\in[0,1)", r"\pm 2", "5"]
    items = [("\\boxed{" + soup(25) + "}", rng.choice(golds)) for _ in range(300)]
    items += [("\\boxed{" + g + "}", soup(15)) for g in golds for _ in range(8)]
    pool.blocked_events.clear()
    vs = grade_many(items, timeout=TIMEOUT)
    assert len(vs) == len(items)
    assert [v for v in vs if v.reason == "error"] == []
    assert pool.blocked_events == []
    assert max(pool.last_latencies) <= TIMEOUT + 1.0
