rule evaluate:
    """Per-problem accuracy and metrics.json (by level, by subject, mean@k, pass@k) of one model."""
    input:
        rollouts=f"{R}/eval/{{model}}/rollouts.parquet",
        verdicts=f"{R}/eval/{{model}}/verdicts.parquet",
        code=code("negrl/evaluate/metrics.py", "negrl/evaluate/cli.py"),
    output:
        per_problem=f"{R}/eval/{{model}}/per_problem.parquet",
        metrics=f"{R}/eval/{{model}}/metrics.json",
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    shell:
        "negrl evaluate --rollouts {input.rollouts} --verdicts {input.verdicts} "
        "--per-problem {output.per_problem} --out {output.metrics} > {log} 2>&1"
