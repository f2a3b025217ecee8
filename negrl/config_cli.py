"""``negrl config-schema`` (regenerate the Snakemake schema) and ``negrl check-config``."""

from __future__ import annotations

import argparse
from pathlib import Path

from negrl.config import load_config
from negrl.config_schema import schema_yaml

SCHEMA_PATH = Path("workflow/schemas/config.schema.yaml")


def run_schema(args: argparse.Namespace) -> int:
    text = schema_yaml()
    if args.write:
        Path(args.write).write_text(text)
        print(f"config-schema: wrote {args.write}")
    else:
        print(text, end="")
    return 0


def run_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from negrl.methods.from_config import check_methods

    check_methods(config)
    print(f"{args.config}: ok ({len(config.methods)} methods x {len(config.seeds)} seeds)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("config-schema", help="print the JSON schema generated from negrl/config.py")
    parser.add_argument("--write", help=f"write it to this file (e.g. {SCHEMA_PATH})")
    parser.set_defaults(func=run_schema)
    check = subparsers.add_parser("check-config", help="validate a config file and its method options")
    check.add_argument("--config", required=True)
    check.set_defaults(func=run_check)
