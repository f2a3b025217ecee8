def train_gpus(wildcards=None):
    """GPUs per training run: train.gpus, or 1 with a hub/local model and 0 (CPU) for the toy model."""
    if CFG.train.gpus is not None:
        return CFG.train.gpus
    return 1 if CFG.model.name_or_path else 0


rule train:
    """One online RL run: a method from `negrl methods`, one seed."""
    input:
        model=f"{R}/base/model",
        train=rules.prepare_train.output[0],
        code=code("negrl/train/*.py", "negrl/methods/*.py", "negrl/rollout/*.py", "negrl/verify/*.py"),
    output:
        model=directory(f"{R}/train/{{method}}/s{{seed}}/model"),
        metrics=f"{R}/train/{{method}}/s{{seed}}/metrics.jsonl",
    params:
        run=method_hash,
    log:
        f"{R}/logs/train/{{method}}-s{{seed}}.log",
    threads: 1
    resources:
        gpu=train_gpus,
    shell:
        # negrl launch picks free GPUs (or the scheduler's) and runs torchrun, one process per GPU, when
        # gpu > 1. --resume auto (default): a re-run after a crash continues from the last checkpoint
        "negrl launch --gpus {resources.gpu} --torchrun -- "
        "train --config {CONFIG_PATH} --method {wildcards.method} --seed {wildcards.seed} "
        "--base-model {input.model} --train {input.train} --out-dir {R}/train/{wildcards.method}/s{wildcards.seed} "
        "--threads {threads} > {log} 2>&1"
