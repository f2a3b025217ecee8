"""Metric sinks: metrics.jsonl, TensorBoard event files (built-in writer), optional W&B."""

from __future__ import annotations

import json
import sys

import pytest

from negrl.train.tracking import MetricsLogger, crc32c, read_scalars


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_logger_writes_jsonl_and_readable_event_files(tmp_path):
    logger = MetricsLogger(tmp_path / "metrics.jsonl", tensorboard_dir=tmp_path / "tb")
    logger.log({"reward/mean": 0.25, "batch/acc": 0.5, "bad": float("nan")}, step=1)
    logger.log({"reward/mean": 0.75}, step=2)
    logger.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[1] == {"reward/mean": 0.75}
    (events,) = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert read_scalars(events) == [("reward/mean", 1, 0.25), ("batch/acc", 1, 0.5), ("reward/mean", 2, 0.75)]


def test_wandb_configured_but_missing_only_warns(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.warns(UserWarning, match="wandb is not installed"):
        logger = MetricsLogger(tmp_path / "m.jsonl", wandb_project="negrl")
    logger.log({"x": 1.0}, step=1)
    logger.close()
