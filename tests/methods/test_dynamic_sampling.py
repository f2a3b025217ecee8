"""Dynamic sampling (methods.md C11, §3.3): the group filter and the draw-until-enough loop."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from negrl.errors import ConfigError
from negrl.train.dynamic_sampling import collect_filtered_groups, group_passes_filter


@dataclass
class FakeGroup:
    uid: int
    rewards: list[float]


def groups_with_sums(sums, G=4, first_uid=0):
    return [FakeGroup(first_uid + k, [1.0] * s + [0.0] * (G - s)) for k, s in enumerate(sums)]


def test_filter_example_of_dapo_section():
    groups = groups_with_sums([0, 4, 2, 1, 0, 3])
    assert [g.uid + 1 for g in groups if group_passes_filter(g.rewards, "mixed")] == [3, 4, 6]
    assert [g.uid + 1 for g in groups if group_passes_filter(g.rewards, "has_correct")] == [2, 3, 4, 6]
    assert all(group_passes_filter(g.rewards, None) for g in groups)
    assert not group_passes_filter([1.0], "mixed")  # a single response is never mixed
    with pytest.raises(ConfigError, match="criterion"):
        group_passes_filter([1, 0], "positive")


class Generator:
    """Serves pre-made generation batches and records how many prompts each call asked for."""

    def __init__(self, batches):
        self.batches, self.requests = list(batches), []

    def __call__(self, num_prompts):
        self.requests.append(num_prompts)
        return self.batches.pop(0)


def test_collect_stops_when_enough_and_discards_excess_in_generation_order():
    gen = Generator([groups_with_sums([0, 2, 4, 1, 0, 0], first_uid=0), groups_with_sums([3, 1, 2, 4, 2, 0], first_uid=6),
                     groups_with_sums([1] * 6, first_uid=12)])
    kept, diag = collect_filtered_groups(gen, train_prompts=3, gen_batch_multiplier=2, criterion="mixed")
    assert gen.requests == [6, 6]  # 2 x 3 prompts per draw, stopped after the second draw
    assert [g.uid for g in kept] == [1, 3, 6]  # generation order; groups 7, 8, 10 of the 2nd draw discarded
    assert diag["ds/num_gen_batches"] == 2 and diag["ds/kept_groups"] == 3
    assert diag["ds/budget_exhausted"] == 0 and diag["ds/skipped_step"] == 0
    # fractions over all 12 generated groups, and over the kept ones
    assert diag["batch/frac_all_wrong_groups"] == pytest.approx(4 / 12)
    assert diag["batch/frac_all_right_groups"] == pytest.approx(2 / 12)
    assert diag["batch/frac_mixed_groups"] == pytest.approx(6 / 12)
    assert diag["batch/frac_mixed_groups_kept"] == 1.0 and diag["batch/frac_all_wrong_groups_kept"] == 0.0


def test_budget_exhausted_trains_on_what_was_kept():
    gen = Generator([groups_with_sums([0, 0, 2]), groups_with_sums([4, 0, 0]), groups_with_sums([0, 1, 4])])
    kept, diag = collect_filtered_groups(gen, train_prompts=3, gen_batch_multiplier=1, max_num_gen_batches=3,
                                         criterion="mixed")
    assert len(kept) == 2 and len(gen.requests) == 3
    assert diag["ds/budget_exhausted"] == 1 and diag["ds/skipped_step"] == 0 and diag["ds/kept_groups"] == 2


def test_nothing_kept_skips_the_step():
    gen = Generator([groups_with_sums([0, 0, 0])] * 2)
    kept, diag = collect_filtered_groups(gen, train_prompts=3, gen_batch_multiplier=1, max_num_gen_batches=2,
                                         criterion="has_correct")
    assert kept == [] and diag["ds/skipped_step"] == 1 and diag["ds/budget_exhausted"] == 1
    assert diag["batch/frac_all_wrong_groups"] == 1.0 and "batch/frac_mixed_groups_kept" not in diag


def test_has_correct_keeps_all_right_groups():
    gen = Generator([groups_with_sums([4, 0, 1, 4, 2, 0])])
    kept, _ = collect_filtered_groups(gen, train_prompts=2, gen_batch_multiplier=3, criterion="has_correct")
    assert [g.uid for g in kept] == [0, 2]


def test_unknown_criterion_is_a_config_error():
    with pytest.raises(ConfigError, match="criterion"):
        collect_filtered_groups(Generator([]), train_prompts=2, criterion=None)
