import json

import pytest

from negrl.data.math import load_math
from negrl.data.prompts import render_prompt
from negrl.errors import DataError


def test_math500_local_jsonl(math_dir):
    rows = load_math(str(math_dir / "math500_test.jsonl"))
    assert len(rows) == 500
    assert {r["level"] for r in rows} == {1, 2, 3, 4, 5}
    assert rows[0]["id"] == "test/precalculus/807.json" and rows[0]["subject"] == "Precalculus"
    assert sum(r["level"] == 5 for r in rows) == 134


def test_math_train_drops_unknown_levels_and_parses_strings(math_dir):
    rows = load_math(str(math_dir / "math_train.jsonl"))
    assert len(rows) == 7498  # two "Level ?" problems are skipped
    assert all(isinstance(r["level"], int) for r in rows)


def test_parquet_and_limit(tmp_path, math_dir):
    import pandas as pd

    rows = load_math(str(math_dir / "math500_test.jsonl"), limit=20)
    pd.DataFrame(rows).to_parquet(tmp_path / "m.parquet")
    assert load_math(str(tmp_path / "m.parquet")) == rows


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"problem": "1+1", "answer": "2", "level": "Level 1", "type": "Algebra"})
    path.write_text(good + "\n" + '{"problem": "x", \n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON line"):
        load_math(str(path))


def test_missing_file_and_missing_fields(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_math(str(tmp_path / "nope.jsonl"))
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"question": "?", "level": 3}) + "\n")
    with pytest.raises(DataError, match=r"f\.jsonl:1: missing field 'problem'"):
        load_math(str(path))


def test_answer_falls_back_to_last_box(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"problem": "p", "solution": r"so \boxed{\frac{1}{2}}.", "level": 2}) + "\n")
    assert load_math(str(path))[0]["answer"] == r"\frac{1}{2}"


def test_prompt_templates_ask_for_boxed():
    assert render_prompt("Find x.", "boxed").endswith(r"put your final answer within \boxed{}.")
    assert r"\boxed{}" in render_prompt("Compute 1+1.", "boxed_short")


def test_chat_template_is_used_when_present():
    class Chat:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return f"<user>{messages[0]['content']}<assistant>"

    assert render_prompt("Q", "boxed_short", Chat()).startswith("<user>Q Answer in")
