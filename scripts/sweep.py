"""Hyper-parameter sweep of the RL stage: which settings make the policy beat its warm-started base?

Runs the pipeline's own stages (``negrl prepare``, ``base-model``, ``train``, ``rollout``, ``verify``,
``evaluate``) as parallel subprocesses for every (warm start, variant, method, seed) of a grid, then writes
``summary.csv`` / ``summary.md``: per level, each setting's accuracy minus its base's (paired bootstrap over
problems and seeds, `negrl.evaluate.stats`), the training wall time and the training reward trend. This is
how the CPU default (`config/config.yaml`) was chosen; docs/default-config.md has the sweep and its numbers.

    python scripts/sweep.py --base-config config/config.yaml --grid scripts/sweeps/default.yaml \\
        --out results/sweep --jobs 12 --device cuda

The grid file::

    warmstarts:            # name -> config overrides of the base model (model / warmstart sections)
      w1200: {}
      w600: {warmstart: {steps: 600}}
    variants:              # name -> config overrides of the RL run (train / rollout / method_options)
      b64_lr1e-4: {train: {prompts_per_step: 64, mini_batches: 1, lr: 1.0e-4}}
    methods: [grpo, lens]
    seeds: [1, 2]
    overrides: {train: {precision: fp32}}   # applied to every run (e.g. to mirror the CPU on a GPU)
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from negrl.evaluate.stats import paired_difference_interval


def merge(base: dict, override: dict) -> dict:
    """Deep merge: mappings merge key by key, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Runner:
    """Runs ``negrl`` stages as subprocesses, each with its log file; a finished output is never redone."""

    def __init__(self, out: Path, device: str | None, threads: int) -> None:
        self.out, self.device, self.threads = out, device, threads

    def stage(self, name: str, args: list[str], log: Path, done: Path, device: bool = True) -> None:
        if done.exists():
            return
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "negrl.cli", name, *args]
        if device and self.device:
            command += ["--device", self.device]
        with open(log, "w") as handle:
            result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}); see {log}")

    def write_config(self, path: Path, config: dict) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=True))
        return path

    def evaluate(self, config: Path, model: Path, name: str, problems: Path, folder: Path) -> Path:
        rollouts, verdicts = folder / "rollouts.parquet", folder / "verdicts.parquet"
        per_problem = folder / "per_problem.parquet"
        threads = ["--threads", str(self.threads)]
        self.stage("rollout", ["--config", str(config), "--model", str(model), "--name", name, "--problems",
                               str(problems), "--out", str(rollouts), *threads], folder / "rollout.log", rollouts)
        self.stage("verify", ["--rollouts", str(rollouts), "--problems", str(problems), "--out", str(verdicts),
                              "--workers", "1", "--no-secondary"], folder / "verify.log", verdicts, device=False)
        self.stage("evaluate", ["--rollouts", str(rollouts), "--verdicts", str(verdicts), "--per-problem",
                                str(per_problem), "--out", str(folder / "metrics.json")], folder / "evaluate.log",
                   per_problem, device=False)
        return per_problem


def level_matrix(per_problem: list[Path], level: int | None) -> np.ndarray:
    """[seeds, problems] accuracy matrix at one level (None: all levels), problems in a fixed order."""
    rows = []
    for path in per_problem:
        table = pd.read_parquet(path).sort_values("prompt_id")
        if level is not None:
            table = table[table["level"] == level]
        rows.append(table["accuracy"].to_numpy(float))
    return np.stack(rows)


