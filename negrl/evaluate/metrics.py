"""Accuracy of one model's evaluation rollouts: per problem, by level, by subject, mean@k and pass@k.

    >>> import pandas as pd
    >>> rollouts = pd.DataFrame({"prompt_id": ["a", "a", "b", "b"], "sample_idx": [0, 1, 0, 1],
    ...                          "level": [1, 1, 5, 5], "subject": ["x"] * 4, "truncated": [False] * 4})
    >>> verdicts = pd.DataFrame({"prompt_id": ["a", "a", "b", "b"], "sample_idx": [0, 1, 0, 1],
    ...                          "correct": [True, True, False, True]})
    >>> summary = summarize(per_problem_accuracy(rollouts, verdicts))
    >>> summary["by_level"]["1"]["accuracy"], summary["by_level"]["5"]["accuracy"], summary["overall"]["pass@k"]
    (1.0, 0.5, 1.0)
"""

from __future__ import annotations

from math import comb

import pandas as pd

from negrl.errors import DataError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def per_problem_accuracy(rollouts: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per problem: level, subject, samples, correct samples, accuracy (mean@k); truncated = wrong."""
    merged = rollouts.merge(verdicts[["prompt_id", "sample_idx", "correct"]], on=["prompt_id", "sample_idx"],
                            how="left", validate="one_to_one")
    if merged["correct"].isna().any():
        missing = merged.loc[merged["correct"].isna(), "prompt_id"].iloc[0]
        raise DataError(f"verdicts lack rollout rows (e.g. prompt_id {missing!r}); re-run `negrl verify`")
    merged["correct"] = merged["correct"].astype(bool) & ~merged["truncated"].astype(bool)
    table = merged.groupby("prompt_id", sort=True).agg(
        level=("level", "first"), subject=("subject", "first"), samples=("correct", "size"),
        correct=("correct", "sum"), truncated=("truncated", "mean"))
    table["accuracy"] = table["correct"] / table["samples"]
    return table.reset_index()


def _summary_of(rows: pd.DataFrame) -> dict:
    k = int(rows["samples"].min())
    return {
        "accuracy": float(rows["accuracy"].mean()),
        "pass@k": float(sum(pass_at_k(int(n), int(c), k) for n, c in zip(rows["samples"], rows["correct"]))
                        / len(rows)),
        "k": k,
        "n_problems": int(len(rows)),
        "frac_truncated": float(rows["truncated"].mean()),
    }


def summarize(table: pd.DataFrame) -> dict:
    return {
        "overall": _summary_of(table),
        "by_level": {str(level): _summary_of(rows) for level, rows in table.groupby("level")},
        "by_subject": {str(subject): _summary_of(rows) for subject, rows in table.groupby("subject")},
    }
