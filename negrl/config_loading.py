"""YAML -> ``Config``: key-by-key type checks, ``--config`` retyping, and range checks.

Every error is a ``ConfigError`` naming the file, the dotted key and what was expected. Import these from
``negrl.config`` (which re-exports them) or from here.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from negrl.config import Config
from negrl.errors import ConfigError


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``path`` (YAML) into a ``Config``; ``overrides`` is a nested dict merged on top."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if overrides:
        raw = _merge(raw, overrides)
    return from_dict(raw, source=str(path))


def retype_command_line(overrides: dict[str, Any]) -> dict[str, Any]:
    """Snakemake reads ``--config key=value`` with YAML's BaseLoader, so every scalar inside a value arrives
    as a string (``train='{steps: 50}'`` gives ``{'steps': '50'}``). Re-read each string where the typed
    config expects something else: integers, numbers (``1e-4`` too), booleans, null; strings stay strings.

        >>> retype_command_line({"train": {"steps": "50", "lr": "1e-4"}, "seeds": ["1", "2"], "experiment": "7"})
        {'train': {'steps': 50, 'lr': 0.0001}, 'seeds': [1, 2], 'experiment': '7'}
    """
    return _retype(Config, overrides)


def _retype(tp: Any, value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, dict):
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            return {k: _retype(hints.get(k, Any), v) for k, v in value.items()}
        return {k: _retype(args[1] if origin is dict else Any, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_retype(args[0] if origin is list else Any, v) for v in value]
    if not isinstance(value, str):
        return value
    options = [a for a in args if a is not type(None)] if origin in (typing.Union, types.UnionType) else [tp]
    if type(None) in args and value in ("null", "~", "None"):
        return None
    if any(o is str or (typing.get_origin(o) is Literal and value in typing.get_args(o)) for o in options):
        return value
    if float in options:
        try:
            return float(value)
        except ValueError:
            pass
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    config = _build(Config, raw, prefix="", source=source)
    _check_values(config, source)
    return config


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}'; allowed keys under {where}: {', '.join(fields)}"
        )
    values = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing required key '{key}' ({_describe(hints[name])})")
            continue
        values[name] = _coerce(hints[name], raw[name], key, source)
    return cls(**values)


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", source)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key, source)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{source}: key '{key}': expected {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: key '{key}': expected one of {allowed}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{key}': expected a list ({_describe(tp)}), got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}': expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}", source) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}': expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{key}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (YAML reads 1e-4 as a string: write 1.0e-4)" if isinstance(value, str) else ""
            raise ConfigError(f"{source}: key '{key}': expected a number, got {value!r}{hint}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}': expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null", Any: "any value"}.get(tp, str(tp))


def _check_values(config: Config, source: str) -> None:
    """Range checks the types alone cannot express."""
    positive = {
        "train.steps": config.train.steps, "train.prompts_per_step": config.train.prompts_per_step,
        "train.n": config.train.n, "train.mini_batches": config.train.mini_batches,
        "train.ppo_epochs": config.train.ppo_epochs, "train.micro_batch_size": config.train.micro_batch_size,
        "rollout.max_tokens": config.rollout.max_tokens, "eval.n_samples": config.eval.n_samples,
        "verify.workers": config.verify.workers, "warmstart.batch_size": config.warmstart.batch_size,
        "warmstart.micro_batch_size": config.warmstart.micro_batch_size or 1,
        "data.arith.test_per_level": config.data.arith.test_per_level,
        "data.arith.train_per_level": config.data.arith.train_per_level,
        "train.grad_noise_warn_window": config.train.grad_noise_warn_window,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{source}: key '{key}': expected an integer >= 1, got {value}")
    if config.train.logprob_chunk_tokens < 1 or (config.train.micro_batch_tokens or 1) < 1:
        raise ConfigError(f"{source}: key 'train.logprob_chunk_tokens'/'train.micro_batch_tokens': expected >= 1")
    if config.train.grad_noise_check_every < 0:
        raise ConfigError(f"{source}: key 'train.grad_noise_check_every': expected an integer >= 0 (0 = off), "
                          f"got {config.train.grad_noise_check_every}")
    if (config.train.gpus or 0) < 0:
        raise ConfigError(f"{source}: key 'train.gpus': expected an integer >= 0 or null")
    if config.train.prompts_per_step % config.train.mini_batches:
        raise ConfigError(
            f"{source}: key 'train.mini_batches': {config.train.mini_batches} must divide "
            f"train.prompts_per_step ({config.train.prompts_per_step}) so mini-batches hold whole groups"
        )
    if not 0 < config.rollout.top_p <= 1 or not 0 < config.eval.top_p <= 1:
        raise ConfigError(f"{source}: key 'rollout.top_p'/'eval.top_p': expected a value in (0, 1]")
    if config.rollout.temperature <= 0:
        raise ConfigError(f"{source}: key 'rollout.temperature': training needs a temperature > 0")
    if config.eval.temperature == 0 and config.eval.n_samples != 1:
        raise ConfigError(f"{source}: key 'eval.n_samples': greedy evaluation (temperature 0) needs n_samples 1")
    if not config.seeds:
        raise ConfigError(f"{source}: key 'seeds': expected at least one seed")
    if len(set(config.methods)) != len(config.methods) or not config.methods:
        raise ConfigError(f"{source}: key 'methods': expected a non-empty list of distinct method names")
    if not 0 < config.report.confidence < 1:
        raise ConfigError(f"{source}: key 'report.confidence': expected a value in (0, 1)")
    reference = config.report.reference_method
    if reference == "base" or not re.fullmatch(r"[A-Za-z0-9_]+", reference):
        raise ConfigError(
            f"{source}: key 'report.reference_method': expected a method name (letters, digits, _) other than "
            f"'base' (every method is already compared with base), got {reference!r}"
        )
