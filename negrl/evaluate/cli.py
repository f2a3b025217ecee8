"""``negrl evaluate``: per-problem accuracy table and metrics.json of one model's verified rollouts."""

from __future__ import annotations

import argparse

from negrl.evaluate.metrics import per_problem_accuracy, summarize
from negrl.provenance import write_json
from negrl.rollout.io import read_parquet, write_parquet


def run_evaluate(args: argparse.Namespace) -> int:
    rollouts = read_parquet(args.rollouts, ["prompt_id", "sample_idx", "level", "subject", "truncated", "model"],
                            "rollouts")
    verdicts = read_parquet(args.verdicts, ["prompt_id", "sample_idx", "correct"], "verdicts")
    table = per_problem_accuracy(rollouts, verdicts)
    summary = summarize(table)
    summary["model"] = str(rollouts["model"].iloc[0])
    write_parquet(table, args.per_problem)
    write_json(args.out, summary)
    levels = ", ".join(f"L{level} {v['accuracy']:.3f}" for level, v in summary["by_level"].items())
    print(f"evaluate: {summary['model']}: overall {summary['overall']['accuracy']:.3f} ({levels})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="accuracy by level/subject of one model's verified rollouts")
    parser.add_argument("--rollouts", required=True)
    parser.add_argument("--verdicts", required=True)
    parser.add_argument("--per-problem", required=True, help="per-problem accuracy Parquet to write")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    parser.set_defaults(func=run_evaluate)
