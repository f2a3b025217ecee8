"""A persistent pool of sandboxed worker processes with a kill-based, per-item wall-clock timeout.

Workers are separate Python interpreters (``subprocess``, not ``fork``: safe to use from a process that
runs torch threads, and they never re-import the caller's ``__main__``), started once and reused across
calls. Each task is sent to one idle worker; if it has not answered by its deadline the worker is
SIGKILLed and replaced, and that task alone gets ``("timeout", None)``. A worker that dies (memory
limit, crash) gives ``("error", ...)`` for its task only. See ``_worker.py`` for what a worker may do.

    >>> pool = get_pool(2)                                                # doctest: +SKIP
    >>> pool.run([{"op": "ping"}], timeout=5.0)                           # doctest: +SKIP
    [('ok', {'pong': True})]
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DEFAULT_MEMORY_MB = 2048
STARTUP_TIMEOUT = 120.0
MAX_REPLY_BYTES = 32 * 1024 * 1024
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class _Worker:
    __slots__ = ("proc", "buf", "ready", "task", "deadline", "started", "sel_key")

    def __init__(self, memory_mb: int):
        env = dict(os.environ)
        env["NEGRL_VERIFY_MEMORY_MB"] = str(memory_mb)
        env["PYTHONPATH"] = _PKG_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cmd = [sys.executable]
        if sys.version_info >= (3, 11):
            cmd.append("-P")  # do not put the cwd on sys.path
        cmd += ["-c", "from negrl.verify._worker import main; main()"]
        stderr = None if os.environ.get("NEGRL_VERIFY_DEBUG") else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
            close_fds=True, start_new_session=True, cwd="/",
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = bytearray()
        self.ready = False
        self.task: int | None = None
        self.deadline = 0.0
        self.started = time.monotonic()

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def send(self, obj: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def read_lines(self) -> list[bytes] | None:
        """Complete lines available now; None on EOF (the worker died)."""
        try:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not chunk:
            return None
        self.buf += chunk
        if len(self.buf) > MAX_REPLY_BYTES:
            return None
        lines = []
        while True:
            k = self.buf.find(b"\n")
            if k < 0:
                break
            lines.append(bytes(self.buf[:k]))
            del self.buf[: k + 1]
        return lines


class SandboxPool:
    """Persistent workers; :meth:`run` maps tasks to results in order, one timeout per task."""

    def __init__(self, workers: int | None = None, memory_mb: int = DEFAULT_MEMORY_MB, spares: int = 1):
        self.size = workers or default_workers()
        self.memory_mb = memory_mb
        self.pid = os.getpid()
        self._workers: list[_Worker] = []
        self._spares: list[_Worker] = []
        self.spares = spares
        """Idle started workers kept ready to replace a killed one at once (so a timeout does not
        delay the next item by a worker's start-up time)."""
        self._lock = threading.Lock()
        self._next_id = 0
        self.kills = 0
        self.crashes = 0
        self.last_latencies: list[float] = []
        """Seconds from dispatch to result for each task of the last :meth:`run`."""
        self.blocked_events: list[str] = []
        """Audit-hook refusals seen in workers (normal inputs never trigger one; see _worker.py)."""

    # -- lifecycle -----------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        # Workers die with the *thread* that started them (PR_SET_PDEATHSIG), so all are started from
        # one long-lived thread: a caller may use grade_many from short-lived threads.
        return _spawner().submit(_Worker, self.memory_mb).result()

    def _take_spare(self) -> _Worker | None:
        """A started spare (ready ones first), removed from the spares."""
        live = [w for w in self._spares if w.proc.poll() is None]
        if not live:
            return None
        live.sort(key=lambda w: not w.ready)
        self._spares.remove(live[0])
        return live[0]

    def resize(self, workers: int) -> None:
        with self._lock:
            self.size = max(1, workers)
            while len(self._workers) > self.size:
                self._workers.pop().kill()

    def close(self) -> None:
        with self._lock:
            for w in self._workers + self._spares:
                w.kill()
            self._workers = []
            self._spares = []

    def warm(self, wait: bool = True, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the workers now (and wait until they are ready)."""
        self.run([{"op": "ping"}] * self.size if wait else [], timeout=timeout)

    # -- running -------------------------------------------------------------------------------
    def run(self, tasks: list[dict], timeout: float) -> list[tuple[str, object]]:
        """Results in task order: ``("ok", result)``, ``("timeout", None)`` or ``("error", message)``."""
        with self._lock:
            return self._run(tasks, timeout)

    def _run(self, tasks: list[dict], timeout: float) -> list[tuple[str, object]]:
        n = len(tasks)
        sent_at = [0.0] * n
        latencies = [0.0] * n
        results: list[tuple[str, object] | None] = [None] * n
        pending = deque(range(n))
        self._workers = [w for w in self._workers if w.proc.poll() is None or w.task is not None]
        self._spares = [w for w in self._spares if w.proc.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(self._take_spare() or self._spawn())
        while len(self._spares) < self.spares:
            self._spares.append(self._spawn())
        ids: dict[int, int] = {}
        startup_failures = 0
        sel = selectors.DefaultSelector()
        registered: dict[int, _Worker] = {}

        def register(w: _Worker) -> None:
            sel.register(w.proc.stdout.fileno(), selectors.EVENT_READ, w)
            registered[id(w)] = w

        def unregister(w: _Worker) -> None:
            if id(w) in registered:
                try:
                    sel.unregister(w.proc.stdout.fileno())
                except (KeyError, ValueError, OSError):
                    pass
                del registered[id(w)]

        def replace(w: _Worker) -> None:
            """Kill w; a ready spare takes its place at once, and a new spare starts."""
            unregister(w)
            w.kill()
            if w in self._spares:
                self._spares.remove(w)
            else:
                self._workers[self._workers.index(w)] = self._take_spare() or self._spawn()
            while len(self._spares) < self.spares:
                self._spares.append(self._spawn())
            for x in self._workers + self._spares:
                if id(x) not in registered:
                    register(x)

        for w in self._workers + self._spares:
            register(w)
        try:
            while pending or any(w.task is not None for w in self._workers):
                for w in list(self._workers):
                    if w.ready and w.task is None and pending:
                        if w.proc.poll() is not None:  # died while idle: not the fault of a task
                            replace(w)
                            continue
                        t = pending.popleft()
                        self._next_id += 1
                        ids[self._next_id] = t
                        msg = dict(tasks[t])
                        msg["id"] = self._next_id
                        w.task = t
                        sent_at[t] = time.monotonic()
                        w.deadline = sent_at[t] + timeout
                        if not w.send(msg):  # the worker was gone before it got the task: retry it
                            ids.pop(self._next_id, None)
                            w.task = None
                            pending.appendleft(t)
                            replace(w)
                now = time.monotonic()
                deadlines = [w.deadline for w in self._workers if w.task is not None]
                deadlines += [w.started + STARTUP_TIMEOUT for w in self._workers if not w.ready]
                wait = max(0.0, min(deadlines) - now) if deadlines else 0.05
                events = sel.select(timeout=min(wait, 1.0) + 0.001)
                for key, _ in events:
                    w = key.data
                    if id(w) not in registered:
                        continue
                    lines = w.read_lines()
                    if lines is None:  # died
                        if w.task is not None:
                            results[w.task] = ("error", "worker died (memory limit or crash)")
                            latencies[w.task] = time.monotonic() - sent_at[w.task]
                            w.task = None
                            self.crashes += 1
                        elif not w.ready:
                            startup_failures += 1
                            if startup_failures >= 3:
                                raise RuntimeError("negrl.verify: sandbox workers fail to start; "
                                                   "run with NEGRL_VERIFY_DEBUG=1 to see their stderr")
                        replace(w)
                        continue
                    for line in lines:
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            continue
                        if not isinstance(msg, dict):
                            continue
                        if msg.get("ready"):
                            w.ready = True
                            continue
                        t = ids.pop(msg.get("id"), None)
                        if t is None or t != w.task:
                            continue
                        w.task = None
                        latencies[t] = time.monotonic() - sent_at[t]
                        if msg.get("blocked") and len(self.blocked_events) < 1000:
                            self.blocked_events.extend(str(e) for e in msg["blocked"])
                        if msg.get("ok"):
                            results[t] = ("ok", msg.get("result"))
                        else:
                            results[t] = ("error", str(msg.get("error"))[:300])
                now = time.monotonic()
                for w in list(self._workers):
                    if w.task is not None and now > w.deadline:
                        results[w.task] = ("timeout", None)
                        latencies[w.task] = now - sent_at[w.task]
                        w.task = None
                        self.kills += 1
                        replace(w)
                    elif not w.ready and now > w.started + STARTUP_TIMEOUT:
                        raise RuntimeError("negrl.verify: sandbox worker did not start in time")
        except BaseException:
            # leave no worker in an unknown state (e.g. KeyboardInterrupt mid-task)
            for w in self._workers:
                if w.task is not None:
                    w.kill()
            self._workers = [w for w in self._workers if w.task is None and w.proc.poll() is None]
            raise
        finally:
            sel.close()
            self.last_latencies = latencies
        return [r if r is not None else ("error", "not run") for r in results]


_POOL: SandboxPool | None = None
_POOL_LOCK = threading.Lock()
_SPAWNER: tuple[int, ThreadPoolExecutor] | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> ThreadPoolExecutor:
    """One long-lived thread per process that starts all workers."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None or _SPAWNER[0] != os.getpid():
            _SPAWNER = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="negrl-verify-spawn"))
        return _SPAWNER[1]


def get_pool(workers: int | None = None) -> SandboxPool:
    """The process-wide pool (created lazily, recreated after a fork, resized on request)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = SandboxPool(workers, memory_mb=int(os.environ.get("NEGRL_VERIFY_MEMORY_MB",
                                                                       DEFAULT_MEMORY_MB)))
        elif workers and workers != _POOL.size:
            _POOL.resize(workers)
        return _POOL


def shutdown_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None


atexit.register(shutdown_pool)
