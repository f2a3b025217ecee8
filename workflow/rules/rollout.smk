def model_dir(wildcards):
    if wildcards.model == "base":
        return f"{R}/base/model"
    method, seed = wildcards.model.rsplit("-s", 1)
    return f"{R}/train/{method}/s{seed}/model"


rule rollout:
    """Evaluation rollouts of one model (base or <method>-s<seed>) on the test problems."""
    input:
        model=model_dir,
        problems=rules.prepare_test.output[0],
        code=code("negrl/rollout/*.py"),
    output:
        f"{R}/eval/{{model}}/rollouts.parquet",
    params:
        sections=sections("eval", "rollout", "data", ignore=TRAIN_SPLIT_KEYS),
    log:
        f"{R}/logs/rollout/{{model}}.log",
    threads: 1
    resources:
        gpu=lambda wildcards: CFG.rollout.tensor_parallel_size if CFG.model.name_or_path else 0,
    cache: True
    shell:
        "negrl launch --gpus {resources.gpu} -- "
        "rollout --config {CONFIG_PATH} --model {input.model} --name {wildcards.model} "
        "--problems {input.problems} --out {output} --threads {threads} > {log} 2>&1"
