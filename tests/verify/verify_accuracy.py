"""Accuracy of negrl and of Math-Verify on the equivalence suite, per category.

    python tests/verify/verify_accuracy.py            # prints the table and every case either verifier gets wrong
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verify_cases import CASES, as_response  # noqa: E402


def run_negrl(timeout: float = 5.0) -> list[bool]:
    from negrl.verify import grade_many

    verdicts = grade_many([(as_response(cat, pred), gold) for cat, gold, pred, _ in CASES], timeout=timeout)
    return [v.correct for v in verdicts]


def run_math_verify() -> list[bool]:
    from negrl.verify.secondary import math_verify_grade

    out = []
    for cat, gold, pred, _ in CASES:
        try:
            out.append(math_verify_grade(as_response(cat, pred), gold, timeout=5))
        except Exception:  # noqa: BLE001
            out.append(False)
    return out


def table(negrl: list[bool], mv: list[bool]) -> tuple[dict, str]:
    per = defaultdict(lambda: [0, 0, 0])
    for (cat, _, _, exp), a, b in zip(CASES, negrl, mv):
        for key in (cat, "ALL"):
            per[key][0] += 1
            per[key][1] += a == exp
            per[key][2] += b == exp
    lines = [f"{'category':<20} {'cases':>5} {'negrl':>8} {'math-verify':>12}"]
    for cat in [c for c in per if c != "ALL"] + ["ALL"]:
        n, a, b = per[cat]
        lines.append(f"{cat:<20} {n:>5} {a / n:>8.3f} {b / n:>12.3f}")
    return dict(per), "\n".join(lines)


if __name__ == "__main__":
    ng = run_negrl()
    mv = run_math_verify()
    per, text = table(ng, mv)
    print(text)
    for (cat, gold, pred, exp), a, b in zip(CASES, ng, mv):
        if a != exp or b != exp:
            print(f"{cat:<18} exp={exp!s:<5} negrl={a!s:<5} mv={b!s:<5} gold={gold!r} pred={pred!r}")
