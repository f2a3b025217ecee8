"""End to end: the Snakemake pipeline on the micro CI config, then its caching behaviour."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config" / "ci.yaml"), "--cores", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of the workflow files (the package itself is imported from the repository)."""
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    for folder in ("workflow", "config", "negrl"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_dry_run_lists_the_plan_without_running(workdir):
    result = snakemake(workdir, "-n")
    text = result.stdout + result.stderr
    for rule in ("prepare", "base_model", "train", "rollout", "verify", "evaluate", "report"):
        assert rule in text
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("override, expected", [
    ("train={steps: 50, lr: 1e-4}", "train/grpo/s1"),   # numbers inside a --config mapping (were strings)
    ("methods=[grpo]", "train/grpo/s1"),                # config file's lens options do not leak in
    ("seeds=[7]", "train/grpo/s7"),
])
def test_config_overrides_are_read_as_yaml(workdir, override, expected):
    result = snakemake(workdir, "-n", "--config", override)
    assert expected in result.stdout + result.stderr


@pytest.mark.parametrize("override, message", [
    ("method_options={lens: {alfa: 0.5}}", "alfa"),
    ("method_options={lenz: {alpha: 0.5}}", "unknown method 'lenz'"),
    ("train={steps: many}", "train.steps"),
])
def test_bad_override_stops_the_dry_run_with_one_line(workdir, override, message):
    result = snakemake(workdir, "-n", "--config", override, check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("negrl: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert not (workdir / "results").exists()


def test_slurm_profile_dry_run_plans_gpu_jobs_on_gpus_only(workdir):
    """The Slurm profile with the real executor plugin: the plan builds without --cores, and the GPU
    resource and partition reach only the train and rollout jobs (the plugin maps `gpu` to --gpus)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"), "--directory",
           str(workdir), "--profile", str(workdir / "workflow" / "profiles" / "slurm"), "-n",
           "--configfile", str(workdir / "config" / "gpu" / "qwen2.5-math-1.5b.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    resources: dict[str, set[str]] = {}
    rule = None
    for line in text.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule:
            resources.setdefault(rule, set()).add(line.strip())
    assert {"prepare_train", "prepare_test", "base_model", "train", "rollout", "verify", "evaluate",
            "report"} <= set(resources)
    for name, lines in resources.items():
        gpu_job = name in ("train", "rollout")
        for line in lines:
            assert ("slurm_partition=gpu" in line) == gpu_job, (name, line)
            assert (" gpu=" in line) == gpu_job, (name, line)
            assert "slurm_extra" not in line  # the plugin rejects --gpus there; it sets it from `gpu`
    assert any("gpu=2" in line for line in resources["train"])  # train.gpus of the Qwen config
    assert not (workdir / "results").exists()


@pytest.mark.slow
def test_full_pipeline_then_report_only_rerun(workdir):
    snakemake(workdir)
    report = workdir / "results" / "ci" / "report"
    table = pd.read_csv(report / "accuracy_by_level.csv")
    assert list(table.columns) == ["method", "level", "accuracy", "ci_low", "ci_high", "n_problems", "n_seeds"]
    assert set(table["method"]) == {"base", "grpo", "lens"}
    assert set(table["level"].astype(str)) == {"1", "2", "3", "4", "5", "all"}
    assert (table.loc[table["method"] != "base", "n_seeds"] == 2).all()
    assert ((table["ci_low"] <= table["accuracy"]) & (table["accuracy"] <= table["ci_high"])).all()
    assert (report / "accuracy_by_level.png").stat().st_size > 10_000
    assert "| grpo (n=2) |" in (report / "accuracy_by_level.md").read_text()
    log = pd.read_json(workdir / "results" / "ci" / "train" / "lens" / "s1" / "metrics.jsonl", lines=True)
    assert len(log) == 3 and {"batch/frac_all_wrong_groups", "actor/grad_norm", "reward/mean"} <= set(log.columns)
    for sub in ("data", "train/grpo/s1", "eval/base"):
        assert (workdir / "results" / "ci" / sub / "provenance.json").exists()

    # nothing to do when nothing changed, nor when only throughput settings change
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(workdir, "-n"))
    throughput = snakemake(workdir, "-n", "--config", "verify={workers: 2}",
                           "train={checkpoint_every: 1, micro_batch_size: 2}", "rollout={max_batch_size: 7}")
    assert "Nothing to be done" in throughput.stdout + throughput.stderr
    # a test-split setting re-runs the evaluation side only: no warm start, no training
    test_only = snakemake(workdir, "-n", "--quiet", "rules", "--config", "data={arith: {test_per_level: 3}}")
    planned = {line.split()[0] for line in (test_only.stdout + test_only.stderr).splitlines()
               if len(line.split()) == 2 and line.split()[1].isdigit()}  # the job-stats table
    assert {"prepare_test", "rollout", "verify", "evaluate", "report"} <= planned, planned
    assert not planned & {"prepare_train", "base_model", "train"}, planned
    # editing only report code re-runs only the report rule
    plots = workdir / "negrl" / "report" / "plots.py"
    time.sleep(1.1)
    plots.write_text(plots.read_text() + "\n# touched\n")
    dry = snakemake(workdir, "-n", "--quiet", "rules")
    text = dry.stdout + dry.stderr
    assert "report" in text
    for rule in ("prepare", "base_model", "train", "rollout", "verify", "evaluate"):
        assert f"\n{rule} " not in text and f"{rule}  " not in text.replace("report", "")
