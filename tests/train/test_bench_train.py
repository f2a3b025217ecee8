"""``negrl bench train`` on the CPU: the FLOP count, the result keys and the profiler table."""

import argparse
import json

from negrl.bench import train as bench_train


def test_model_flops_counts_layers_head_and_causal_attention():
    shape = dict(hidden=8, layers=2, heads=2, kv_heads=1, intermediate=16, vocab=10, tie=True)
    # per layer: q, o 8x8 + k, v 8x4 + 3 MLP matrices 8x16 = 576 weights; 5 tokens, 2 of them response
    # 6*2*576*5 (layers) + 6*10*8*2 (output layer, response only) + 6*2*2*4*5^2 (attention) = 37,920
    assert bench_train.model_flops(shape, [3], [2]) == 37_920.0
    assert bench_train.model_flops(shape, [3, 3], [2, 2]) == 2 * 37_920.0


def test_bench_train_runs_the_trainer_step_and_writes_a_profile(tmp_path):
    parser = argparse.ArgumentParser()
    bench_train.register(parser.add_subparsers())
    out, profile = tmp_path / "bench.json", tmp_path / "profile.txt"
    args = parser.parse_args(["train", "--shape", "toy", "--batch", "8", "--micro-batch", "4", "--prompt-len", "8",
                              "--response-len", "16", "--steps", "1", "--device", "cpu", "--group-size", "4",
                              "--profile", str(profile), "--out", str(out)])
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert result["world_size"] == 1 and result["strategy"] == "ddp" and result["fused_head"] is False
    assert result["tokens_per_s"] == 8 * 24 / result["step_s"]
    assert result["model_tflops_per_step"] * 1e12 == bench_train.model_flops(
        bench_train.SHAPES["toy"], [8] * 8, [16] * 8)
    assert result["mfu"] is None  # no measured peak on the CPU
    table = profile.read_text()
    assert "aten::mm" in table and "Self CPU" in table
