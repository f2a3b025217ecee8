"""``negrl train``: one (method, seed) run of the online RL loop."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from negrl.config import load_config
from negrl.data.cli import read_problems


def run_train(args: argparse.Namespace) -> int:
    from negrl.train.loop import train

    config = load_config(args.config)
    if args.method not in config.methods:
        print(f"note: method '{args.method}' is not in the config's methods list; using its defaults")
    torch.set_num_threads(max(1, args.threads))
    resume = "must" if args.resume else ("never" if args.no_resume else "auto")
    final = train(config, args.method, args.seed, Path(args.base_model), read_problems(args.train),
                  Path(args.out_dir), device=args.device, resume=resume)
    print(f"train: {args.method} seed {args.seed} -> {final}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="run the online RL loop for one method and seed")
    parser.add_argument("--config", required=True)
    parser.add_argument("--method", required=True, help="a name from `negrl methods`")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--base-model", required=True, help="starting model directory (from `negrl base-model`)")
    parser.add_argument("--train", required=True, help="train.parquet from `negrl prepare`")
    parser.add_argument("--out-dir", required=True, help="run folder: metrics.jsonl, checkpoints/, model/")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="require a compatible checkpoint and continue it")
    group.add_argument("--no-resume", action="store_true", help="start fresh, deleting old checkpoints")
    parser.set_defaults(func=run_train)
