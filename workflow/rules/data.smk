rule prepare_train:
    """Training problems of the configured task (synthetic arithmetic or MATH)."""
    input:
        code=code("negrl/data/*.py"),
    output:
        f"{R}/data/problems.train.parquet",
    params:
        sections=sections("data", ignore=TEST_SPLIT_KEYS),
    log:
        f"{R}/logs/prepare_train.log",
    cache: True
    shell:
        "negrl prepare --config {CONFIG_PATH} --train-out {output} > {log} 2>&1"


rule prepare_test:
    """Test problems (a rule of its own: test-only settings never re-run the warm start or training)."""
    input:
        code=code("negrl/data/*.py"),
    output:
        f"{R}/data/problems.test.parquet",
    params:
        sections=sections("data", ignore=TRAIN_SPLIT_KEYS),
    log:
        f"{R}/logs/prepare_test.log",
    cache: True
    shell:
        "negrl prepare --config {CONFIG_PATH} --test-out {output} > {log} 2>&1"


rule base_model:
    """The starting policy: a hub/local model, or the toy model built and warm-started on worked solutions."""
    input:
        train=rules.prepare_train.output[0],
        code=code("negrl/models.py", "negrl/models_cli.py", "negrl/train/sft.py", "negrl/train/logprobs.py"),
    output:
        directory(f"{R}/base/model"),
    params:
        sections=sections("model", "warmstart", "data", ignore=TEST_SPLIT_KEYS),
    log:
        f"{R}/logs/base_model.log",
    # Snakemake caps a local job's threads at --cores (2 on the CPU default); cluster jobs ask for 8 CPUs.
    # (workflow.cores would stop `snakemake -n` and the cluster profiles, which set no --cores.)
    threads: 8
    shell:
        "negrl base-model --config {CONFIG_PATH} --train {input.train} --out-dir {output} "
        "--log-jsonl {R}/base/warmstart.jsonl --threads {threads} > {log} 2>&1"
