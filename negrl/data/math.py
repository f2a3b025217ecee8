"""The MATH dataset (Hendrycks et al., 2021): a Hugging Face hub dataset id or a local jsonl/parquet file.

Every source is normalised to the fields the rest of negrl uses: ``id, problem, answer, level (int 1-5),
subject, solution``. Local files are read line by line so a malformed line is reported by number; hub ids
go through ``datasets.load_dataset`` (set ``HF_HUB_OFFLINE=1`` to forbid network access).

    >>> from negrl.data.math import load_math
    >>> rows = load_math("../shared/data/math/math500_test.jsonl")     # doctest: +SKIP
    >>> rows[0]["level"], rows[0]["subject"]                            # doctest: +SKIP
    (2, 'Precalculus')
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from negrl.errors import DataError

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


def _last_boxed(solution: str) -> str | None:
    """Contents of the last ``\\boxed{...}``/``\\fbox{...}`` (brace-matched), as MATH's ``remove_boxed``."""
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    if start < 0:
        return None
    brace = solution.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(solution)):
        if solution[i] == "{":
            depth += 1
        elif solution[i] == "}":
            depth -= 1
            if depth == 0:
                return solution[brace + 1 : i]
    return None


def _parse_level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 5 else None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:Level\s*)?([1-5])\s*", value)
        return int(match.group(1)) if match else None
    return None


def normalize_record(record: dict[str, Any], where: str, index: int) -> dict[str, Any] | None:
    """One raw MATH record -> negrl fields; None for a record without a usable level (``Level ?``)."""
    if "problem" not in record:
        raise DataError(f"{where}: missing field 'problem' (expected MATH fields problem, solution/answer, level)")
    level = _parse_level(record.get("level_int", record.get("level")))
    if level is None:
        if record.get("level") in (None, "Level ?"):
            return None
        raise DataError(f"{where}: field 'level' must be an int 1-5 or 'Level N', got {record.get('level')!r}")
    solution = record.get("solution") or ""
    answer = record.get("answer")
    if answer is None:
        answer = _last_boxed(solution)
    if answer is None:
        raise DataError(f"{where}: no 'answer' field and no \\boxed{{}} answer in 'solution'")
    subject = record.get("subject") or record.get("type") or "unknown"
    identifier = record.get("unique_id") or record.get("id") or f"row-{index}"
    out = {
        "id": str(identifier),
        "problem": str(record["problem"]),
        "answer": str(answer),
        "level": level,
        "subject": str(subject),
        "solution": str(solution),
    }
    return out


def _read_jsonl(path: Path) -> Iterable[tuple[str, int, dict]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_number}: malformed JSON line ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
            yield f"{path}:{line_number}", line_number - 1, record


def _read_local(path: Path) -> Iterable[tuple[str, int, dict]]:
    if path.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        for index, record in enumerate(frame.to_dict("records")):
            yield f"{path} row {index}", index, record
    elif path.suffix == ".json":
        records = json.loads(path.read_text())
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of records")
        for index, record in enumerate(records):
            yield f"{path} item {index}", index, record
    else:
        yield from _read_jsonl(path)


def _read_hub(dataset_id: str, split: str) -> Iterable[tuple[str, int, dict]]:
    import datasets  # imported lazily: local files need no hub machinery

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one actionable line
        raise DataError(
            f"cannot load hub dataset '{dataset_id}' (split '{split}'): {type(exc).__name__}: {exc}. "
            "Use a local .jsonl/.parquet path when offline"
        ) from None
    for index, record in enumerate(dataset):
        yield f"{dataset_id}[{split}] row {index}", index, dict(record)


def is_local_source(source: str) -> bool:
    return source.endswith(LOCAL_SUFFIXES) or Path(source).exists()


def load_math(source: str, split: str = "test", limit: int | None = None, base_dir: Path | None = None) -> list[dict]:
    """Load and normalise MATH problems from a local file (relative to ``base_dir``) or a hub id."""
    if is_local_source(source):
        path = Path(source)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.exists():
            raise DataError(f"{path}: MATH data file not found")
        records = _read_local(path)
    else:
        records = _read_hub(source, split)
    problems, seen = [], set()
    for where, index, record in records:
        problem = normalize_record(record, where, index)
        if problem is None:
            continue
        if problem["id"] in seen:
            raise DataError(f"{where}: duplicate problem id {problem['id']!r}")
        seen.add(problem["id"])
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise DataError(f"{source}: no problems found")
    return problems
