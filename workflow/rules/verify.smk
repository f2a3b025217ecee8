rule verify:
    """Grade every evaluation response against the gold answer (sandboxed sympy verifier)."""
    input:
        rollouts=f"{R}/eval/{{model}}/rollouts.parquet",
        problems=rules.prepare_test.output[0],
        code=code("negrl/verify/*.py"),
    output:
        f"{R}/eval/{{model}}/verdicts.parquet",
    params:
        sections=sections("verify"),
        secondary="--secondary" if CFG.verify.secondary else "--no-secondary",
    log:
        f"{R}/logs/verify/{{model}}.log",
    threads: 1
    cache: True
    shell:
        "negrl verify --rollouts {input.rollouts} --problems {input.problems} --out {output} "
        "--workers {CFG.verify.workers} --timeout {CFG.verify.timeout} {params.secondary} > {log} 2>&1"
