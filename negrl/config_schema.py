"""The JSON schema of the config, generated from the dataclasses in ``negrl.config``.

``negrl config-schema --write workflow/schemas/config.schema.yaml`` writes it; Snakemake's ``validate``
reads it; a test checks the committed file is current. Field docstrings become descriptions.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

import yaml

from negrl.config import Config, to_dict



def json_schema() -> dict[str, Any]:
    schema = _schema_of(Config)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = "negrl configuration (generated from negrl/config.py by `negrl config-schema`)"
    return schema


def _schema_of(tp: Any, description: str | None = None) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    out: dict[str, Any]
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        docs = _field_docs(tp)
        props = {f.name: _schema_of(hints[f.name], docs.get(f.name)) for f in dataclasses.fields(tp)}
        defaults = to_dict(tp())
        for name, prop in props.items():
            if "properties" not in prop:
                prop["default"] = defaults[name]
        out = {"type": "object", "properties": props, "additionalProperties": False}
    elif origin in (typing.Union, types.UnionType):
        out = {"anyOf": [_schema_of(a) for a in args]}
    elif origin is Literal:
        out = {"enum": list(args)}
    elif origin is list:
        out = {"type": "array", "items": _schema_of(args[0])}
    elif origin is dict:
        out = {"type": "object"}
    elif tp is type(None):
        out = {"type": "null"}
    else:
        out = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
               str: {"type": "string"}}.get(tp, {})
    if description:
        out["description"] = description
    return out


def _field_docs(cls: type) -> dict[str, str]:
    """Field docstrings (the string literal after each field), read from the source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for prev, node in zip(body, body[1:]):
        if isinstance(prev, ast.AnnAssign) and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docs[prev.target.id] = " ".join(str(node.value.value).split())  # type: ignore[union-attr]
    return docs


def schema_yaml() -> str:
    header = "# Generated from negrl/config.py by `negrl config-schema`; do not edit by hand.\n"
    return header + yaml.safe_dump(json_schema(), sort_keys=False, width=110)
