"""Shared fixtures for the verifier tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for `import verify_cases`

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "math"


@pytest.fixture(scope="session")
def math_data_dir() -> Path:
    if not (DATA_DIR / "math_test.jsonl").is_file():
        pytest.skip(f"MATH data not found at {DATA_DIR.resolve()} (clone shared/ beside the repo)")
    return DATA_DIR


@pytest.fixture(scope="session")
def pool():
    """The process-wide sandbox pool, started once (2 workers) for the whole session."""
    from negrl.verify import get_pool

    p = get_pool(2)
    p.warm()
    return p
