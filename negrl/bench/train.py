"""``negrl bench train``: throughput and model FLOPs utilisation (MFU) of a training step, and optionally a
short run of the full online loop, on a randomly initialised model of a given shape (no downloads).

Training step: the trainer's own code path (``PolicyUpdater``: length-sorted micro-batches, chunked
log-probs, the method's loss, backward, grad clipping, AdamW) on ``--batch`` sequences of ``--prompt-len``
+ ``--response-len`` random tokens, one optimizer update per step (with the half-batch gradient cosine of
``negrl.train.grad_noise`` on every ``--grad-noise-check-every``-th, as the trainer by default: every one);
fp32 master weights and gradients with bf16 compute on GPU (``--strategy fsdp``: bf16 parameters under
FSDP2; ``ddp``: autocast). Model FLOPs per step (no recomputation counted):

    6 * N_layers_params * all tokens  +  6 * V * H * response tokens (the output projection runs only there)
    +  6 * layers * heads * head_dim * sum_i len_i^2   (causal attention, forward + backward)

MFU = model FLOPs / step time / peak, the peak being the bf16 matmul throughput measured in the same run
(``--peak-tflops`` overrides it). Under ``torchrun`` (one GPU per process) ``--batch`` is the global batch,
split by whole groups over the ranks like the trainer does, and MFU is per GPU (peak x world size).

``--online-steps K`` then runs K steps of ``negrl.train.loop`` (rollout with the hf engine, verification,
old log-probs, the updates) on arithmetic prompts with the toy character tokenizer (the model's embedding
is larger than the tokenizer; a random model's answers are wrong, so use a method with signal on all-wrong
groups, e.g. lens) and reports the per-phase time of each step and the peak GPU memory.

    negrl bench train --shape qwen2.5-0.5b --batch 32 --micro-batch 32 --compile --out bench_train.json
    torchrun --nproc-per-node 2 -m negrl.cli bench train --shape qwen2.5-0.5b --batch 64 --micro-batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from negrl.bench.rollout import SHAPES


def register(bench_subparsers: Any) -> None:
    p = bench_subparsers.add_parser("train", help="tokens/s and MFU of a training step (random model)")
    p.add_argument("--shape", choices=sorted(SHAPES), default="toy", help="preset model shape")
    p.add_argument("--vocab", type=int, default=None, help="override the shape's vocabulary size")
    p.add_argument("--batch", type=int, default=16, help="sequences per optimizer update")
    p.add_argument("--micro-batch", type=int, default=8, help="sequences per forward/backward")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--response-len", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3, help="timed optimizer updates (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--method", default="lens")
    p.add_argument("--group-size", type=int, default=8, help="responses per prompt uid (the method's groups)")
    p.add_argument("--chunk-tokens", type=int, default=2048, help="train.logprob_chunk_tokens")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--compile", action="store_true", help="train.compile: torch.compile the decoder blocks")
    p.add_argument("--no-fused-head", action="store_true",
                   help="use the torch path for the output layer's log-softmax instead of the fused Triton kernels")
    p.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp",
                   help="train.distributed: ddp = DDP (a plain module in one process) + bf16 autocast; fsdp = "
                        "FSDP2 with bf16 parameters over fp32 master weights")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (default: measured bf16 matmul)")
    p.add_argument("--online-steps", type=int, default=0, help="also run this many steps of the online loop")
    p.add_argument("--online-prompts", type=int, default=16, help="online loop: prompts per step")
    p.add_argument("--online-n", type=int, default=8, help="online loop: responses per prompt")
    p.add_argument("--online-mini-batches", type=int, default=4, help="online loop: optimizer updates per step")
    p.add_argument("--profile", default=None, metavar="FILE",
                   help="profile one more training step with torch.profiler; write its per-kernel table here")
    p.add_argument("--grad-noise-check-every", type=int, default=1, metavar="K",
                   help="train.grad_noise_check_every: measure the half-batch gradient cosine on every K-th "
                        "update (the trainer: every K-th rollout step); 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    result = run(args)
    if result.get("rank", 0):  # under torchrun, rank 0 reports
        return 0
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def build_model(shape: dict, device: torch.device, seed: int = 0, *, bos: int = 1, eos: int = 2, pad: int = 0):
    """A random fp32 Llama-architecture causal LM of ``shape`` (Qwen2.5 shapes without the q/k/v biases,
    so it reloads with the toy tokenizer and the hf engine's native decoder runs it), built on ``device``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
        intermediate_size=shape["intermediate"], tie_word_embeddings=shape["tie"], max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
        attention_bias=False, mlp_bias=False, head_dim=shape["hidden"] // shape["heads"],
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = eos, pad
    return model.eval()


def model_flops(shape: dict, prompt_lens: list[int], response_lens: list[int]) -> float:
    """Forward + backward model FLOPs of one pass over these sequences (see the module docstring)."""
    hidden, layers, heads, kv = shape["hidden"], shape["layers"], shape["heads"], shape["kv_heads"]
    head_dim = hidden // heads
    per_layer = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2 + 3 * hidden * shape["intermediate"]
    lengths = [p + r for p, r in zip(prompt_lens, response_lens)]
    dense = 6 * layers * per_layer * sum(lengths) + 6 * shape["vocab"] * hidden * sum(response_lens)
    attention = 6 * layers * heads * head_dim * sum(n * n for n in lengths)
    return float(dense + attention)


def matmul_peak_tflops(device: torch.device, size: int = 8192, iters: int = 30) -> float | None:
    """Measured dense bf16 matmul throughput (the MFU denominator); None on CPU."""
    if device.type != "cuda":
        return None
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize(device)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iters):
            a @ b
        torch.cuda.synchronize(device)
        best = max(best, 2 * size**3 * iters / (time.perf_counter() - start) / 1e12)
    del a, b
    torch.cuda.empty_cache()
    return best


