"""The ``verify`` pipeline stage: rollouts Parquet + problems Parquet -> verdicts Parquet.

    >>> verdicts = verify_rollouts(rollouts_df, problems_df, workers=2, timeout=5.0)  # doctest: +SKIP

Verdict columns: ``prompt_id, sample_idx, correct, extracted, reason, verifier, agree_secondary``
(``agree_secondary`` is a nullable boolean, all missing when the secondary verifier is off).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from negrl.errors import DataError
from negrl.verify.grader import grade_many
from negrl.verify.sandbox import get_pool

VERIFIER_VERSION = "1"
"""Bump when a change to extraction/normalisation/comparison can change a verdict (cache key)."""
VERIFIER_NAME = f"negrl-verify/{VERIFIER_VERSION}"
ROLLOUT_COLUMNS = ("prompt_id", "sample_idx", "response")
PROBLEM_COLUMNS = ("id", "answer")
VERDICT_COLUMNS = ("prompt_id", "sample_idx", "correct", "extracted", "reason", "verifier", "agree_secondary")
CHUNK = 256


def _require(df, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        has = ", ".join(map(str, df.columns))
        raise DataError(f"{what}: missing column(s) {', '.join(missing)} (has: {has})")


def _truncated_flags(rollouts) -> list[bool]:
    if "truncated" in rollouts.columns:
        return [bool(x) if x is not None and x == x else False for x in rollouts["truncated"].tolist()]
    if "finish_reason" in rollouts.columns:
        return [str(x) == "length" for x in rollouts["finish_reason"].tolist()]
    return [False] * len(rollouts)


def _progress(total: int, enabled: bool | None, desc: str):
    if enabled is None:
        enabled = sys.stderr.isatty() and total > CHUNK
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a progress bar is never worth failing for
        return None
    return tqdm(total=total, desc=desc, unit="resp", file=sys.stderr, leave=False)


def _chunked(n: int, fn: Callable[[int, int], list], bar) -> list:
    out: list = []
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        out.extend(fn(start, stop))
        if bar is not None:
            bar.update(stop - start)
    return out


def secondary_verdicts(responses: list[str], golds: list[str], *, workers: int | None, timeout: float,
                       progress: bool | None = None) -> list[bool]:
    """Math-Verify's verdicts, each in the sandbox (a timeout or error counts as not correct)."""
    pool = get_pool(workers)
    bar = _progress(len(responses), progress, "math-verify")

    def run(a: int, b: int) -> list[bool]:
        tasks = [{"op": "math_verify", "response": r, "gold": g} for r, g in zip(responses[a:b], golds[a:b])]
        return [status == "ok" and isinstance(res, dict) and bool(res.get("correct"))
                for status, res in pool.run(tasks, timeout=timeout)]

    try:
        return _chunked(len(responses), run, bar)
    finally:
        if bar is not None:
            bar.close()


def verify_rollouts(rollouts, problems, *, workers: int | None = None, timeout: float = 5.0,
                    secondary: bool = True, progress: bool | None = None):
    """Grade every rollout against its problem's gold answer; returns the verdicts DataFrame."""
    import pandas as pd

    _require(rollouts, ROLLOUT_COLUMNS, "rollouts")
    _require(problems, PROBLEM_COLUMNS, "problems")
    if problems["id"].duplicated().any():
        dup = problems.loc[problems["id"].duplicated(), "id"].iloc[0]
        raise DataError(f"problems: duplicate id {dup!r}")
    gold_by_id = dict(zip(problems["id"].tolist(), problems["answer"].tolist()))
    prompt_ids = rollouts["prompt_id"].tolist()
    missing = sorted({str(p) for p in prompt_ids if p not in gold_by_id})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"rollouts: {len(missing)} prompt_id(s) have no gold answer in problems.id: {shown}")
    golds = [gold_by_id[p] for p in prompt_ids]
    bad = [p for p, g in zip(prompt_ids, golds) if not isinstance(g, str)]
    if bad:
        raise DataError(f"problems: answer for id {bad[0]!r} is not a string")
    responses = [r if isinstance(r, str) else "" for r in rollouts["response"].tolist()]
    truncated = _truncated_flags(rollouts)

    bar = _progress(len(responses), progress, "verify")
    try:
        verdicts = _chunked(len(responses), lambda a, b: grade_many(
            list(zip(responses[a:b], golds[a:b])), workers=workers, timeout=timeout,
            truncated=truncated[a:b]), bar)
    finally:
        if bar is not None:
            bar.close()

    if secondary:
        sec = secondary_verdicts(responses, golds, workers=workers, timeout=timeout, progress=progress)
        agree = pd.array([v.correct == s for v, s in zip(verdicts, sec)], dtype="boolean")
    else:
        agree = pd.array([pd.NA] * len(verdicts), dtype="boolean")
    return pd.DataFrame({
        "prompt_id": rollouts["prompt_id"].to_numpy(),
        "sample_idx": rollouts["sample_idx"].to_numpy(),
        "correct": pd.array([v.correct for v in verdicts], dtype="bool"),
        "extracted": pd.array([v.extracted for v in verdicts], dtype="string"),
        "reason": pd.array([v.reason for v in verdicts], dtype="string"),
        "verifier": pd.array([VERIFIER_NAME] * len(verdicts), dtype="string"),
        "agree_secondary": agree,
    })


def read_parquet(path: str | os.PathLike, what: str):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data problem here
        raise DataError(f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc})") from None


def write_parquet_atomic(df, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def run_stage(rollouts_path, problems_path, out_path, *, workers=None, timeout=5.0, secondary=True,
              progress=None):
    """Read, verify, write atomically; returns the verdicts DataFrame."""
    rollouts = read_parquet(rollouts_path, "rollouts")
    problems = read_parquet(problems_path, "problems")
    try:
        verdicts = verify_rollouts(rollouts, problems, workers=workers, timeout=timeout,
                                   secondary=secondary, progress=progress)
    except DataError as exc:
        msg = str(exc)
        msg = msg.replace("rollouts:", f"{rollouts_path}:", 1).replace("problems:", f"{problems_path}:", 1)
        raise DataError(msg) from None
    write_parquet_atomic(verdicts, out_path)
    return verdicts


def disagreements(verdicts, rollouts=None, problems=None, limit: int | None = None):
    """Rows where negrl and Math-Verify disagree (``agree_secondary`` is False), with the gold answer
    and the response when ``rollouts``/``problems`` are given; for the report."""
    rows = verdicts[verdicts["agree_secondary"].astype("boolean").fillna(True) == False]  # noqa: E712
    rows = rows.assign(secondary_correct=~rows["correct"])
    if rollouts is not None:
        rows = rows.merge(rollouts[["prompt_id", "sample_idx", "response"]], on=["prompt_id", "sample_idx"],
                          how="left")
    if problems is not None:
        rows = rows.merge(problems[["id", "answer"]].rename(columns={"id": "prompt_id", "answer": "gold"}),
                          on="prompt_id", how="left")
    return rows.head(limit) if limit else rows
