"""``negrl bench verify``: verifier throughput on MATH-style responses, negrl vs Math-Verify, one run.

The responses are MATH reference solutions (correct by construction: each ends with its boxed answer),
the same solutions with the final box rewritten in an equivalent form (``\\dfrac``, spacing, ``x = ``),
and with the final box perturbed (wrong by construction), a third each.
negrl grades them with ``grade_many`` (its sandbox pool, ``--workers`` processes); Math-Verify grades
them as users run it, one response after another in one process (``--mv-workers N`` adds a row with N
processes). Prints responses/second, accuracy against the construction labels, the ratio, and the
largest per-item latency relative to the timeout.

    negrl bench verify -n 1000 --workers 2 --timeout 5
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

from negrl.errors import ConfigError, DataError

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "math" / "math_test.jsonl"


def perturb_answer(answer: str) -> str:
    """A different answer of the same shape: bump the first digit, else append ``+1``."""
    m = re.search(r"\d", answer)
    if m:
        d = int(m.group())
        return answer[: m.start()] + str(d + 1 if d < 9 else 7) + answer[m.end():]
    return answer + "+1"


def rewrite_answer(answer: str, rng: random.Random) -> str:
    """An equivalent answer written differently (how a model's answer differs from the reference)."""
    out = answer
    if "\\frac" in out and rng.random() < 0.7:
        out = out.replace("\\frac", "\\dfrac")
    if rng.random() < 0.5:
        out = re.sub(r"\s*([+=])\s*", r" \1 ", out).strip()
    plain = not re.search(r"\\text|\\mbox|=|\\cup|\[|\]|\\begin|\\le|\\ge|<|>|^\s*$", out)
    if plain and (out == answer or rng.random() < 0.5):
        out = "x = " + out
    if out == answer:
        out = answer + " "
    return out


def _replace_last_box(solution: str, new: str) -> str | None:
    from negrl.verify.extract import _BOX_RE, _match_brace

    last = None
    for m in _BOX_RE.finditer(solution):
        last = m
    if last is None:
        return None
    k = last.end()
    while k < len(solution) and solution[k] == " ":
        k += 1
    if k >= len(solution) or solution[k] != "{":
        return None
    end = _match_brace(solution, k)
    if end < 0:
        return None
    return solution[: k + 1] + new + solution[end:]


def _is_symbolic(answer: str) -> bool:
    from negrl.verify.normalize import is_text_answer, normalize, parse_number

    a = normalize(answer)
    return parse_number(a) is None and not is_text_answer(a)


def build_items(path: Path, n: int, seed: int = 0,
                symbolic_only: bool = False) -> list[tuple[str, str, bool]]:
    """(response, gold, label) triples, a third each: reference solutions (correct), solutions whose final
    box is rewritten in an equivalent form (correct), and solutions with a perturbed final box (wrong)."""
    if not path.is_file():
        raise DataError(f"MATH data not found: {path} (pass --data)")
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except ValueError:
                raise DataError(f"{path}:{line_no}: not JSON") from None
            if "solution" not in row or "answer" not in row:
                raise DataError(f"{path}:{line_no}: needs 'solution' and 'answer' fields")
            rows.append(row)
    if symbolic_only:
        rows = [r for r in rows if _is_symbolic(r["answer"])]
    rng = random.Random(seed)
    items: list[tuple[str, str, bool]] = []
    while len(items) < n:
        row = rng.choice(rows)
        kind = len(items) % 3
        if kind == 0:
            items.append((row["solution"], row["answer"], True))
        elif kind == 1:
            same = _replace_last_box(row["solution"], rewrite_answer(row["answer"], rng))
            if same is not None:
                items.append((same, row["answer"], True))
        else:
            wrong = _replace_last_box(row["solution"], perturb_answer(row["answer"]))
            if wrong is not None:
                items.append((wrong, row["answer"], False))
    return items


def _mv_one(args):
    from negrl.verify.secondary import math_verify_grade

    response, gold, timeout = args
    t = time.perf_counter()
    try:
        ok = math_verify_grade(response, gold, timeout=timeout)
    except Exception:  # noqa: BLE001
        ok = False
    return ok, time.perf_counter() - t


def run_math_verify(items, timeout: float, workers: int = 1) -> dict:
    args = [(r, g, max(1, int(round(timeout)))) for r, g, _ in items]
    _mv_one(("\\boxed{\\frac{1}{2}}", "0.5", 5))  # import and warm up outside the timed region
    t0 = time.perf_counter()
    if workers <= 1:
        results = [_mv_one(a) for a in args]
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.map(_mv_one, args, chunksize=8)
    wall = time.perf_counter() - t0
    correct = [ok for ok, _ in results]
    return {"verifier": "math-verify", "workers": workers, "n": len(items), "seconds": wall,
            "rps": len(items) / wall, "accuracy": _acc(correct, items),
            "max_latency": max(lat for _, lat in results), "timeouts": None}


def run_negrl(items, timeout: float, workers: int) -> dict:
    from negrl.verify import get_pool, grade_many

    pool = get_pool(workers)
    t0 = time.perf_counter()
    pool.warm()
    warm = time.perf_counter() - t0
    kills0 = pool.kills
    t0 = time.perf_counter()
    verdicts = grade_many([(r, g) for r, g, _ in items], workers=workers, timeout=timeout)
    wall = time.perf_counter() - t0
    lat = pool.last_latencies or [0.0]
    return {"verifier": "negrl", "workers": workers, "n": len(items), "seconds": wall,
            "rps": len(items) / wall, "accuracy": _acc([v.correct for v in verdicts], items),
            "max_latency": max(lat), "timeouts": pool.kills - kills0, "warmup_s": warm,
            "pooled": len(pool.last_latencies),
            "reasons": {k: sum(v.reason == k for v in verdicts) for k in sorted({v.reason for v in verdicts})},
            }


def _acc(correct, items) -> float:
    return sum(c == label for c, (_, _, label) in zip(correct, items)) / max(1, len(items))


def format_table(rows: list[dict], timeout: float) -> str:
    lines = [f"{'verifier':<12} {'workers':>7} {'responses':>9} {'seconds':>8} {'resp/s':>9} {'accuracy':>8} "
             f"{'max item s':>10}"]
    for r in rows:
        lines.append(f"{r['verifier']:<12} {r['workers']:>7} {r['n']:>9} {r['seconds']:>8.2f} {r['rps']:>9.1f} "
                     f"{r['accuracy']:>8.4f} {r['max_latency']:>10.3f}")
    base = [r for r in rows if r["verifier"] == "negrl"][0]
    for r in rows:
        if r["verifier"] == "math-verify":
            lines.append(f"ratio negrl / math-verify({r['workers']} proc): {base['rps'] / r['rps']:.2f}x")
    over = base["max_latency"] - timeout
    lines.append(f"negrl max item latency - timeout: {over:+.3f} s (must be <= +1 s); "
                 f"killed at timeout: {base['timeouts']}; pool warm-up {base['warmup_s']:.2f} s (not timed); "
                 f"items sent to the pool: {base['pooled']}/{base['n']}")
    return "\n".join(lines)


def cmd_bench_verify(args) -> int:
    if args.responses < 2:
        raise ConfigError("--responses must be >= 2")
    if not args.timeout > 0:
        raise ConfigError("--timeout must be > 0")
    items = build_items(Path(args.data), args.responses, args.seed, symbolic_only=args.symbolic_only)
    from negrl.verify.sandbox import default_workers

    workers = args.workers or min(2, default_workers())
    rows = [run_negrl(items, args.timeout, workers)]
    if not args.skip_math_verify:
        rows.append(run_math_verify(items, args.timeout, 1))
        if args.mv_workers and args.mv_workers > 1:
            rows.append(run_math_verify(items, args.timeout, args.mv_workers))
    print(format_table(rows, args.timeout))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("verify", help="verifier responses/second: negrl vs Math-Verify",
                                    description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--responses", type=int, default=1000, help="number of responses (default 1000)")
    p.add_argument("--workers", type=int, default=None, help="negrl sandbox workers (default min(2, CPUs))")
    p.add_argument("--timeout", type=float, default=5.0, help="per-response timeout in seconds (default 5)")
    p.add_argument("--mv-workers", type=int, default=0, help="also time Math-Verify with N processes")
    p.add_argument("--skip-math-verify", action="store_true", help="time negrl only")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="MATH jsonl with solution and answer fields")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--symbolic-only", action="store_true",
                   help="only problems whose gold is not a plain number or word (the worst case for negrl: "
                        "every answer that does not match the reference string goes through sympy)")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.set_defaults(func=cmd_bench_verify)


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    register(sub)
    a = ap.parse_args(["verify"] + sys.argv[1:])
    sys.exit(a.func(a))
