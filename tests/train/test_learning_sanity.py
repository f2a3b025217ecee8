"""Learning sanity: through the real trainer, every method that learns from rewards must raise the training
reward from chance to >= 0.9, and the same run with its advantages negated must drive the reward to ~0.

Why. The golden tests check each method's formulas on fixed tensors, and ``test_every_method_trains`` checks
that one step runs. Neither shows that the whole chain -- rollout engine -> verifier -> ``Method.prepare`` /
``loss`` -> mini-batch update -> the engine sampling the new weights -- moves the policy *towards* reward. A
flipped sign, rewards attached to the wrong responses or an optimizer step that never happens pass those
tests and silently break training; each of the three, put into the real code, makes these tests fail
(checked: the sign flipped in ``GRPO.advantages`` -> grpo ends at 0.000; rewards rolled by one response in
``build_batch`` -> grpo, dr_grpo, lens and rft end at 0.000; no ``optimizer.step()`` -> chance, 0.097-0.109,
which also fails the negated test's 0.03). About 1-3 s per run on one CPU core.

The task. One problem whose gold answer is a single digit, so one generated token decides the reward. The
randomly initialised toy model (``negrl.models``, width 32, one layer, character tokenizer) is first
warm-started by ``negrl.train.sft`` on ``\\boxed{d}`` for every digit d equally often (the module fixture):
it then writes the format (10 tokens with EOS) reliably and picks the digit uniformly, so the first-step
reward is chance, 1/10 (measured 0.06-0.11 over training seeds 1-6). The runs then go through
``negrl.train.loop.train`` unchanged: hf rollout engine, the real verifier, metrics.jsonl.

Settings (measured over training seeds 1-6): 8 groups of n = 8 per step, lr 3e-3 after 5 warm-up steps.
Every method but nsr/w_reinforce (below) reaches a 5-step mean reward >= 0.9 at step 23-29 and ends at
0.956-0.995 (mean over steps 36-40). A higher lr is faster but near the edge: at 1e-2, 4 of 48 runs (12
methods x seeds 1-4) collapse to reward 0 for the rest of the run (one wrong digit made certain, or every
response truncated), and 3e-2 does so for grpo from step 4; 6e-3 had no collapse in those 48 runs.
Negated, every method falls to a mean reward <= 0.009 over steps 16-20 (from 0.06-0.14 over steps 1-3).
There is one problem only: conditioning on the prompt is beyond a few dozen steps of this model (with two
problems, two answers, grpo and lens stay at or below 0.51 over 50 steps: one digit for both at best).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from negrl.config import from_dict
from negrl.data.prompts import render_prompt
from negrl.methods import available_methods, get_method, method_class
from negrl.models import build_toy_model, build_toy_tokenizer
from negrl.train.loop import train
from negrl.train.sft import supervised_warmstart

ANSWER = "3"
PROBLEM = {"id": "digit-0", "problem": "Code A.", "answer": ANSWER, "level": 1, "subject": "toy",
           "solution": f"\\boxed{{{ANSWER}}}"}
SEED = 1
MAX_TOKENS = 12  # "\boxed{3}" + EOS is 10 tokens; DAPO's overlong penalty starts above 12 - int(0.2 * 12)
TRAIN = {"prompts_per_step": 8, "n": 8, "lr": 3.0e-3, "warmup_steps": 5, "checkpoint_every": 0,
         # dynamic sampling (dapo, nft, rft): one batch of 8 prompts per round, at most 3 rounds per step
         "gen_batch_multiplier": 1, "max_num_gen_batches": 3, "logging": {"tensorboard": False}}
STEPS = 40
NEGATED_STEPS = 20
LAST = 5  # the reward that is judged: the mean over the last LAST rollout steps (8 x 8 responses each)

# Negative-only methods (A = r - 1; W-REINFORCE A = 0.1 r - (1 - r)) put A < 0 on *every* token of a wrong
# response, the shared format tokens included, and nothing (or 0.1x) pulls those back up: measured without
# NTF, seeds 3 and 6 of 1-6 collapse for both (every response truncated, reward 0). Negative token filtering
# (methods.md §3.10) with keep 0.1 keeps the penalty on the one lowest-probability token of a wrong response,
# the wrong digit: all 6 seeds then reach a 5-step mean >= 0.9, later than the others (at step 28-32), so
# they get 50 steps (mean over steps 46-50: 0.972-0.997).
METHOD_OPTIONS = {"nsr": {"ntf_keep": 0.1}, "w_reinforce": {"ntf_keep": 0.1}}
METHOD_STEPS = {"nsr": 50, "w_reinforce": 50}

# Prepared.tensors entries that carry the advantage's sign into the loss: NFT's coefficients of its positive
# (SFT) and negative-likelihood terms. Every other method's loss reads Prepared.adv.
SIGNED_TENSORS = ("pos_coef", "neg_coef")


def negate_advantages(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Break the trainer on purpose: ``method``'s advantages (and the signed loss coefficients above) come out
    of ``prepare`` with the opposite sign, so every update pushes the policy away from reward."""
    cls = method_class(method)
    original = cls.advantages

    def negated(self, batch, groups):
        out = original(self, batch, groups)
        adv, tensors, diagnostics = out if isinstance(out, tuple) else (out, {}, {})
        return -adv, {k: -v if k in SIGNED_TENSORS else v for k, v in tensors.items()}, diagnostics

    monkeypatch.setattr(cls, "advantages", negated)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Width-32 matmuls run fastest on one thread; with torch's default (one per core) on a loaded 2-core
    machine this file took 710 s instead of 43 s (the threads spin, waiting on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory) -> Path:
    """The toy model, warm-started on the format with a uniformly random digit (chance 1/10)."""
    tokenizer = build_toy_tokenizer()
    model = build_toy_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                            intermediate_size=64, max_position=64, seed=0)
    prompt = render_prompt(PROBLEM["problem"], from_dict({}).data.prompt_template, tokenizer)
    examples = [(prompt, f"\\boxed{{{d}}}") for d in range(10)]
    history = supervised_warmstart(model, tokenizer, examples, steps=150, batch_size=10, lr=1e-2,
                                   warmup_steps=10, weight_decay=0.0, seed=0, show_progress=False)
    loss = history[-1]["loss"]  # floor: the digit's entropy ln 10 over 10 response tokens, 0.2303
    assert loss < 0.24, f"the warm start did not learn the format: loss {loss:.4f} (measured 0.2319)"
    path = tmp_path_factory.mktemp("digit") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run(method: str, model_dir: Path, out_dir: Path, steps: int) -> list[dict]:
    """``steps`` rollout steps of ``method`` through ``negrl.train.loop.train``; its metrics.jsonl rows."""
    raw = {"methods": [method], "train": {**TRAIN, "steps": steps}, "rollout": {"max_tokens": MAX_TOKENS},
           "verify": {"workers": 1}}
    if method in METHOD_OPTIONS:
        raw["method_options"] = {method: METHOD_OPTIONS[method]}
    train(from_dict(raw), method, SEED, model_dir, [PROBLEM], out_dir, device="cpu", show_progress=False)
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def rewards_text(rows: list[dict]) -> str:
    return " ".join(f"{row['reward/mean']:.2f}" for row in rows)


