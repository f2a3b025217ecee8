"""The rollout engine interface shared by training and evaluation.

Every backend (transformers in ``hf.py``, vLLM in ``vllm.py``) turns a list of prompt strings into
``n`` sampled completions each, with the same output fields, so the training loop and the evaluation
stage never care which backend ran.

    >>> from negrl.rollout import make_engine, SamplingParams
    >>> engine = make_engine("hf", model=model, tokenizer=tokenizer)            # doctest: +SKIP
    >>> outs = engine.generate(["Compute 1+1."], SamplingParams(n=4, max_tokens=32))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; mapped 1:1 onto every backend's own parameters."""

    n: int = 1
    """Samples per prompt."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy."""
    top_p: float = 1.0
    """Nucleus mass; training rollouts use 1.0 so the sampler is exactly softmax(logits / T)."""
    max_tokens: int = 64
    """Maximum new tokens per completion; a completion that reaches it without EOS is truncated."""
    seed: int = 0
    """Seed for the sampler's random stream; the same seed gives the same completions."""
    stop: tuple[str, ...] = ()
    """Extra stop strings (EOS always stops)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")


@dataclass
class Completion:
    """One sampled response to one prompt."""

    prompt_index: int
    """Position of the prompt in the list given to ``generate``."""
    sample_idx: int
    """0..n-1 within that prompt."""
    prompt_token_ids: list[int]
    """The prompt as the engine tokenized it (no padding)."""
    token_ids: list[int]
    """Response tokens, including the EOS token when the response stopped on it; no padding."""
    text: str
    """Decoded response without special tokens."""
    finish_reason: str
    """``"stop"`` (EOS or a stop string) or ``"length"`` (hit ``max_tokens``)."""
    truncated: bool
    """True exactly when ``finish_reason == "length"`` (methods.md C2: reward 0)."""
    sampler_logprobs: list[float] | None = field(default=None, repr=False)
    """The sampler's own log-probs of ``token_ids`` when the backend provides them; diagnostics only
    (methods.md C4: the trainer always recomputes log-probs)."""


@runtime_checkable
class RolloutEngine(Protocol):
    """What the training loop and the evaluation stage need from a backend."""

    name: str

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Completion]:
        """Sample ``params.n`` completions per prompt; ordered by prompt, then sample index."""
        ...

    def sync_weights(self, model: Any) -> None:
        """Make the engine sample from ``model``'s current weights (in place; no disk round trip)."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...
