"""``negrl bench methods``: step time of every method on the same synthetic batch, side by side.

One step = the policy's token log-probs from a [B,T,V] logits tensor (log_softmax + gather, the part of
a real step every method shares), ``prepare`` (advantages, NTF, diagnostics), ``loss`` and ``backward``.
Methods run round-robin for ``--repeats`` rounds after ``--warmup`` rounds; the table reports the median
per method and its ratio to ``grpo``. The ``method-only`` columns time prepare + loss + backward on a leaf
``logp`` tensor without the logits, i.e. the method's own overhead.

    negrl bench methods                                   # B 128, T 256, V 1024, G 16
    negrl bench methods --vocab 4096 --repeats 10 --methods grpo,lens,nft
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from negrl.methods import RolloutBatch, available_methods, get_method

# Extra rows: (label, method, options) for notable compositions.
EXTRA_ROWS = [("reinforce_pp+ntf", "reinforce_pp", {"ntf_keep": 0.1}), ("grpo+ntf", "grpo", {"ntf_keep": 0.1})]


def synthetic_batch(batch: int, length: int, vocab: int, group_size: int, seed: int = 0, dtype=torch.float32):
    """Logits leaf [B,T,V], sampled tokens, and a RolloutBatch with slightly stale old log-probs."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen, dtype=dtype).requires_grad_(True)
    tokens = torch.randint(0, vocab, (batch, length, 1), generator=gen)
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=gen)
    mask = torch.arange(length)[None, :] < lengths[:, None]
    uid = torch.arange(batch) // group_size
    p_correct = torch.rand(batch // group_size + 1, generator=gen)[uid] * 0.8  # some all-wrong groups
    rewards = (torch.rand(batch, generator=gen) < p_correct).to(dtype)
    with torch.no_grad():
        stale = logits + 0.05 * torch.randn(logits.shape, generator=gen, dtype=dtype)
        old_logp = torch.log_softmax(stale, -1).gather(-1, tokens)[..., 0] * mask
    rollout = RolloutBatch(old_logp=old_logp, mask=mask, rewards=rewards, uid=uid,
                           truncated=lengths == length)
    return logits, tokens, rollout


def _step(method, logits, tokens, rollout) -> None:
    logp = torch.log_softmax(logits, -1).gather(-1, tokens)[..., 0]
    prep = method.prepare(rollout)
    loss, _ = method.loss(rollout.with_logp(logp), prep)
    loss.backward()
    logits.grad = None


def _method_only(method, logp_base, rollout) -> None:
    logp = logp_base.clone().requires_grad_(True)
    prep = method.prepare(rollout)
    loss, _ = method.loss(rollout.with_logp(logp), prep)
    loss.backward()


def run_benchmark(batch=128, length=256, vocab=1024, group_size=16, repeats=5, warmup=1, methods=None, seed=0):
    """Rows of {label, step_ms, ratio, method_ms, method_ratio} (medians over repeats)."""
    names = methods or available_methods()
    rows = [(n, n, {}) for n in names] + [r for r in EXTRA_ROWS if methods is None]
    built = [(label, get_method(name, max_response_length=length, dynamic_sampling=False, **opts))
             for label, name, opts in rows]
    logits, tokens, rollout = synthetic_batch(batch, length, vocab, group_size, seed)
    with torch.no_grad():
        logp_base = torch.log_softmax(logits, -1).gather(-1, tokens)[..., 0]
    step_times = {label: [] for label, _ in built}
    method_times = {label: [] for label, _ in built}
    for round_index in range(warmup + repeats):
        for label, method in built:
            start = time.perf_counter()
            _step(method, logits, tokens, rollout)
            middle = time.perf_counter()
            _method_only(method, logp_base, rollout)
            end = time.perf_counter()
            if round_index >= warmup:
                step_times[label].append(middle - start)
                method_times[label].append(end - middle)
    base_step = statistics.median(step_times.get("grpo") or next(iter(step_times.values())))
    base_method = statistics.median(method_times.get("grpo") or next(iter(method_times.values())))
    out = []
    for label, _ in built:
        step_ms, method_ms = statistics.median(step_times[label]), statistics.median(method_times[label])
        out.append({"label": label, "step_ms": 1e3 * step_ms, "ratio": step_ms / base_step,
                    "method_ms": 1e3 * method_ms, "method_ratio": method_ms / base_method})
    return out


def format_rows(rows) -> str:
    lines = [f"{'method':<24}{'step ms':>10}{'vs grpo':>9}{'method-only ms':>16}{'vs grpo':>9}", "-" * 68]
    for r in rows:
        lines.append(f"{r['label']:<24}{r['step_ms']:>10.1f}{r['ratio']:>9.3f}{r['method_ms']:>16.2f}"
                     f"{r['method_ratio']:>9.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = args.methods.split(",") if args.methods else None
    rows = run_benchmark(args.batch, args.length, args.vocab, args.group_size, args.repeats, args.warmup, methods,
                         args.seed)
    print(f"# B={args.batch} T={args.length} V={args.vocab} G={args.group_size}, median of {args.repeats} "
          f"(threads {torch.get_num_threads()}); step = log_softmax+gather, prepare, loss, backward")
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def register(bench_subparsers) -> None:
    parser = bench_subparsers.add_parser("methods", help="step time of every method on one synthetic batch")
    parser.add_argument("--batch", type=int, default=128, help="responses B")
    parser.add_argument("--length", type=int, default=256, help="padded response length T")
    parser.add_argument("--vocab", type=int, default=1024, help="vocabulary V of the synthetic logits")
    parser.add_argument("--group-size", type=int, default=16, help="responses per prompt G")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--methods", default=None, help="comma-separated subset (default: all, plus +ntf rows)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.set_defaults(func=run)
