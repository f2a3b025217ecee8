rule report:
    """Accuracy by level per method with confidence intervals: CSV, Markdown and plots."""
    input:
        per_problem=expand(f"{R}/eval/{{model}}/per_problem.parquet", model=MODELS),
        train_logs=expand(f"{R}/train/{{method}}/s{{seed}}/metrics.jsonl", method=METHODS, seed=SEEDS),
        code=code("negrl/report/*.py", "negrl/evaluate/stats.py"),
    output:
        csv=report(f"{R}/report/accuracy_by_level.csv", caption="../report/accuracy.rst", category="Results"),
        md=f"{R}/report/accuracy_by_level.md",
        png=report(f"{R}/report/accuracy_by_level.png", caption="../report/accuracy.rst", category="Results"),
        curves=report(f"{R}/report/training_curves.png", caption="../report/training.rst", category="Training"),
    params:
        sections=sections("report"),
        per_problem=lambda wildcards, input: " ".join(
            f"--per-problem {m}={p}" for m, p in zip(MODELS, input.per_problem)
        ),
        train_logs=lambda wildcards, input: " ".join(
            f"--train-log {m}-s{s}={p}"
            for (m, s), p in zip([(m, s) for m in METHODS for s in SEEDS], input.train_logs)
        ),
    log:
        f"{R}/logs/report.log",
    shell:
        "negrl report --config {CONFIG_PATH} {params.per_problem} {params.train_logs} "
        "--out-dir {R}/report > {log} 2>&1"
