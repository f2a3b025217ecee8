"""``negrl <stage> ...``: one subcommand per pipeline stage; each Snakemake rule calls one of them.

Subcommands live beside the code they run: a module listed in ``COMMAND_MODULES`` exposes
``register(subparsers)``, which adds its subcommands with ``set_defaults(func=...)``. ``func(args)``
returns an exit code (or None for 0).

    negrl --help
    negrl verify-answer '\\frac12' '0.5'
"""

from __future__ import annotations

import argparse
import importlib
import sys

from negrl.errors import NegrlError

COMMAND_MODULES = (
    "negrl.config_cli",
    "negrl.data.cli",
    "negrl.models_cli",
    "negrl.train.cli",
    "negrl.rollout.cli",
    "negrl.verify.cli",
    "negrl.evaluate.cli",
    "negrl.report.cli",
    "negrl.methods.cli",
    "negrl.bench.cli",
    "negrl.launch",
)


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="negrl",
        description="negrl: benchmark RLVR methods that learn from wrong answers. "
        "Each subcommand is one pipeline stage (see the Snakefile).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>")
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
            if exc.name and exc.name.startswith("negrl"):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `launch` wraps every GPU-capable job of the pipeline: skip importing the other stages (~2 s of torch,
    # pandas, transformers) since the stage it runs imports what it needs
    parser = build_parser(("negrl.launch",) if argv[:1] == ["launch"] else COMMAND_MODULES)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except NegrlError as exc:
        print(f"negrl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("negrl: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
