"""A method as a config sets it up, and the check the pipeline runs before any job starts.

``method_options.<name>`` holds a method's own options; the trainer-wide ``train.kl_beta`` and
``train.dynamic_sampling`` are defaults a method's own options override, and ``rollout.max_tokens`` is every
method's ``max_response_length``. Options of methods that are not in ``methods`` are allowed (a
``--config methods=[grpo]`` run keeps the file's ``lens`` options) but still checked, so a misspelled name
or option stops the run before the warm start, not inside a training job.

    >>> from negrl.config import from_dict
    >>> method_from_config(from_dict({"method_options": {"lens": {"alpha": 0.5}}}), "lens").options.alpha
    0.5
"""

from __future__ import annotations

from negrl.config import Config
from negrl.errors import ConfigError
from negrl.methods.registry import available_methods, get_method


def method_from_config(config: Config, method_name: str):
    """The configured method (its options, the trainer-wide defaults), checked against ``train.n``."""
    options = dict(config.method_options.get(method_name, {}))
    options.setdefault("max_response_length", config.rollout.max_tokens)
    if config.train.kl_beta:
        options.setdefault("kl_beta", config.train.kl_beta)
    if config.train.dynamic_sampling is not None:
        options.setdefault("dynamic_sampling", config.train.dynamic_sampling)
    method = get_method(method_name, **options)
    method.validate_config(n=config.train.n)
    return method


def check_methods(config: Config) -> None:
    """Build every listed method and every method that has options: a bad name or option raises ConfigError."""
    known = available_methods()
    for name in config.method_options:
        if name not in known:
            raise ConfigError(f"key 'method_options.{name}': unknown method '{name}'; "
                              f"available: {', '.join(known)}")
    for name in dict.fromkeys([*config.methods, *config.method_options]):
        method_from_config(config, name)
