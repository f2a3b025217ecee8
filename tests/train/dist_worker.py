"""One training run for the data-parallel tests, launched with ``torchrun`` (N ranks) or plain ``python`` (1).

The rollout is replaced by a deterministic fake engine whose responses depend only on the prompt and the
sample index (so 1 and 2 processes train on the same global batch) and the model runs in float64 (so the
comparison is not blurred by fp32 summation order); everything else is the real loop: verification, the
all-gather of groups, global ``prepare``, the split of mini-batches over ranks, DDP/FSDP, the optimizer.

    python tests/train/dist_worker.py CONFIG TRAIN_PARQUET BASE_MODEL OUT_DIR METHOD

``NEGRL_TEST_DEVICE=cuda`` runs it on GPUs (one per rank, NCCL) instead of the CPU (gloo).
"""

from __future__ import annotations

import hashlib
import os
import sys

import negrl.train.loop as loop
from negrl.config import load_config
from negrl.data.cli import read_problems
from negrl.data.prompts import render_prompt
from negrl.rollout.base import Completion


class FakeEngine:
    """Half of the responses (chosen by a hash of prompt and sample index) give the right answer."""

    name = "fake"

    def __init__(self, answers: dict[str, str], tokenizer) -> None:
        self.answers, self.tokenizer = answers, tokenizer

    def generate(self, prompts, params):
        out = []
        for pi, prompt in enumerate(prompts):
            prompt_ids = self.tokenizer(prompt)["input_ids"]
            for s in range(params.n):
                h = hashlib.sha256(f"{prompt}/{s}".encode()).digest()
                text = f"\\boxed{{{self.answers[prompt]}}}" if h[0] % 2 else "9" * (1 + h[1] % 9)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                truncated = len(ids) >= params.max_tokens
                ids = ids[: params.max_tokens] if truncated else ids + [self.tokenizer.eos_token_id]
                out.append(Completion(pi, s, prompt_ids, ids, text, "length" if truncated else "stop", truncated))
        return out

    def sync_weights(self, model) -> None:
        pass

    def close(self) -> None:
        pass


def main(config_path: str, train_path: str, base_model: str, out_dir: str, method: str) -> None:
    config = load_config(config_path)
    problems = read_problems(train_path)
    original_load = loop.load_model_and_tokenizer

    def load_float64(path, dtype, device):
        model, tokenizer = original_load(path, dtype, device)
        return model.double(), tokenizer

    def make_fake_engine(backend, *, model, tokenizer, **_):
        answers = {render_prompt(p["problem"], config.data.prompt_template, tokenizer): p["answer"]
                   for p in problems}
        return FakeEngine(answers, tokenizer)

    loop.load_model_and_tokenizer = load_float64
    loop.make_engine = make_fake_engine
    loop.train(config, method, 5, base_model, problems, out_dir,
               device=os.environ.get("NEGRL_TEST_DEVICE", "cpu"), show_progress=False)


if __name__ == "__main__":
    main(*sys.argv[1:6])
