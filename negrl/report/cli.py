"""``negrl report``: comparison tables (CSV, Markdown) and plots from every model's evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from negrl.config import load_config
from negrl.errors import ConfigError
from negrl.provenance import atomic_path, write_provenance, write_text
from negrl.report.plots import plot_accuracy_by_level, plot_training_curves
from negrl.report.tables import (accuracy_by_level, accuracy_by_seed, differences_vs_base, markdown_table,
                                 paired_differences, split_label)
from negrl.rollout.io import read_parquet


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        if "=" not in value:
            raise ConfigError(f"{flag} {value!r}: expected LABEL=PATH")
        label, path = value.split("=", 1)
        out[label] = path
    return out


def training_summary(logs: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    rows = []
    for method, frames in sorted(logs.items()):
        frame = pd.concat(frames)
        row = {"method": method, "reward": frame["reward/mean"].mean()}
        for key in ("batch/frac_all_wrong_groups", "batch/frac_all_right_groups", "batch/resp_len_mean",
                    "actor/entropy"):
            if key in frame:
                row[key.split("/")[1]] = frame[key].mean()
        shares = {lv: frame[f"level{lv}/share_of_all_wrong_groups"].mean()
                  for lv in range(1, 6) if f"level{lv}/share_of_all_wrong_groups" in frame}
        if shares:
            row["all_wrong_from_L4_L5"] = shares.get(4, 0.0) + shares.get(5, 0.0)
        rows.append(row)
    return pd.DataFrame(rows)


def run_report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rc = config.report
    tables = {label: read_parquet(path, ["prompt_id", "level", "accuracy"], "per-problem accuracy")
              for label, path in _pairs(args.per_problem, "--per-problem").items()}
    if not tables:
        raise ConfigError("--per-problem: give at least one LABEL=PATH")
    logs: dict[str, list[pd.DataFrame]] = {}
    for label, path in _pairs(args.train_log, "--train-log").items():
        method, _ = split_label(label)
        logs.setdefault(method, []).append(pd.read_json(path, lines=True))
    summary = accuracy_by_level(tables, rc.confidence, rc.bootstrap_samples, rc.seed)
    by_seed = accuracy_by_seed(tables)
    deltas = differences_vs_base(tables, rc.confidence, rc.bootstrap_samples, rc.seed)
    reference = rc.reference_method
    reference_deltas = paired_differences(tables, reference, rc.confidence, rc.bootstrap_samples, rc.seed)
    training = training_summary(logs) if logs else None
    out = Path(args.out_dir)
    # difference_vs_<reference>.csv is written even when the reference was not evaluated (header only):
    # the Snakemake rule declares it, and the Markdown says why it is empty
    for name, frame in (("accuracy_by_level.csv", summary), ("accuracy_by_seed.csv", by_seed),
                        ("difference_vs_base.csv", deltas), (f"difference_vs_{reference}.csv", reference_deltas)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4f")
    title = f"{config.experiment}: accuracy by level"
    write_text(out / "accuracy_by_level.md", f"# {title}\n\n" + markdown_table(
        summary, deltas, by_seed, rc.confidence, training, reference_deltas=reference_deltas, reference=reference))
    plot_accuracy_by_level(summary, by_seed, out / "accuracy_by_level.png", title)
    if logs:
        plot_training_curves(logs, out / "training_curves.png", f"{config.experiment}: training")
    write_provenance(out, config.section_hash("report"), models=sorted(tables))
    print((out / "accuracy_by_level.md").read_text())
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="tables and plots comparing every evaluated model")
    parser.add_argument("--config", required=True)
    parser.add_argument("--per-problem", action="append", metavar="LABEL=PATH",
                        help="per-problem accuracy of a model (LABEL: base or <method>-s<seed>); repeat")
    parser.add_argument("--train-log", action="append", metavar="LABEL=PATH",
                        help="metrics.jsonl of a training run (LABEL: <method>-s<seed>); repeat")
    parser.add_argument("--out-dir", required=True)
    parser.set_defaults(func=run_report)
