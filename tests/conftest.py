"""Shared fixtures: repository paths, the offline environment, a tiny saved toy model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_MATH = REPO.parent / "shared" / "data" / "math"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def math_dir() -> Path:
    if not SHARED_MATH.exists():
        pytest.skip(f"MATH data not found at {SHARED_MATH}")
    return SHARED_MATH


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised toy model (2 layers, width 32) saved with save_pretrained."""
    from negrl.config import ToyModelConfig
    from negrl.models import build_toy

    model, tokenizer = build_toy(ToyModelConfig(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                                intermediate_size=64, max_position=256, seed=0))
    path = tmp_path_factory.mktemp("toy") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
