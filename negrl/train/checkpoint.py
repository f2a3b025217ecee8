"""Resumable training checkpoints, written atomically.

A checkpoint directory ``ckpt-<step>/`` holds the model (``save_pretrained``), and ``state.pt`` with the
optimizer, scheduler, RNG states, prompt-stream position and step. ``latest`` names the newest complete
one; a checkpoint is written under a temporary name and renamed, so a kill mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from negrl.provenance import atomic_path, write_text


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, step: int, model, tokenizer, training_state: dict[str, Any], keep: int = 2,
                    state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``ckpt-<step>`` atomically and point ``latest`` at it; ``state_dict`` overrides the model's own
    (the full weights gathered from an FSDP-sharded model)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"ckpt-{step:06d}"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        torch.save({**training_state, "step": step, "rng": rng_state()}, tmp / "state.pt")
        if "run_hash" in training_state:  # readable without loading the optimizer state
            (tmp / "run_hash").write_text(str(training_state["run_hash"]) + "\n")
    write_text(directory / "latest", target.name + "\n")
    for old in sorted(directory.glob("ckpt-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(directory: Path) -> Path | None:
    pointer = directory / "latest"
    if not pointer.exists():
        return None
    target = directory / pointer.read_text().strip()
    return target if (target / "state.pt").exists() else None


def checkpoint_run_hash(checkpoint: Path) -> str | None:
    """The run settings hash a checkpoint was written under."""
    path = checkpoint / "run_hash"
    if path.exists():
        return path.read_text().strip()
    return load_training_state(checkpoint).get("run_hash")


def load_training_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / "state.pt", weights_only=False)
