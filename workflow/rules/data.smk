rule prepare:
    """Train and test problem tables of the configured task (synthetic arithmetic or MATH)."""
    input:
        code=code("negrl/data/*.py"),
    output:
        multiext(f"{R}/data/problems", ".train.parquet", ".test.parquet"),
    params:
        sections=sections("data"),
    log:
        f"{R}/logs/prepare.log",
    cache: True
    shell:
        "negrl prepare --config {CONFIG_PATH} --train-out {output[0]} --test-out {output[1]} > {log} 2>&1"


rule base_model:
    """The starting policy: a hub/local model, or the toy model built and warm-started on worked solutions."""
    input:
        train=f"{R}/data/problems.train.parquet",
        code=code("negrl/models.py", "negrl/models_cli.py", "negrl/train/sft.py", "negrl/train/logprobs.py"),
    output:
        directory(f"{R}/base/model"),
    params:
        sections=sections("model", "warmstart", "data"),
    log:
        f"{R}/logs/base_model.log",
    # Snakemake caps a local job's threads at --cores (2 on the CPU default); cluster jobs ask for 8 CPUs.
    # (workflow.cores would stop `snakemake -n` and the cluster profiles, which set no --cores.)
    threads: 8
    shell:
        "negrl base-model --config {CONFIG_PATH} --train {input.train} --out-dir {output} "
        "--log-jsonl {R}/base/warmstart.jsonl --threads {threads} > {log} 2>&1"
