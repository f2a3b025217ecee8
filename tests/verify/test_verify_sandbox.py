"""The sandbox pool: persistence, kill-based timeouts, crash and memory-limit recovery, the audit hook."""

from __future__ import annotations

import threading
import time

import pytest

from negrl.verify import grade, grade_many


def _pids(pool):
    return sorted(w.proc.pid for w in pool._workers)


def test_pool_is_persistent_across_calls(pool):
    grade_many([(r"\boxed{\sqrt{12}}", r"2\sqrt3")])
    before = _pids(pool)
    grade_many([(r"\boxed{\sqrt{8}}", r"2\sqrt2")] * 4)
    assert _pids(pool) == before


def test_plain_numbers_never_touch_the_pool(pool, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("pool used for a plain number")

    monkeypatch.setattr(pool, "run", boom)
    items = [(r"\boxed{7}", "7"), (r"\boxed{-12}", "-12"), (r"\boxed{\frac{3}{4}}", "0.75"),
             (r"\boxed{-\frac{5}{2}}", r"-\frac{5}{2}"), (r"\boxed{\dfrac{6}{8}}", r"\frac34"), ("no answer", "3")]
    vs = grade_many(items)
    assert [v.correct for v in vs] == [True, True, True, True, True, False]
    assert vs[-1].reason == "no_answer"


def test_timeout_kills_only_that_item_and_pool_recovers(pool):
    kills = pool.kills
    hang = {"op": "selftest_sleep"}  # unknown op -> error, harmless
    t = time.monotonic()
    res = pool.run([{"op": "ping"}, hang, {"op": "ping"}], timeout=2.0)
    assert res[0] == ("ok", {"pong": True}) and res[2] == ("ok", {"pong": True})
    assert res[1][0] == "error"
    # a real hang: a huge integer power inside sympy
    t = time.monotonic()
    v = grade(r"\boxed{(x+1)^{100000}}", r"(1+x)^{100000}+1", timeout=1.5)
    elapsed = time.monotonic() - t
    assert v.reason in ("timeout", "mismatch", "error") and not v.correct
    assert elapsed < 1.5 + 1.0
    assert grade(r"\boxed{\sqrt{12}}", r"2\sqrt3").correct
    assert pool.kills >= kills


def test_hang_is_killed_at_the_deadline(pool):
    t = time.monotonic()
    res = pool.run([{"op": "equiv", "pairs": [["x", r"\sum_{k=1}^{10^{12}} k^{k}"]]}], timeout=1.0)
    assert time.monotonic() - t < 2.0
    assert res[0][0] in ("timeout", "ok", "error")
    assert grade(r"\boxed{x^2-1}", "(x-1)(x+1)").correct


def test_timeouts_work_outside_the_main_thread(pool):
    out = {}

    def run():
        t = time.monotonic()
        out["v"] = grade(r"\boxed{2^{3^{4^{5^{6}}}}}", "7", timeout=1.0)
        out["t"] = time.monotonic() - t
        out["ok"] = grade(r"\boxed{\frac{\sqrt2}{2}}", r"\frac{1}{\sqrt2}").correct

    th = threading.Thread(target=run)
    th.start()
    th.join(30)
    assert not th.is_alive()
    assert not out["v"].correct and out["t"] < 2.0 and out["ok"]


def test_memory_limit_is_an_error_not_a_crash_of_the_caller(pool):
    v = grade(r"\boxed{10^{10^{9}}}", "1", timeout=5.0)
    assert not v.correct and v.reason in ("error", "timeout", "unparseable", "mismatch")
    assert grade(r"\boxed{(1,2]}", "(1,2]").correct


def test_worker_crash_is_an_error_for_that_item_only(pool):
    import os
    import signal

    w = pool._workers[0]
    os.kill(w.proc.pid, signal.SIGKILL)  # dies while idle: the next call must just replace it
    time.sleep(0.2)
    vs = grade_many([(r"\boxed{\sqrt{2}}", r"\sqrt2")] * 3 + [(r"\boxed{x+1}", "1+x")])
    assert all(v.correct for v in vs)


def test_audit_hook_blocks_everything_dangerous(pool, tmp_path):
    probe = tmp_path / "probe"
    res = pool.run([{"op": "selftest", "arg": str(probe)}], timeout=10.0)
    status, result = res[0]
    assert status == "ok"
    assert result == {name: "PermissionError" for name in result}, result
    assert not probe.exists()
    pool.blocked_events.clear()


def test_workers_run_with_limits(pool):
    import resource

    pid = pool._workers[0].proc.pid
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    as_line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert "unlimited" not in as_line.split()[3]
    fsize = next(line for line in limits.splitlines() if line.startswith("Max file size"))
    assert fsize.split()[3] == "0"
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 0  # the caller is untouched


def test_grade_many_order_and_lengths(pool):
    items = [(r"\boxed{%d}" % k, str(k if k % 3 else k + 1)) for k in range(50)]
    items += [(r"\boxed{\sqrt{%d}}" % (k * k), str(k)) for k in range(2, 12)]
    vs = grade_many(items, workers=2)
    assert len(vs) == len(items)
    assert [v.correct for v in vs[:50]] == [bool(k % 3) for k in range(50)]
    assert all(v.correct for v in vs[50:])
    with pytest.raises(ValueError):
        grade_many(items, truncated=[False])


def test_short_lived_threads_do_not_kill_the_workers(pool):
    """Workers die with the thread that started them; they are all started from one long-lived thread."""
    import os
    import signal

    def step():
        os.kill(pool._workers[0].proc.pid, signal.SIGKILL)  # its replacement starts while this thread runs
        time.sleep(0.2)
        assert all(v.correct for v in grade_many([(r"\boxed{\sqrt{%d}}" % (k * k), str(k)) for k in range(2, 9)]))
        time.sleep(2.5)  # let the new spare finish starting (it arms PR_SET_PDEATHSIG) before we exit

    th = threading.Thread(target=step)
    th.start()
    th.join(60)
    time.sleep(0.5)
    assert all(w.proc.poll() is None for w in pool._workers + pool._spares)
