"""negrl.verify: the answer verifier (extract the final answer, normalise, compare symbolically).

Public API (stable, see docs/design.md):

    >>> from negrl.verify import equivalent, grade, grade_many
    >>> equivalent(r"\\frac{1}{2}", "0.5")
    True
    >>> grade(r"... so $\\boxed{-\\frac{5}{2}}$", "-2.5").reason
    'match'

Model output is untrusted: anything that needs sympy runs in a sandboxed worker pool
(:mod:`negrl.verify.sandbox`) with a kill-based timeout and memory limit; plain numbers, identical
strings and word answers are decided in process without sympy.
"""

from negrl.verify.grader import REASONS, Verdict, equivalent, grade, grade_many
from negrl.verify.sandbox import get_pool, shutdown_pool


def warmup(workers: int | None = None) -> None:
    """Start the sandbox workers now instead of on the first call that needs them."""
    get_pool(workers).warm()


def verify_rollouts(rollouts, problems, *, workers=None, timeout=5.0, secondary=True, progress=None):
    """Verdicts DataFrame for a rollouts DataFrame (see :mod:`negrl.verify.stage`)."""
    from negrl.verify.stage import verify_rollouts as _impl

    return _impl(rollouts, problems, workers=workers, timeout=timeout, secondary=secondary, progress=progress)


__all__ = ["REASONS", "Verdict", "equivalent", "grade", "grade_many", "verify_rollouts", "warmup",
           "get_pool", "shutdown_pool"]
