"""``negrl prepare``: write the train and test problem tables of the configured task."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from negrl.config import load_config
from negrl.data import arith
from negrl.data.math import load_math
from negrl.errors import ConfigError
from negrl.provenance import atomic_path, write_provenance

PROBLEM_COLUMNS = ["id", "problem", "answer", "level", "subject", "solution"]


def build_problems(config, base_dir: Path) -> tuple[list[dict], list[dict]]:
    data = config.data
    if data.task == "arith":
        return (arith.generate_split("train", data.arith.train_per_level, data.arith.seed),
                arith.generate_split("test", data.arith.test_per_level, data.arith.seed))
    return (load_math(data.math.train, data.math.train_split, data.math.max_train_problems, base_dir),
            load_math(data.math.test, data.math.test_split, data.math.max_test_problems, base_dir))


def write_problems(problems: list[dict], path: Path) -> None:
    frame = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_problems(path: str | Path) -> list[dict]:
    from negrl.rollout.io import read_parquet

    return read_parquet(path, PROBLEM_COLUMNS, "problems").to_dict("records")


def run_prepare(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    base_dir = Path.cwd()  # relative data paths in the config are relative to where the pipeline runs
    if not (args.train_out or args.test_out):
        raise ConfigError("prepare: give --train-out, --test-out or both")
    train, test = build_problems(config, base_dir)
    for problems, out, name in ((train, args.train_out, "train"), (test, args.test_out, "test")):
        if out:
            write_problems(problems, Path(out))
            write_provenance(Path(out).parent, config.section_hash("data"), **{f"n_{name}": len(problems)})
            print(f"prepare: {len(problems)} {name} problems ({config.data.task}) -> {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("prepare", help="write the train/test problem tables of the configured task")
    parser.add_argument("--config", required=True, help="config YAML (config/config.yaml)")
    parser.add_argument("--train-out", help="train problems Parquet to write")
    parser.add_argument("--test-out", help="test problems Parquet to write")
    parser.set_defaults(func=run_prepare)
