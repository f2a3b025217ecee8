"""Dynamic sampling (methods.md C11): keep drawing prompts until enough groups pass the method's filter.

DAPO (arXiv 2503.14476), NFT and RFT train only on groups whose rewards carry signal. Per rollout step,
up to ``max_num_gen_batches`` times: draw ``gen_batch_multiplier * train_prompts`` new prompts, sample and
verify their groups (the trainer's ``draw_and_generate``), and keep, in generation order, the groups that
pass the filter; stop once ``train_prompts`` are kept and discard the excess (not re-queued). A budget that
runs out with k < train_prompts kept groups trains on k (``ds/budget_exhausted = 1``); k = 0 skips the
optimizer step (``ds/skipped_step = 1``). The criterion uses correctness, never a shaped reward.

This is a pure function of the trainer's callback: a group is any object with a ``rewards`` sequence of
binary correctness values (the trainer passes its own group objects and gets them back).

    >>> from types import SimpleNamespace as G
    >>> batches = iter([[G(rewards=[0, 0]), G(rewards=[1, 0])], [G(rewards=[0, 1]), G(rewards=[1, 1])]])
    >>> kept, diag = collect_filtered_groups(lambda n: next(batches), train_prompts=2, gen_batch_multiplier=1,
    ...                                      criterion="mixed")
    >>> [g.rewards for g in kept], diag["ds/num_gen_batches"], diag["ds/budget_exhausted"]
    ([[1, 0], [0, 1]], 2.0, 0.0)
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Protocol, Sequence, TypeVar

from negrl.errors import ConfigError

Criterion = Literal["mixed", "has_correct"]
CRITERIA = ("mixed", "has_correct")


class Group(Protocol):
    """What dynamic sampling needs from a group: its responses' binary correctness (1 = correct)."""

    rewards: Sequence[float]


GroupT = TypeVar("GroupT", bound=Any)


def group_passes_filter(rewards: Sequence[float], criterion: Criterion | None) -> bool:
    """``mixed``: 0 < sum r < G; ``has_correct``: sum r >= 1; None keeps every group."""
    num_correct = sum(1 for r in rewards if float(r) > 0.5)
    if criterion is None:
        return True
    if criterion == "mixed":
        return 0 < num_correct < len(rewards)
    if criterion == "has_correct":
        return num_correct >= 1
    raise ConfigError(f"unknown dynamic-sampling criterion {criterion!r}; use one of {', '.join(CRITERIA)}")


def group_fractions(groups: Sequence[Group], suffix: str = "") -> dict[str, float]:
    """batch/frac_{all_wrong,all_right,mixed}_groups{suffix} of a list of groups (empty list: no keys)."""
    if not groups:
        return {}
    counts = [(sum(1 for r in g.rewards if float(r) > 0.5), len(g.rewards)) for g in groups]
    all_wrong = sum(1 for c, _ in counts if c == 0)
    all_right = sum(1 for c, n in counts if c == n)
    num = len(groups)
    return {
        f"batch/frac_all_wrong_groups{suffix}": all_wrong / num,
        f"batch/frac_all_right_groups{suffix}": all_right / num,
        f"batch/frac_mixed_groups{suffix}": (num - all_wrong - all_right) / num,
    }


def collect_filtered_groups(
    draw_and_generate: Callable[[int], list[GroupT]],
    *,
    train_prompts: int,
    criterion: Criterion,
    gen_batch_multiplier: int = 3,
    max_num_gen_batches: int = 10,
) -> tuple[list[GroupT], dict[str, float]]:
    """Kept groups (at most ``train_prompts``, generation order) and the ``ds/*`` and group-fraction
    diagnostics: ``batch/frac_*_groups`` over every generated group, ``batch/frac_*_groups_kept`` over the
    kept ones."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown dynamic-sampling criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    if train_prompts < 1 or gen_batch_multiplier < 1 or max_num_gen_batches < 1:
        raise ConfigError("dynamic sampling needs train_prompts, gen_batch_multiplier, max_num_gen_batches >= 1")
    generated: list[GroupT] = []
    kept: list[GroupT] = []
    num_gen_batches = 0
    while num_gen_batches < max_num_gen_batches and len(kept) < train_prompts:
        groups = draw_and_generate(gen_batch_multiplier * train_prompts)
        num_gen_batches += 1
        generated.extend(groups)
        kept.extend(g for g in groups if group_passes_filter(g.rewards, criterion))
    kept = kept[:train_prompts]  # the excess is discarded, not re-queued
    diagnostics = {
        "ds/num_gen_batches": float(num_gen_batches),
        "ds/kept_groups": float(len(kept)),
        "ds/budget_exhausted": float(len(kept) < train_prompts),
        "ds/skipped_step": float(len(kept) == 0),
    }
    diagnostics.update(group_fractions(generated))
    diagnostics.update(group_fractions(kept, suffix="_kept"))
    return kept, diagnostics