def train_summary(metrics: Path) -> dict:
    frame = pd.read_json(metrics, lines=True)
    k = max(1, len(frame) // 5)
    return {"reward_first": frame["reward/mean"].head(k).mean(), "reward_last": frame["reward/mean"].tail(k).mean(),
            "train_s": frame["time/step"].sum(),
            "grad_half_cosine": frame["actor/grad_half_cosine"].mean() if "actor/grad_half_cosine" in frame
            else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-config", required=True)
    parser.add_argument("--grid", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", type=int, default=4, help="runs at a time")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: each stage's own default)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no new run starts (runs already started finish)")
    parser.add_argument("--summarize-only", action="store_true", help="only tabulate the runs already finished")
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.base_config).read_text())
    grid = yaml.safe_load(Path(args.grid).read_text())
    common = grid.get("overrides", {})
    out = Path(args.out)
    runner = Runner(out, args.device, args.threads)
    start = time.time()

    data_config = runner.write_config(out / "data" / "config.yaml", merge(base, common))
    train_table, test_table = out / "data" / "train.parquet", out / "data" / "test.parquet"
    runner.stage("prepare", ["--config", str(data_config), "--train-out", str(train_table), "--test-out",
                             str(test_table)], out / "data" / "prepare.log", test_table, device=False)

    def base_model(ws_name: str) -> Path:
        folder = out / ws_name
        config = runner.write_config(folder / "config.yaml", merge(merge(base, common), grid["warmstarts"][ws_name]))
        model = folder / "base" / "model"
        runner.stage("base-model", ["--config", str(config), "--train", str(train_table), "--out-dir", str(model),
                                    "--log-jsonl", str(folder / "base" / "warmstart.jsonl"), "--threads",
                                    str(args.threads)], folder / "base" / "base_model.log", model)
        runner.evaluate(config, model, "base", test_table, folder / "base")
        return model

    runs = [(ws, variant, method, seed) for ws in grid["warmstarts"] for variant in grid["variants"]
            for method in grid["methods"] for seed in grid["seeds"]]

    def rl_run(run: tuple) -> None:
        ws, variant, method, seed = run
        folder = out / ws / variant / f"{method}-s{seed}"
        if args.deadline is not None and time.time() - start > args.deadline:
            return
        settings = merge(merge(merge(base, common), grid["warmstarts"][ws]), grid["variants"][variant])
        config = runner.write_config(folder / "config.yaml", settings)
        model = folder / "model"
        runner.stage("train", ["--config", str(config), "--method", method, "--seed", str(seed), "--base-model",
                               str(out / ws / "base" / "model"), "--train", str(train_table), "--out-dir",
                               str(folder), "--threads", str(args.threads), "--no-resume"], folder / "train.log", model)
        runner.evaluate(config, model, f"{method}-s{seed}", test_table, folder)
        print(f"[{time.time() - start:6.0f} s] done {ws}/{variant}/{method}-s{seed}", flush=True)

    if not args.summarize_only:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(base_model, grid["warmstarts"]))
            print(f"[{time.time() - start:6.0f} s] base models done", flush=True)
            for future in [pool.submit(rl_run, run) for run in runs]:
                try:
                    future.result()
                except RuntimeError as exc:
                    print(f"FAILED: {exc}", flush=True)

    rows = []
    for ws in grid["warmstarts"]:
        base_table = [out / ws / "base" / "per_problem.parquet"]
        for variant in grid["variants"]:
            for method in grid["methods"]:
                folders = [out / ws / variant / f"{method}-s{seed}" for seed in grid["seeds"]]
                folders = [f for f in folders if (f / "per_problem.parquet").exists()]
                if not folders:
                    continue
                row = {"warmstart": ws, "variant": variant, "method": method, "seeds": len(folders)}
                for level in [None, 1, 2, 3, 4, 5]:
                    name = "all" if level is None else f"L{level}"
                    diff, low, high = paired_difference_interval(
                        level_matrix([f / "per_problem.parquet" for f in folders], level),
                        level_matrix(base_table, level), samples=2000, seed=0)
                    row[f"{name}"] = round(diff, 4)
                    row[f"{name}_ci"] = f"[{low:+.3f}, {high:+.3f}]"
                row["base_all"] = round(float(level_matrix(base_table, None).mean()), 4)
                trained = pd.DataFrame([train_summary(f / "metrics.jsonl") for f in folders]).mean()
                row.update({key: round(float(value), 4) for key, value in trained.items()})
                rows.append(row)
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary.to_markdown(index=False) if not summary.empty else "no runs\n")
    print(summary.to_string(index=False))
    print(json.dumps({"wall_s": round(time.time() - start, 1), "runs": len(runs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
