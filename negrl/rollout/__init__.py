"""Rollout engines: ``make_engine("hf" | "vllm", ...)`` returns a ``RolloutEngine``.

    >>> from negrl.rollout import make_engine, SamplingParams
    >>> engine = make_engine("hf", model=model, tokenizer=tokenizer, max_batch_size=256)  # doctest: +SKIP
    >>> outs = engine.generate(prompts, SamplingParams(n=8, temperature=1.0, max_tokens=64))  # doctest: +SKIP
    >>> engine.sync_weights(model)  # after every optimizer step                           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from negrl.rollout.base import Completion, RolloutEngine, SamplingParams
from negrl.rollout.sampling import logprob_mismatch

BACKENDS = ("hf", "vllm")


def make_engine(backend: str, **opts: Any) -> RolloutEngine:
    """The backend switch (config key ``rollout.backend``).

    ``hf``: ``HFEngine(model=..., tokenizer=..., model_path=..., max_batch_size=..., ...)``
    (``negrl.rollout.hf``). ``vllm``: ``VLLMEngine(model=..., tokenizer=..., model_path=...,
    gpu_memory_utilization=..., tensor_parallel_size=..., ...)`` (``negrl.rollout.vllm``).
    """
    if backend == "hf":
        from negrl.rollout.hf import HFEngine

        return HFEngine(**opts)
    if backend == "vllm":
        from negrl.rollout.vllm import VLLMEngine

        return VLLMEngine(**opts)
    raise ValueError(f"unknown rollout backend {backend!r}; expected one of {BACKENDS}")


def engine_options(rollout_config: Any, dtype: Any = None) -> dict[str, Any]:
    """The constructor options of the configured backend, from the ``rollout`` config section."""
    if rollout_config.backend == "hf":
        options: dict[str, Any] = {"max_batch_size": rollout_config.max_batch_size}
        if dtype is not None:
            options["dtype"] = dtype
        return options
    options = {"gpu_memory_utilization": rollout_config.gpu_memory_utilization,
               "tensor_parallel_size": rollout_config.tensor_parallel_size}
    if dtype is not None:  # vLLM takes dtype names ("bfloat16"), not torch dtypes
        options["dtype"] = str(dtype).removeprefix("torch.")
    return options


__all__ = ["BACKENDS", "Completion", "RolloutEngine", "SamplingParams", "engine_options", "logprob_mismatch",
           "make_engine"]
