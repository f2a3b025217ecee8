def train_gpus(wildcards=None):
    """GPUs per training run: train.gpus, or 1 with a hub/local model and 0 (CPU) for the toy model."""
    if CFG.train.gpus is not None:
        return CFG.train.gpus
    return 1 if CFG.model.name_or_path else 0


def train_launcher(wildcards=None):
    """`negrl` on one device; torchrun with one process per GPU (DDP or FSDP2, train.distributed) otherwise.
    Multi-node runs launch the same command under torchrun --nnodes (see README, "Scale")."""
    gpus = train_gpus()
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node {gpus} -m negrl.cli"
    return "negrl"


rule train:
    """One online RL run: a method from `negrl methods`, one seed."""
    input:
        model=f"{R}/base/model",
        train=f"{R}/data/problems.train.parquet",
        code=code("negrl/train/*.py", "negrl/methods/*.py", "negrl/rollout/*.py", "negrl/verify/*.py"),
    output:
        model=directory(f"{R}/train/{{method}}/s{{seed}}/model"),
        metrics=f"{R}/train/{{method}}/s{{seed}}/metrics.jsonl",
    params:
        run=method_hash,
        launcher=train_launcher,
    log:
        f"{R}/logs/train/{{method}}-s{{seed}}.log",
    threads: 1
    resources:
        gpu=train_gpus,
    shell:
        # --resume-compatible (default): a re-run after a crash continues from the last checkpoint
        "{params.launcher} train --config {CONFIG_PATH} --method {wildcards.method} --seed {wildcards.seed} "
        "--base-model {input.model} --train {input.train} --out-dir {R}/train/{wildcards.method}/s{wildcards.seed} "
        "--threads {threads} > {log} 2>&1"
