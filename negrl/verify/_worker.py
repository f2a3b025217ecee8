"""Sandbox worker process: ``python -c 'from negrl.verify._worker import main; main()'``.

Protocol: one JSON object per line on stdin (``{"id", "op", ...}``), one JSON object per line on the
original stdout (``{"id", "ok", "result"|"error"}``). JSON, not pickle, so that a worker that was
somehow subverted still cannot run code in the parent.

Before serving, the worker (1) sets resource limits (address space, no file writes, no core dumps,
no child processes), (2) asks the kernel to kill it when the parent dies, (3) imports and warms up
everything it needs, then (4) installs an audit hook that refuses process creation, network, file
writes, ``ctypes``, and any ``compile``/``exec`` of code that does not come from an installed
module file, i.e. ``eval``/``exec``/``sympify`` of a string raise instead of running.
"""

from __future__ import annotations

import json
import os
import signal
import sys

_BLOCKED_PREFIXES = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "subprocess.", "pty.", "socket.", "ctypes.", "shutil.", "webbrowser.", "urllib.", "http.", "ftplib.",
    "smtplib.", "os.remove", "os.unlink", "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.makedirs",
    "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "os.putenv", "os.unsetenv", "os.chdir",
    "os.chroot", "os.setxattr", "os.removexattr", "os.utime", "sys.addaudithook", "sqlite3.",
    "resource.setrlimit", "resource.prlimit", "builtins.input", "pickle.find_class",
    "import_module_from_spec_evil",
)


BLOCKED: list[str] = []
"""Events the audit hook refused while serving the current task (reported back, then cleared)."""


def _limit_resources(memory_mb: int) -> None:
    import resource

    def _set(which, value):
        try:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY and value > hard:
                value = hard
            resource.setrlimit(which, (value, hard if hard != resource.RLIM_INFINITY else value))
        except (ValueError, OSError):
            pass

    if memory_mb > 0:
        _set(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    _set(resource.RLIMIT_CORE, 0)
    _set(resource.RLIMIT_FSIZE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        _set(resource.RLIMIT_NPROC, 0)
    except AttributeError:
        pass


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _install_audit_hook() -> None:
    allowed_roots = tuple(
        sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)} |
               {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)})
    )

    def allowed_file(path) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        path = os.fsdecode(path)
        if path.startswith("<frozen "):
            return True
        real = os.path.realpath(path)
        return real.startswith(allowed_roots) and real.endswith((".py", ".pyc", ".so", ".pyd", ".pth"))

    trusted_codegen = {("sympy/polys/monomials.py", "_build"), ("/dataclasses.py", "_create_fn"),
                       ("/collections/__init__.py", "namedtuple")}

    def trusted_caller() -> bool:
        """Library code generators whose source never contains input text: sympy's monomial helpers,
        ``dataclasses`` and ``namedtuple`` (used by modules imported after the hook, e.g. Math-Verify)."""
        f = sys._getframe(2)
        code = f.f_code
        return any(code.co_filename.endswith(fn) and code.co_name == name for fn, name in trusted_codegen)

    def refuse(event: str, what: str):
        if len(BLOCKED) < 20:
            BLOCKED.append(event)
        raise PermissionError(f"sandbox: {what} is not allowed")

    def hook(event: str, args) -> None:
        if event.startswith(_BLOCKED_PREFIXES):
            refuse(event, event)
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
            if writing or (not isinstance(path, int) and not allowed_file(path)):
                refuse(event, "open")
        elif event == "compile":
            filename = args[1] if len(args) > 1 else None
            if not allowed_file(filename) and not trusted_caller():
                refuse(event, "compiling source")
        elif event == "exec":
            code = args[0] if args else None
            filename = getattr(code, "co_filename", None)
            if not allowed_file(filename) and not trusted_caller():
                refuse(event, "exec")

    sys.addaudithook(hook)


def _handle(req: dict):
    op = req.get("op")
    if op == "equiv":
        from negrl.verify.symbolic import equivalent_normalized

        last = (False, "unparseable", -1)
        for k, (gold, pred) in enumerate(req["pairs"]):
            ok, reason = equivalent_normalized(gold, pred)
            if ok:
                return {"correct": True, "reason": "match", "index": k}
            if reason == "mismatch" or last[1] != "mismatch":
                last = (False, reason, k)
        return {"correct": False, "reason": last[1], "index": last[2]}
    if op == "math_verify":
        from negrl.verify.secondary import make_math_verify_eval_free, math_verify_grade

        make_math_verify_eval_free()
        return {"correct": math_verify_grade(req["response"], req["gold"])}
    if op == "ping":
        return {"pong": True}
    if op == "selftest":  # used by the tests: prove that the hook blocks these from inside a worker
        results = {}
        for name, fn in _SELFTESTS.items():
            try:
                fn(req.get("arg", ""))
                results[name] = "ran"
            except Exception as exc:  # noqa: BLE001
                results[name] = type(exc).__name__
        return results
    raise ValueError(f"unknown op {op!r}")


_SELFTESTS = {
    "eval": lambda a: eval("1+1"),  # noqa: S307
    "sympify": lambda a: __import__("sympy").sympify("1+1"),
    "system": lambda a: os.system("true"),  # noqa: S605
    "open_write": lambda a: open(a or "/tmp/negrl_sandbox_probe", "w"),
    "open_read": lambda a: open("/etc/passwd").read(),
    "socket": lambda a: __import__("socket").socket(),
    "fork": lambda a: os.fork(),
}


def _warm_up() -> None:
    """Import the parser and build its tables (the first parse is slow); Math-Verify is imported on
    first use. Kept short: a killed worker's replacement must be ready quickly."""
    from negrl.verify import safe_latex, symbolic

    safe_latex.patch_library_numbers()
    try:
        symbolic.equivalent_normalized(r"\frac{1}{2}", "x+1")
    except Exception:  # noqa: BLE001
        pass


def main() -> None:
    memory_mb = int(os.environ.get("NEGRL_VERIFY_MEMORY_MB", "2048"))
    proto_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    proto_in = sys.stdin.buffer
    _die_with_parent()
    try:
        os.chdir("/")
    except OSError:
        pass
    _limit_resources(memory_mb)
    sys.setrecursionlimit(3000)
    _warm_up()
    _install_audit_hook()
    import sympy.core.cache as sympy_cache

    proto_out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    served = 0
    for line in proto_in:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        BLOCKED.clear()
        try:
            out = {"id": req.get("id"), "ok": True, "result": _handle(req)}
        except MemoryError:
            out = {"id": req.get("id"), "ok": False, "error": "MemoryError"}
        except RecursionError:
            out = {"id": req.get("id"), "ok": False, "error": "RecursionError"}
        except BaseException as exc:  # noqa: BLE001
            out = {"id": req.get("id"), "ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        if BLOCKED:
            out["blocked"] = list(BLOCKED)
        proto_out.write(json.dumps(out) + "\n")
        served += 1
        if served % 500 == 0:
            sympy_cache.clear_cache()


if __name__ == "__main__":
    main()
