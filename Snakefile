# negrl: the whole benchmark as one cached pipeline.
#   snakemake --cores 2                       # the embedded CPU default (config/config.yaml)
#   snakemake -n                              # list the plan without running anything
#   snakemake --cores 2 --configfile config/ci.yaml
#   snakemake --profile workflow/profiles/slurm --configfile config/gpu/qwen2.5-math-1.5b.yaml
import os
import sys

from snakemake.utils import min_version, validate

# Reproducible CPU numerics: MKL picks its kernels by instruction set (AVX2 on AMD, AVX-512 on recent Intel)
# and, by default, fewer threads when the machine is busy; either rounds differently, and over a 1,200-step
# warm start a last-digit difference grows into a different base model (seen: two runs of the default agreed
# bitwise for 482 steps, then diverged while other processes loaded the cores). The jobs use MKL's
# conditional numerical reproducibility on the AVX2 path with a fixed thread count (same speed and same
# results as the defaults on the AMD development machine); export MKL_CBWR / MKL_DYNAMIC to choose otherwise.
os.environ.setdefault("MKL_CBWR", "AVX2,STRICT")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

min_version("9.0")


configfile: "config/config.yaml"


sys.path.insert(0, workflow.basedir)
from negrl.config import from_dict, retype_command_line  # noqa: E402
from negrl.errors import ConfigError  # noqa: E402
from negrl.methods.from_config import check_methods  # noqa: E402

# --config values come as strings ('50'); read them as the typed config expects (numbers, lists, booleans)
config.update(retype_command_line(config))
try:  # the same checks `negrl check-config` runs, so a bad key or method option stops here with one line
    check_methods(from_dict(config, source="config"))
except ConfigError as exc:
    sys.exit(f"negrl: error: {exc}")
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/rollout.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
    default_target: True
