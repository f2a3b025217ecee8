"""``negrl methods``: list every registered method with its paper and registry metadata.

    negrl methods            # a table
    negrl methods --json     # one JSON object per method
"""

from __future__ import annotations

import argparse
import json

from negrl.methods.registry import available_methods, get_method, method_class

COLUMNS = ("method", "paper", "arXiv", "requires_groups", "reward", "filter", "paper_loss_agg")


def method_rows() -> list[dict[str, str]]:
    """One row per registered method (defaults of its options)."""
    rows = []
    for name in available_methods():
        cls = method_class(name)
        # max_response_length only matters for options that need L_max; any value works for the metadata
        method = get_method(name, max_response_length=4096)
        rows.append({
            "method": name,
            "paper": cls.paper.short,
            "arXiv": cls.paper.arxiv,
            "requires_groups": str(cls.requires_groups),
            "reward": cls.reward_convention,
            "filter": method.filter_criterion if method.filters_groups else "off",
            "paper_loss_agg": cls.paper_loss_agg,
        })
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS), "  ".join("-" * widths[c] for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    rows = method_rows()
    if args.json:
        for row in rows:
            print(json.dumps({**row, "title": method_class(row["method"]).paper.title}))
    else:
        print(format_table(rows))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the registered RL methods and their papers")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    parser.set_defaults(func=run)
