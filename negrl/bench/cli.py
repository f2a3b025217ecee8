"""``negrl bench <what>``: throughput benchmarks. Each module in ``BENCH_MODULES`` exposes
``register(bench_subparsers)`` adding one benchmark subcommand."""

from __future__ import annotations

import importlib

BENCH_MODULES = (
    "negrl.bench.verify",
    "negrl.bench.rollout",
    "negrl.bench.train",
    "negrl.bench.methods",
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="throughput benchmarks (verifier, rollout, train step, methods)")
    bench_subparsers = parser.add_subparsers(dest="bench", metavar="<what>")
    for module_name in BENCH_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("negrl"):
                continue
            raise
        module.register(bench_subparsers)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
