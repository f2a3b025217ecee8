"""Bad input gives one clear error line (file, line or key), not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from negrl.cli import main

REPO = Path(__file__).resolve().parents[1]


def _run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_unknown_config_key(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("train:\n  stepz: 3\n")
    code, err = _run(capsys, "prepare", "--config", str(bad), "--train-out", str(tmp_path / "a.parquet"),
                     "--test-out", str(tmp_path / "b.parquet"))
    assert code == 2
    assert err.strip().splitlines() == [f"negrl: error: {bad}: unknown key 'train.stepz'; allowed keys under train: "
                                        + err.split("allowed keys under train: ")[1].strip()]


def test_missing_data_file_and_malformed_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"task": "math", "math": {"train": str(tmp_path / "missing.jsonl"),
                                                                          "test": str(tmp_path / "t.jsonl")}}}))
    outs = ["--train-out", str(tmp_path / "a.parquet"), "--test-out", str(tmp_path / "b.parquet")]
    code, err = _run(capsys, "prepare", "--config", str(config), *outs)
    assert code == 2 and err == f"negrl: error: {tmp_path / 'missing.jsonl'}: MATH data file not found\n"

    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"problem": "p", "answer": "1", "level": 1}) + "\n{broken\n")
    config.write_text(yaml.safe_dump({"data": {"task": "math", "math": {"train": str(train), "test": str(train)}}}))
    code, err = _run(capsys, "prepare", "--config", str(config), *outs)
    assert code == 2 and err.startswith(f"negrl: error: {train}:2: malformed JSON line") and err.count("\n") == 1


def test_snakemake_stops_on_a_bad_key_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: many\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
                             "--directory", str(REPO), "--configfile", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "negrl: error: config: key 'train.steps': expected an integer, got 'many'" in result.stderr
    assert "Traceback" not in result.stderr


def test_prepare_writes_only_the_split_asked_for(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"arith": {"train_per_level": 3, "test_per_level": 2}}}))
    code, err = _run(capsys, "prepare", "--config", str(config))
    assert code == 2 and err == "negrl: error: prepare: give --train-out, --test-out or both\n"
    code, _ = _run(capsys, "prepare", "--config", str(config), "--test-out", str(tmp_path / "t.parquet"))
    assert code == 0 and (tmp_path / "t.parquet").exists() and not (tmp_path / "a.parquet").exists()
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 10  # 2 per level
