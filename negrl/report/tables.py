"""Comparison tables: accuracy by level per method with bootstrap intervals (CSV and Markdown).

Input: per-problem accuracy tables (``negrl evaluate``) keyed by model label ``base`` or
``<method>-s<seed>``. Output rows: ``method, level, accuracy, ci_low, ci_high, n_problems, n_seeds`` with
``level`` 1..5 and ``all``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from negrl.evaluate.stats import bootstrap_interval, paired_difference_interval

LABEL = re.compile(r"^(?P<method>.+)-s(?P<seed>-?\d+)$")


def split_label(label: str) -> tuple[str, int | None]:
    """``grpo-s2`` -> (``grpo``, 2); ``base`` -> (``base``, None)."""
    match = LABEL.match(label)
    return (match["method"], int(match["seed"])) if match else (label, None)


def accuracy_matrices(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, np.ndarray]]:
    """{method: {level: [seeds, problems] accuracy matrix}} with problems aligned by prompt_id."""
    by_method: dict[str, list[pd.DataFrame]] = {}
    for label, table in sorted(tables.items()):
        method, _ = split_label(label)
        by_method.setdefault(method, []).append(table.set_index("prompt_id").sort_index())
    out: dict[str, dict[str, np.ndarray]] = {}
    for method, runs in by_method.items():
        levels = runs[0]["level"]
        out[method] = {}
        for level in ["all", *sorted(levels.unique())]:
            ids = levels.index if level == "all" else levels.index[levels == level]
            out[method][str(level)] = np.stack([run.loc[ids, "accuracy"].to_numpy(float) for run in runs])
    return out


def method_order(methods) -> list[str]:
    return sorted(methods, key=lambda m: (m != "base", m))


def accuracy_by_level(tables: dict[str, pd.DataFrame], confidence: float, samples: int, seed: int) -> pd.DataFrame:
    rows = []
    for method, levels in accuracy_matrices(tables).items():
        for level, matrix in levels.items():
            low, high = bootstrap_interval(matrix, confidence, samples, seed)
            rows.append({"method": method, "level": level, "accuracy": float(matrix.mean()), "ci_low": low,
                         "ci_high": high, "n_problems": int(matrix.shape[1]), "n_seeds": int(matrix.shape[0])})
    return _sorted(pd.DataFrame(rows))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Methods base first then alphabetical; levels 1..5 then ``all``."""
    order = {m: i for i, m in enumerate(method_order(frame["method"].unique()))}
    keys = frame.assign(_m=frame["method"].map(order),
                        _l=frame["level"].map(lambda v: 99 if v == "all" else int(v)))
    return keys.sort_values(["_m", "_l"]).drop(columns=["_m", "_l"]).reset_index(drop=True)


def accuracy_by_seed(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for label, table in tables.items():
        method, seed = split_label(label)
        for level, part in [("all", table), *((str(lv), t) for lv, t in table.groupby("level"))]:
            rows.append({"method": method, "seed": seed, "level": level, "accuracy": float(part["accuracy"].mean())})
    return pd.DataFrame(rows)


def differences_vs_base(tables: dict[str, pd.DataFrame], confidence: float, samples: int, seed: int) -> pd.DataFrame:
    matrices = accuracy_matrices(tables)
    if "base" not in matrices:
        return pd.DataFrame()
    rows = []
    for method in method_order(matrices):
        if method == "base":
            continue
        for level, matrix in matrices[method].items():
            diff, low, high = paired_difference_interval(matrix, matrices["base"][level], confidence, samples, seed)
            per_seed = matrix.mean(axis=1)
            rows.append({"method": method, "level": level, "delta": diff, "ci_low": low, "ci_high": high,
                         "seed_spread": float(per_seed.max() - per_seed.min()),
                         "significant": bool(low > 0 or high < 0)})
    return _sorted(pd.DataFrame(rows))


def markdown_table(summary: pd.DataFrame, deltas: pd.DataFrame, by_seed: pd.DataFrame, confidence: float,
                   training: pd.DataFrame | None = None) -> str:
    levels = [lv for lv in summary["level"].unique()]
    header = "| method | " + " | ".join(f"L{lv}" if lv != "all" else "all" for lv in levels) + " |"
    lines = [f"## Accuracy by level (mean over seeds and samples; {confidence:.0%} bootstrap CI over problems and seeds)",
             "", header, "|" + "---|" * (len(levels) + 1)]
    for method, part in summary.groupby("method", sort=False):
        rows = part.set_index("level")
        cells = [f"{r.accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in (rows.loc[level] for level in levels)]
        lines.append(f"| {method} (n={part['n_seeds'].iloc[0]}) | " + " | ".join(cells) + " |")
    if not deltas.empty:
        lines += ["", f"## Difference from the base model (paired bootstrap {confidence:.0%} CI; * = CI excludes 0)",
                  "", header.replace("method", "method - base"), "|" + "---|" * (len(levels) + 1)]
        for method, part in deltas.groupby("method", sort=False):
            rows = part.set_index("level")
            cells = [f"{r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]{'*' if r.significant else ''}"
                     for r in (rows.loc[level] for level in levels)]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    seed_rows = by_seed[by_seed["seed"].notna()]
    if not seed_rows.empty:
        lines += ["", "## Per seed", "", header.replace("method", "method / seed"), "|" + "---|" * (len(levels) + 1)]
        for (method, seed), part in seed_rows.groupby(["method", "seed"], sort=True):
            values = part.set_index("level")["accuracy"]
            lines.append(f"| {method} / {int(seed)} | " + " | ".join(f"{values.get(lv, float('nan')):.3f}"
                                                                    for lv in levels) + " |")
    if training is not None and not training.empty:
        lines += ["", "## Training diagnostics (mean over steps and seeds)", "",
                  "| " + " | ".join(training.columns) + " |", "|" + "---|" * len(training.columns)]
        for row in training.itertuples(index=False):
            lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
