rule report:
    """Accuracy by level per method with confidence intervals, paired differences from base and from the
    reference method with their detectable difference: CSV, Markdown and plots."""
    input:
        per_problem=expand(f"{R}/eval/{{model}}/per_problem.parquet", model=MODELS),
        train_logs=expand(f"{R}/train/{{method}}/s{{seed}}/metrics.jsonl", method=METHODS, seed=SEEDS),
        code=code("negrl/report/*.py", "negrl/evaluate/stats.py"),
    output:
        csv=report(f"{R}/report/accuracy_by_level.csv", caption="../report/accuracy.rst", category="Results"),
        md=f"{R}/report/accuracy_by_level.md",
        by_seed=f"{R}/report/accuracy_by_seed.csv",
        vs_base=report(f"{R}/report/difference_vs_base.csv", caption="../report/differences.rst", category="Results"),
        vs_reference=report(
            f"{R}/report/difference_vs_{CFG.report.reference_method}.csv",
            caption="../report/differences.rst",
            category="Results",
        ),
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
