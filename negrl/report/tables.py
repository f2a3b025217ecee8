"""Comparison tables: accuracy by level per method with bootstrap intervals (CSV and Markdown).

Input: per-problem accuracy tables (``negrl evaluate``) keyed by model label ``base`` or
``<method>-s<seed>``. Output rows: ``method, level, accuracy, ci_low, ci_high, n_problems, n_seeds`` with
``level`` 1..5 and ``all``. Paired differences (every method minus ``base``, and minus the reference method
``report.reference_method``): ``method, level, delta, ci_low, ci_high, ci_half_width, seed_spread,
significant``, where ``ci_half_width`` is the detectable difference, the run's statistical power.

    >>> table = pd.DataFrame({"prompt_id": ["a", "b"], "level": [1, 1], "accuracy": [1.0, 0.0]})
    >>> lower = table.assign(accuracy=[0.5, 0.0])
    >>> row = paired_differences({"grpo-s1": lower, "lens-s1": table}, "grpo", 0.95, 2000, 0).iloc[-1]
    >>> print(row.method, row.level, row.delta, row.ci_low, row.ci_high, row.ci_half_width, row.significant)
    lens all 0.25 0.0 0.5 0.25 False
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


DIFFERENCE_COLUMNS = ["method", "level", "delta", "ci_low", "ci_high", "ci_half_width", "seed_spread",
                      "significant"]


def paired_differences(tables: dict[str, pd.DataFrame], reference: str, confidence: float, samples: int,
                       seed: int) -> pd.DataFrame:
    """Every method (but ``base`` and ``reference``) minus ``reference``, per level and ``all``.

    Paired over problems, with each side's seeds resampled on their own (``paired_difference_interval``):
    two methods share the test problems, not their training seeds. ``ci_half_width`` is half the width of
    the interval, the smallest difference this run can tell from zero at that level (its power);
    ``seed_spread`` is max - min of the method's per-seed accuracies. No rows when ``reference`` was not
    evaluated (the columns are kept, so the CSV still says what it would hold).
    """
    matrices = accuracy_matrices(tables)
    if reference not in matrices:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    rows = []
    for method in method_order(matrices):
        if method in ("base", reference):
            continue
        for level, matrix in matrices[method].items():
            diff, low, high = paired_difference_interval(matrix, matrices[reference][level], confidence, samples,
                                                         seed)
            per_seed = matrix.mean(axis=1)
            rows.append({"method": method, "level": level, "delta": diff, "ci_low": low, "ci_high": high,
                         "ci_half_width": (high - low) / 2, "seed_spread": float(per_seed.max() - per_seed.min()),
                         "significant": bool(low > 0 or high < 0)})
    if not rows:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    return _sorted(pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS))


def differences_vs_base(tables: dict[str, pd.DataFrame], confidence: float, samples: int, seed: int) -> pd.DataFrame:
    """Every trained method minus the starting model (``paired_differences`` with reference ``base``)."""
    return paired_differences(tables, "base", confidence, samples, seed)


DETECTABLE_LEGEND = ("Detectable difference (±) = half the width of the CI: the smallest difference this run tells "
                     "from 0 (a true difference of that size is found about half the time).")


def _level_header(levels: list[str], first_column: str) -> list[str]:
    return ["| " + first_column + " | " + " | ".join(f"L{lv}" if lv != "all" else "all" for lv in levels) + " |",
            "|" + "---|" * (len(levels) + 1)]


def _difference_rows(deltas: pd.DataFrame, levels: list[str]) -> list[str]:
    """Per method: the difference with its interval, then the detectable difference (CI half-width)."""
    lines = []
    for method, part in deltas.groupby("method", sort=False):
        rows = [part.set_index("level").loc[level] for level in levels]
        lines.append(f"| {method} | " + " | ".join(
            f"{r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]{'*' if r.significant else ''}" for r in rows) + " |")
        lines.append(f"| {method}: detectable difference (±) | " + " | ".join(
            f"{r.ci_half_width:.3f}" for r in rows) + " |")
    return lines


def ranking_line(reference_deltas: pd.DataFrame, reference: str) -> str:
    """One sentence per method: overall difference from the reference, its detectable difference, and
    whether this run resolves it (the interval excludes 0), i.e. whether it can rank the two methods."""
    overall = reference_deltas[reference_deltas["level"] == "all"]
    parts = []
    for r in overall.itertuples(index=False):
        verdict = ("resolved: the CI excludes 0" if r.significant else
                   f"not resolved: the CI includes 0")
        parts.append(f"{r.method} - {reference} = {r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}], "
                     f"detectable difference ±{r.ci_half_width:.3f} ({verdict})")
    return f"Can this run rank the methods? Overall, paired against {reference}: " + "; ".join(parts) + "."


def _reference_section(summary: pd.DataFrame, reference_deltas: pd.DataFrame, reference: str, levels: list[str],
                       confidence: float) -> list[str]:
    lines = ["", f"## Difference from {reference} (paired bootstrap {confidence:.0%} CI over problems and seeds; "
                 "* = CI excludes 0)", ""]
    methods = [m for m in summary["method"].unique() if m != "base"]
    if reference not in methods:
        return lines + [f"Skipped: the reference method {reference!r} (report.reference_method) was not evaluated; "
                        f"methods: {', '.join(methods) or 'none'}."]
    if reference_deltas.empty:
        return lines + [f"Skipped: {reference} is the only method evaluated; there is nothing to compare it with."]
    return (lines + _level_header(levels, f"method - {reference}") + _difference_rows(reference_deltas, levels)
            + ["", DETECTABLE_LEGEND, "", ranking_line(reference_deltas, reference)])


def markdown_table(summary: pd.DataFrame, deltas: pd.DataFrame, by_seed: pd.DataFrame, confidence: float,
                   training: pd.DataFrame | None = None, reference_deltas: pd.DataFrame | None = None,
                   reference: str | None = None) -> str:
    """The Markdown report: accuracy by level, differences from base and from ``reference`` (when given),
    each with its detectable difference, then per-seed accuracies and training diagnostics."""
    levels = [lv for lv in summary["level"].unique()]
    lines = [f"## Accuracy by level (mean over seeds and samples; {confidence:.0%} bootstrap CI over problems and seeds)",
             "", *_level_header(levels, "method")]
    for method, part in summary.groupby("method", sort=False):
        rows = part.set_index("level")
        cells = [f"{r.accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in (rows.loc[level] for level in levels)]
        lines.append(f"| {method} (n={part['n_seeds'].iloc[0]}) | " + " | ".join(cells) + " |")
    can_rank = reference is not None and reference_deltas is not None and not reference_deltas.empty
    if can_rank:
        lines += ["", ranking_line(reference_deltas, reference)]
    if not deltas.empty:
        lines += ["", f"## Difference from the base model (paired bootstrap {confidence:.0%} CI over problems and "
                      "seeds; * = CI excludes 0)", "", *_level_header(levels, "method - base"),
                  *_difference_rows(deltas, levels), "", DETECTABLE_LEGEND, ""]
        overall = deltas[deltas["level"] == "all"]
        lines.append("Detectable difference overall (CI half-width): " + ", ".join(
            f"{r.method} - base ±{r.ci_half_width:.3f}" for r in overall.itertuples(index=False)) + ".")
    if reference is not None:
        lines += _reference_section(summary, reference_deltas if reference_deltas is not None
                                    else pd.DataFrame(columns=DIFFERENCE_COLUMNS), reference, levels, confidence)
    seed_rows = by_seed[by_seed["seed"].notna()]
    if not seed_rows.empty:
        lines += ["", "## Per seed", "", *_level_header(levels, "method / seed")]
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
