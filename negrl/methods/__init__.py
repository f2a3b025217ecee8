"""Loss and advantage methods of the benchmark (methods.md): a registry by name, one file per family.

    >>> from negrl.methods import available_methods, get_method
    >>> "lens" in available_methods()
    True
    >>> method = get_method("lens", alpha=0.25)
    >>> loss, diagnostics = method(batch)          # doctest: +SKIP

Trainer flow per rollout step (C5, C8): ``prep = method.prepare(rollout_batch)`` once (no grad); for each
optimizer mini-batch ``rows``: ``mb = rollout_batch.select(rows)``, ``den = method.aggregation_denominator(mb)``,
and for each micro-batch ``mrows`` of it: ``loss, diag = method.loss(mb.select(mrows).with_logp(logp),
prep.select(rows[mrows]), denominator=den)``; ``loss.backward()``.
"""

from negrl.methods.batch import GroupSizeError, Prepared, RolloutBatch
from negrl.methods.registry import (
    CommonOptions,
    Method,
    Paper,
    available_methods,
    get_method,
    method_class,
    register,
)

# Importing a family's module registers its methods.
from negrl.methods import crf, dapo, grpo, lens, nft, nsr, reinforce_pp, rft, rloo  # noqa: E402,F401  isort: skip

__all__ = [
    "CommonOptions",
    "GroupSizeError",
    "Method",
    "Paper",
    "Prepared",
    "RolloutBatch",
    "available_methods",
    "get_method",
    "method_class",
    "register",
]
