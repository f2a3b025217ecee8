"""Rollout tables (design.md "Result files"): one row per sample, written as Parquet atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from negrl.errors import DataError
from negrl.provenance import atomic_path
from negrl.rollout.base import Completion, SamplingParams

ROLLOUT_COLUMNS = ["prompt_id", "sample_idx", "level", "subject", "prompt", "response", "token_ids",
                   "finish_reason", "truncated", "n_tokens", "model", "seed", "sampling"]


def completions_to_frame(problems: Sequence[dict], prompts: Sequence[str], completions: Sequence[Completion],
                         model: str, params: SamplingParams) -> pd.DataFrame:
    sampling = json.dumps({"n": params.n, "temperature": params.temperature, "top_p": params.top_p,
                           "max_tokens": params.max_tokens, "seed": params.seed, "stop": list(params.stop)})
    rows = []
    for c in completions:
        problem = problems[c.prompt_index]
        rows.append({
            "prompt_id": problem["id"], "sample_idx": c.sample_idx, "level": int(problem["level"]),
            "subject": problem["subject"], "prompt": prompts[c.prompt_index], "response": c.text,
            "token_ids": list(c.token_ids), "finish_reason": c.finish_reason, "truncated": bool(c.truncated),
            "n_tokens": len(c.token_ids), "model": model, "seed": params.seed, "sampling": sampling,
        })
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_parquet(path: str | Path, required: Sequence[str], what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {what} file not found")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        raise DataError(f"{path}: cannot read {what} Parquet: {exc}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: {what} table lacks column(s) {', '.join(missing)}")
    return frame
