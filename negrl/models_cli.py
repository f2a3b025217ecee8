"""``negrl base-model``: the starting policy of every method.

With ``model.name_or_path`` set, it is loaded (hub id or directory) and saved as is. Otherwise the offline
toy model is built (random Llama + character tokenizer) and, when ``warmstart.enabled``, fine-tuned on the
training problems' worked solutions so it answers in ``\\boxed{}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from negrl.config import load_config, to_dict
from negrl.data.cli import read_problems
from negrl.data.prompts import render_prompt
from negrl.errors import ConfigError
from negrl.models import build_toy, count_parameters, load_model_and_tokenizer
from negrl.provenance import atomic_path, write_provenance
from negrl.train.sft import supervised_warmstart


def run_base_model(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out_dir)
    start = time.time()
    if config.model.name_or_path:
        model, tokenizer = load_model_and_tokenizer(config.model.name_or_path, config.model.dtype, args.device)
    else:  # built on the CPU; the warm start runs on the GPU when there is one
        model, tokenizer = build_toy(config.model.toy)
        model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if config.warmstart.enabled:
        problems = read_problems(args.train)
        examples = [(render_prompt(p["problem"], config.data.prompt_template, tokenizer), p["solution"])
                    for p in problems if p.get("solution")]
        if not examples:
            raise ConfigError(f"warmstart.enabled: {args.train} has no worked solutions to train on")
        ws = config.warmstart
        supervised_warmstart(model, tokenizer, examples, steps=ws.steps, batch_size=ws.batch_size, lr=ws.lr,
                             warmup_steps=ws.warmup_steps, weight_decay=ws.weight_decay, seed=ws.seed,
                             length_bucketing=ws.length_bucketing, micro_batch_size=ws.micro_batch_size,
                             log_path=Path(args.log_jsonl) if args.log_jsonl else None)
    model.to("cpu")  # saved the same way whichever device trained it
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    write_provenance(out.parent, config.section_hash("model", "warmstart", "data"),
                     parameters=count_parameters(model), seconds=round(time.time() - start, 1),
                     model=to_dict(config.model), warmstart=to_dict(config.warmstart))
    print(f"base-model: {count_parameters(model):,} parameters -> {out} ({time.time() - start:.0f} s)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("base-model", help="build/load the starting model (toy: build + warm start)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--train", required=True, help="train.parquet from `negrl prepare` (warm-start data)")
    parser.add_argument("--out-dir", required=True, help="model directory to write (save_pretrained)")
    parser.add_argument("--log-jsonl", help="warm-start loss log")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.set_defaults(func=run_base_model)