def bench_step(args: argparse.Namespace, shape: dict, device: torch.device) -> dict[str, Any]:
    from negrl.methods import RolloutBatch, get_method
    from negrl.train.distributed import compile_decoder_layers, init_distributed, wrap_policy
    from negrl.train.logprobs import TokenLogprobs, pack_sequences
    from negrl.train.loop import compute_dtype
    from negrl.train.update import PolicyUpdater, UpdateSettings, rollout_logprobs, synchronize

    from negrl.train import fused_head

    fused_head.set_enabled(not args.no_fused_head)
    # a process group under torchrun, or of one for FSDP in one process; else a plain single-process context
    ctx, device = init_distributed(str(device), need_group=args.strategy == "fsdp")
    model = build_model(shape, device, args.seed)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    if args.compile:
        compile_decoder_layers(model)
    policy = TokenLogprobs(model, args.chunk_tokens)
    precision = compute_dtype("auto", device)
    policy = wrap_policy(policy, ctx, args.strategy, device, precision if args.strategy == "fsdp" else None)
    fused = {"fused": True} if device.type == "cuda" and args.strategy == "ddp" else {}
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6, **fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    settings = UpdateSettings(temperature=1.0, micro_batch_size=args.micro_batch, micro_batch_tokens=None,
                              grad_clip=1.0, mini_batches=1, ppo_epochs=1,
                              autocast_dtype=None if args.strategy == "fsdp" else precision,
                              sync_every_micro_batch=args.strategy == "fsdp" and precision is not None)
    gen = torch.Generator().manual_seed(args.seed)
    prompts = torch.randint(3, shape["vocab"], (args.batch, args.prompt_len), generator=gen).tolist()
    responses = torch.randint(3, shape["vocab"], (args.batch, args.response_len), generator=gen).tolist()
    seqs = pack_sequences(prompts, responses, pad_id=0)
    old_logp = rollout_logprobs(policy, seqs, settings, ctx, device, torch.float32)
    method = get_method(args.method, max_response_length=args.response_len)
    batch = RolloutBatch(
        old_logp=old_logp, mask=seqs.response_mask.to(device),
        rewards=torch.randint(0, 2, (args.batch,), generator=gen).float().to(device),
        uid=(torch.arange(args.batch) // args.group_size).to(device),
        truncated=torch.zeros(args.batch, dtype=torch.bool, device=device))
    prep = method.prepare(batch)
    updater = PolicyUpdater(policy, optimizer, scheduler, method, settings, ctx, device)
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for k in range(args.warmup + args.steps):
        start = synchronize(device)
        every = args.grad_noise_check_every
        updater.update(batch, seqs, prep, [k], grad_noise=bool(every) and k % every == 0)
        elapsed = synchronize(device) - start
        if k >= args.warmup:
            times.append(elapsed)
    step_s = statistics.median(times)
    start = synchronize(device)  # old log-probs (no grad), timed after the warm-up and any compilation
    rollout_logprobs(policy, seqs, settings, ctx, device, torch.float32)
    logprob_s = synchronize(device) - start
    if args.profile:
        profile_step(lambda: updater.update(batch, seqs, prep, [0], grad_noise=args.grad_noise_check_every > 0),
                     device, Path(args.profile))
    tokens = args.batch * (args.prompt_len + args.response_len)
    flops = model_flops(shape, [args.prompt_len] * args.batch, [args.response_len] * args.batch)
    peak = args.peak_tflops or matmul_peak_tflops(device)
    achieved = flops / step_s / 1e12 / ctx.world_size  # per GPU
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "rank": ctx.rank, "world_size": ctx.world_size,
        "shape": shape, "params": sum(p.numel() for p in model.parameters()),  # DTensor: the global numel
        "batch": args.batch, "micro_batch": args.micro_batch, "prompt_len": args.prompt_len,
        "response_len": args.response_len, "chunk_tokens": args.chunk_tokens, "method": args.method,
        "grad_noise_check_every": args.grad_noise_check_every,
        "gradient_checkpointing": args.gradient_checkpointing, "strategy": args.strategy, "compile": args.compile,
        "fused_head": fused_head.usable(device, torch.float32),
        "step_s": step_s, "step_s_all": times, "tokens_per_s": tokens / step_s,
        "response_tokens_per_s": args.batch * args.response_len / step_s,
        "model_tflops_per_step": flops / 1e12, "achieved_tflops": achieved,
        "peak_tflops": peak, "mfu": achieved / peak if peak else None,
        "old_logprob_tokens_per_s": tokens / logprob_s,
        "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "profile": args.profile,
    }
    del updater, optimizer, policy, model, batch, prep, old_logp
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def profile_step(step, device: torch.device, out: Path, rows: int = 45) -> None:
    """Run ``step`` once under torch.profiler and write the kernels that took the most device time (self
    time, so nested operators are not counted twice) as a table to ``out``."""
    from torch.profiler import ProfilerActivity, profile

    from negrl.train.update import synchronize

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=70)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(table + "\n")
    tmp.replace(out)