@pytest.mark.parametrize("method", available_methods())
def test_reward_rises_from_chance_to_0_9(method, digit_model, tmp_path):
    rows = run(method, digit_model, tmp_path, METHOD_STEPS.get(method, STEPS))
    rewards = [row["reward/mean"] for row in rows]
    assert rewards[0] <= 0.25, f"the task is not at chance (1/10) before training: {rewards_text(rows)}"
    final = float(np.mean(rewards[-LAST:]))
    assert final >= 0.9, (f"{method} did not learn a one-token answer: mean reward {final:.3f} over the last "
                          f"{LAST} steps (needs >= 0.9); per step: {rewards_text(rows)}")
    if get_method(method, max_response_length=MAX_TOKENS).filters_groups:
        # dynamic sampling ran (and drew more prompts when a round had too few mixed groups)
        assert all("ds/kept_groups" in row for row in rows)
        assert max(row["ds/num_gen_batches"] for row in rows) > 1


@pytest.mark.parametrize("method", available_methods())
def test_negated_advantages_make_the_reward_fall(method, digit_model, tmp_path, monkeypatch):
    negate_advantages(monkeypatch, method)
    rows = run(method, digit_model, tmp_path, NEGATED_STEPS)
    rewards = [row["reward/mean"] for row in rows]
    final = float(np.mean(rewards[-LAST:]))
    assert final <= 0.03, (f"{method} with negated advantages should unlearn the answer (chance: 0.1): mean "
                           f"reward {final:.3f} over the last {LAST} steps; per step: {rewards_text(rows)}")
