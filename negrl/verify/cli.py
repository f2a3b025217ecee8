"""``negrl verify`` (the pipeline stage) and ``negrl verify-answer GOLD PRED`` (a quick check).

    negrl verify --rollouts R.parquet --problems P.parquet --out V.parquet [--workers N] [--timeout S]
                 [--secondary/--no-secondary]
    negrl verify-answer '\\frac12' '0.5'          # prints "match", exit 0; "mismatch" -> exit 1
"""

from __future__ import annotations

import argparse
import json
import sys

from negrl.errors import ConfigError


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


def _config_section(path: str | None) -> dict:
    if not path:
        return {}
    try:
        import yaml

        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    section = cfg.get("verify", {}) if isinstance(cfg, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'verify' must be a mapping")
    unknown = set(section) - {"workers", "timeout", "secondary"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) verify.{', verify.'.join(sorted(unknown))}")
    return section


def cmd_verify(args) -> int:
    from negrl.verify.stage import run_stage

    cfg = _config_section(getattr(args, "config", None))
    workers = args.workers if args.workers is not None else cfg.get("workers")
    timeout = args.timeout if args.timeout is not None else float(cfg.get("timeout", 5.0))
    secondary = args.secondary if args.secondary is not None else bool(cfg.get("secondary", True))
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"verify.workers must be a positive integer, got {workers!r}")
    if not timeout > 0:
        raise ConfigError(f"verify.timeout must be > 0, got {timeout!r}")
    verdicts = run_stage(args.rollouts, args.problems, args.out, workers=workers, timeout=timeout,
                         secondary=secondary, progress=None)
    n = len(verdicts)
    acc = float(verdicts["correct"].mean()) if n else 0.0
    reasons = verdicts["reason"].value_counts().to_dict()
    line = f"verified {n} responses: accuracy {acc:.4f}; "
    line += ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    if secondary and n:
        agree = verdicts["agree_secondary"].astype("boolean")
        line += (f"; agreement with math-verify {float(agree.mean()):.4f} "
                 f"({int((~agree).sum())} disagreements)")
    print(line, file=sys.stderr)
    return 0


def cmd_verify_answer(args) -> int:
    from negrl.verify import grade

    response = args.pred if args.response else "\\boxed{" + args.pred + "}"
    if args.response and args.pred == "-":
        response = sys.stdin.read()
    v = grade(response, args.gold, timeout=args.timeout)
    if args.json:
        print(json.dumps({"correct": v.correct, "extracted": v.extracted, "reason": v.reason,
                          "detail": v.detail}))
    else:
        print(v.reason if not args.verbose else f"{v.reason} (extracted {v.extracted!r}, {v.detail})")
    return 0 if v.correct else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="grade rollouts against gold answers (writes a verdicts Parquet)",
        description="Grade every rollout's final answer against its problem's gold answer in a sandboxed "
                    "process pool, with Math-Verify as a second opinion.")
    p.add_argument("--rollouts", required=True,
                   help="rollouts Parquet (prompt_id, sample_idx, response, ...)")
    p.add_argument("--problems", required=True, help="problems Parquet (id, answer, ...)")
    p.add_argument("--out", required=True, help="verdicts Parquet to write (atomically)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="sandbox worker processes (default: CPUs, at most 8)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="seconds per response (default 5)")
    p.add_argument("--secondary", action=argparse.BooleanOptionalAction, default=None,
                   help="also run Math-Verify and fill agree_secondary (default on)")
    p.add_argument("--config", default=None, help="YAML config; its 'verify:' section sets the defaults")
    p.set_defaults(func=cmd_verify)

    q = subparsers.add_parser(
        "verify-answer", help="check one answer against a gold answer from the shell",
        description="Exit status 0 when PRED is equivalent to GOLD, 1 otherwise; prints the reason.")
    q.add_argument("gold", metavar="GOLD", help="gold answer, e.g. '\\frac12'")
    q.add_argument("pred", metavar="PRED",
                   help="predicted answer (or a full response with --response; '-' = stdin)")
    q.add_argument("--response", action="store_true",
                   help="PRED is a full response: extract its final answer")
    q.add_argument("--timeout", type=_positive_float, default=5.0, help="seconds (default 5)")
    q.add_argument("--json", action="store_true", help="print the verdict as JSON")
    q.add_argument("-v", "--verbose", action="store_true", help="also print what was extracted and how")
    q.set_defaults(func=cmd_verify_answer)
