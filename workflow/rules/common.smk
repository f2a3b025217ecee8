# Shared definitions: result paths, the effective config handed to every `negrl` stage, and the
# per-rule parameter hashes that decide when a stage is stale.
import hashlib
import sys
from pathlib import Path

import yaml

sys.path.insert(0, workflow.basedir)
from negrl.config import TEST_SPLIT_KEYS, THROUGHPUT_KEYS, TRAIN_SPLIT_KEYS, from_dict  # noqa: E402

CFG = from_dict(config, source="snakemake config")
EXP = CFG.experiment
R = f"results/{EXP}"
METHODS = CFG.methods
SEEDS = CFG.seeds
MODELS = ["base"] + [f"{m}-s{s}" for m in METHODS for s in SEEDS]


def _write_effective_config() -> str:
    """The config exactly as Snakemake sees it (file + --config overrides), for the CLI stages.
    Content-addressed under .snakemake/ (Snakemake's own folder), so a dry run writes nothing under
    results/ and the file is never an input that would by itself re-run stages."""
    text = yaml.safe_dump(config, sort_keys=True)
    path = Path(".snakemake") / "negrl-config" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


CONFIG_PATH = _write_effective_config()


def sections(*names, ignore=()):
    """Hash of the config sections a rule depends on (a `params:` entry: it changes -> the rule re-runs).
    Throughput-only keys (workers, batch sizes, checkpoint frequency, logging) never count."""
    return CFG.section_hash(*names, ignore=THROUGHPUT_KEYS + tuple(ignore))


def method_hash(wildcards):
    return sections("rollout", "train", "verify") + str(CFG.method_options.get(wildcards.method, {}))


def code(*patterns):
    """The package files a rule runs: editing them re-runs that rule (and what depends on its outputs)."""
    files = []
    for pattern in patterns:
        files.extend(sorted(str(p) for p in Path(workflow.basedir).glob(pattern)))
    return files


wildcard_constraints:
    method="[A-Za-z0-9_]+",
    seed=r"-?\d+",
    model=r"base|[A-Za-z0-9_]+-s-?\d+",