def online_run(args: argparse.Namespace, shape: dict, device: torch.device, peak: float | None) -> dict[str, Any]:
    from negrl.config import from_dict
    from negrl.data.arith import generate_split
    from negrl.models import build_toy_tokenizer
    from negrl.train.loop import train

    tokenizer = build_toy_tokenizer()
    work = Path(tempfile.mkdtemp(prefix="negrl-bench-train-"))
    model = build_model(shape, device, args.seed, bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id,
                        pad=tokenizer.pad_token_id)
    model.to(torch.bfloat16).save_pretrained(work / "base")  # loaded back as fp32 master weights
    tokenizer.save_pretrained(work / "base")
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    config = from_dict({
        "methods": [args.method],
        "rollout": {"max_tokens": args.response_len, "temperature": 1.0, "max_batch_size": 512},
        "train": {"steps": args.online_steps, "prompts_per_step": args.online_prompts, "n": args.online_n,
                  "mini_batches": args.online_mini_batches, "micro_batch_size": args.micro_batch, "lr": 1.0e-6,
                  "checkpoint_every": 0, "logprob_chunk_tokens": args.chunk_tokens,
                  "gradient_checkpointing": args.gradient_checkpointing, "distributed": args.strategy,
                  "compile": args.compile, "grad_noise_check_every": args.grad_noise_check_every},
        "verify": {"workers": 4},
    })
    problems = generate_split("train", max(args.online_prompts, 8), seed=0)
    start = time.perf_counter()
    train(config, args.method, 1, work / "base", problems, work / "run", device=str(device), show_progress=False)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    phases = ("time/rollout", "time/verify", "time/old_logprob", "time/update", "time/sync", "time/step")
    steps = [{k.split("/", 1)[1]: round(r.get(k, 0.0), 3) for k in phases} for r in rows]
    for out, r in zip(steps, rows):
        out["update_tokens_per_s"] = round(r.get("time/update_tokens_per_s", 0.0))
        out["resp_len_mean"] = r.get("batch/resp_len_mean")
        out["reward_mean"] = r.get("reward/mean")
        out["optimizer_steps"] = r.get("step/optimizer")
        out["grad_norm"] = r.get("actor/grad_norm")
        out["max_memory_gib"] = r.get("perf/max_memory_gib")
    # update-phase MFU, from the tokens/s and the per-token FLOPs at the step's mean lengths
    prompt_len = statistics.mean(len(tokenizer(p["problem"])["input_ids"]) for p in problems) + 20
    for out in steps:
        resp = out["resp_len_mean"] or args.response_len
        per_token = model_flops(shape, [int(prompt_len)], [int(resp)]) / (prompt_len + resp)
        out["update_mfu_approx"] = (out["update_tokens_per_s"] * per_token / 1e12 / peak) if peak else None
    return {"online_steps": steps, "online_wall_s": wall, "online_config": {
        "prompts_per_step": args.online_prompts, "n": args.online_n, "mini_batches": args.online_mini_batches,
        "micro_batch_size": args.micro_batch, "max_tokens": args.response_len, "method": args.method}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = _device(args.device)
    shape = dict(SHAPES[args.shape])
    if args.vocab:
        shape["vocab"] = args.vocab
    if args.online_steps and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("negrl bench train: --online-steps runs in one process (the loop itself runs under "
                         "torchrun through `negrl train`)")
    result = bench_step(args, shape, device)
    if args.online_steps:
        result.update(online_run(args, shape, device, result["peak_tflops"]))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result
