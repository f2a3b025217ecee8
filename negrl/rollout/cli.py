"""``negrl rollout``: sample responses of one model on the test problems (the evaluation rollouts)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from negrl.config import load_config
from negrl.data.cli import read_problems
from negrl.data.prompts import render_prompt
from negrl.models import load_model_and_tokenizer
from negrl.provenance import write_provenance
from negrl.rollout import engine_options, make_engine
from negrl.rollout.base import SamplingParams
from negrl.rollout.io import completions_to_frame, write_parquet


def run_rollout(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    torch.set_num_threads(max(1, args.threads))
    problems = read_problems(args.problems)
    model, tokenizer = load_model_and_tokenizer(args.model, config.model.dtype, args.device)
    prompts = [render_prompt(p["problem"], config.data.prompt_template, tokenizer) for p in problems]
    ec = config.eval
    params = SamplingParams(n=ec.n_samples, temperature=ec.temperature, top_p=ec.top_p,
                            max_tokens=ec.max_tokens or config.rollout.max_tokens, seed=ec.seed)
    engine = make_engine(config.rollout.backend, model=model, tokenizer=tokenizer,
                         **engine_options(config.rollout))
    completions = []
    chunk = max(1, config.rollout.max_batch_size // ec.n_samples)
    from tqdm.auto import tqdm

    for begin in tqdm(range(0, len(prompts), chunk), desc=f"rollout {args.name}", mininterval=2):
        part = engine.generate(prompts[begin : begin + chunk],
                               SamplingParams(**{**params.__dict__, "seed": params.seed + begin}))
        for c in part:
            c.prompt_index += begin
        completions.extend(part)
    engine.close()
    frame = completions_to_frame(problems, prompts, completions, args.name, params)
    write_parquet(frame, args.out)
    write_provenance(Path(args.out).parent, config.section_hash("eval", "rollout", "data"), ec.seed,
                     model=args.name, model_path=str(args.model))
    print(f"rollout: {len(frame)} responses of {args.name} -> {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("rollout", help="sample a model's responses to the test problems")
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--name", required=True, help="model label in the tables (base, grpo-s1, ...)")
    parser.add_argument("--problems", required=True, help="test.parquet from `negrl prepare`")
    parser.add_argument("--out", required=True, help="rollouts Parquet to write")
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int, default=1)
    parser.set_defaults(func=run_rollout)
