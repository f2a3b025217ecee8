"""Every registered method runs through the real training loop (one rollout step on the tiny model),
including the methods that filter groups and make the trainer resample (dynamic sampling, C11)."""

from __future__ import annotations

import json

import pytest

from negrl.config import from_dict
from negrl.data.arith import generate_split
from negrl.methods import available_methods, get_method
from negrl.train.loop import train


@pytest.mark.parametrize("method", available_methods())
def test_method_runs_one_step(method, tiny_model_dir, tmp_path):
    config = from_dict({"methods": [method], "train": {"steps": 1, "prompts_per_step": 2, "n": 2,
                                                       "max_num_gen_batches": 2, "checkpoint_every": 0},
                        "rollout": {"max_tokens": 8}, "verify": {"workers": 1}})
    train(config, method, 1, tiny_model_dir, generate_split("train", 6, seed=0), tmp_path, device="cpu",
          show_progress=False)
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row["step/rollout"] == 1 and "reward/mean" in row
    if get_method(method, max_response_length=8).filters_groups:
        # an untrained model gets every answer wrong: every group is filtered, the budget runs out
        assert row["ds/num_gen_batches"] == 2 and row["ds/skipped_step"] == 1
        assert row["step/optimizer"] == 0
    else:
        assert row["step/optimizer"] == 1 and "actor/grad_norm" in row
