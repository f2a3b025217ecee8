"""The verify stage: verify_rollouts, `negrl verify`, `negrl verify-answer`."""

from __future__ import annotations

import pandas as pd
import pytest

from negrl.errors import DataError
from negrl.verify import verify_rollouts
from negrl.verify.stage import VERDICT_COLUMNS


def _frames():
    problems = pd.DataFrame({
        "id": ["p1", "p2", "p3"], "problem": ["a", "b", "c"], "answer": [r"\frac{3}{4}", "(1,2]", r"2\sqrt3"],
        "level": [1, 2, 3], "subject": ["Algebra"] * 3,
    })
    responses = [r"so \boxed{0.75}", r"so \boxed{\frac{4}{3}}", r"thus \boxed{(1,2]}", r"thus \boxed{(1,2)}",
                 r"\boxed{\sqrt{12}}", "I ran out of tok"]
    rollouts = pd.DataFrame({
        "prompt_id": ["p1", "p1", "p2", "p2", "p3", "p3"], "sample_idx": [0, 1, 0, 1, 0, 1],
        "level": [1, 1, 2, 2, 3, 3], "subject": ["Algebra"] * 6, "prompt": ["q"] * 6, "response": responses,
        "token_ids": [[1, 2]] * 6, "finish_reason": ["stop"] * 5 + ["length"],
        "truncated": [False] * 5 + [True], "n_tokens": [2] * 6, "model": ["m"] * 6, "seed": [0] * 6,
        "sampling": ["{}"] * 6,
    })
    return rollouts, problems


def test_verify_rollouts(pool):
    rollouts, problems = _frames()
    out = verify_rollouts(rollouts, problems, workers=2, timeout=5.0, secondary=True)
    assert tuple(out.columns) == VERDICT_COLUMNS
    assert out["correct"].tolist() == [True, False, True, False, True, False]
    assert out["reason"].tolist() == ["match", "mismatch", "match", "mismatch", "match", "truncated"]
    assert out["agree_secondary"].dtype == "boolean"
    assert out["agree_secondary"].notna().all()
    assert out["prompt_id"].tolist() == rollouts["prompt_id"].tolist()


def test_disagreements_listing(pool):
    from negrl.verify.stage import disagreements

    rollouts, problems = _frames()
    out = verify_rollouts(rollouts, problems, secondary=True)
    out.loc[0, "agree_secondary"] = False  # pretend Math-Verify disagreed on one row
    d = disagreements(out, rollouts, problems)
    assert len(d) == int((~out["agree_secondary"]).sum())
    assert {"gold", "response", "secondary_correct"} <= set(d.columns)


def test_secondary_off_is_null(pool):
    rollouts, problems = _frames()
    out = verify_rollouts(rollouts, problems, secondary=False)
    assert out["agree_secondary"].isna().all()


def test_missing_column_and_gold(pool):
    rollouts, problems = _frames()
    with pytest.raises(DataError, match="response"):
        verify_rollouts(rollouts.drop(columns=["response"]), problems, secondary=False)
    with pytest.raises(DataError, match="answer"):
        verify_rollouts(rollouts, problems.drop(columns=["answer"]), secondary=False)
    with pytest.raises(DataError, match="p3"):
        verify_rollouts(rollouts, problems[problems["id"] != "p3"], secondary=False)


def test_cli_verify(pool, tmp_path, capsys):
    from negrl.cli import main

    rollouts, problems = _frames()
    rp, pp, out = tmp_path / "r.parquet", tmp_path / "p.parquet", tmp_path / "sub" / "v.parquet"
    rollouts.to_parquet(rp)
    problems.to_parquet(pp)
    assert main(["verify", "--rollouts", str(rp), "--problems", str(pp), "--out", str(out),
                 "--workers", "2", "--timeout", "5", "--no-secondary"]) == 0
    df = pd.read_parquet(out)
    assert tuple(df.columns) == VERDICT_COLUMNS and len(df) == 6
    assert not (tmp_path / "sub" / "v.parquet.tmp").exists()
    assert "verified 6 responses" in capsys.readouterr().err
    # a missing column is one line naming the file and the column
    rollouts.drop(columns=["prompt_id"]).to_parquet(rp)
    assert main(["verify", "--rollouts", str(rp), "--problems", str(pp), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "prompt_id" in err and str(rp) in err and err.count("\n") == 1
    assert main(["verify", "--rollouts", str(tmp_path / "nope.parquet"), "--problems", str(pp),
                 "--out", str(out)]) == 2


def test_cli_verify_answer(pool, capsys):
    from negrl.cli import main

    assert main(["verify-answer", r"\frac12", "0.5"]) == 0
    assert capsys.readouterr().out.strip() == "match"
    assert main(["verify-answer", "(1,2)", "[1,2]"]) == 1
    assert capsys.readouterr().out.strip() == "mismatch"
    assert main(["verify-answer", "--response", "3", r"so \boxed{3}"]) == 0
