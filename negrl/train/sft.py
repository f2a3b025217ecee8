"""Supervised warm start: fine-tune on worked solutions so the toy model follows the ``\\boxed{}`` format.

Loss is the token-mean negative log-likelihood of the solution (plus EOS) given the prompt; prompts are
not trained on. AdamW with linear warm-up and cosine decay to 10% of the peak rate.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from negrl.train.logprobs import pack_sequences, response_logprobs


def lr_factor(step: int, total: int, warmup: int, schedule: str = "cosine", final_ratio: float = 0.1) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _length_bucketed_batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random,
                             bucket_batches: int = 1) -> list[list[int]]:
    """One epoch of batches: shuffle, then sort each window of ``bucket_batches`` batches by length so a
    batch holds examples of similar length (less padding), and shuffle the batch order."""
    order = rng.sample(range(len(encoded)), len(encoded))
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order) - batch_size + 1, window):
        chunk = sorted(order[start : start + window], key=lambda i: len(encoded[i][0]) + len(encoded[i][1]))
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk) - batch_size + 1, batch_size))
    if not batches:  # fewer examples than one batch
        batches = [order]
    rng.shuffle(batches)
    return batches


def length_sorted_chunks(rows: list[int], lengths: list[int], micro_batch_size: int | None) -> list[list[int]]:
    """The rows of one batch as micro-batches of similar length (sorted, then cut every ``micro_batch_size``);
    one chunk of the rows as given when ``micro_batch_size`` is None or covers the batch."""
    if not micro_batch_size or micro_batch_size >= len(rows):
        return [list(rows)]
    ordered = sorted(rows, key=lambda i: lengths[i])
    return [ordered[k : k + micro_batch_size] for k in range(0, len(ordered), micro_batch_size)]


def supervised_warmstart(model, tokenizer, examples: list[tuple[str, str]], *, steps: int, batch_size: int,
                         lr: float, warmup_steps: int, weight_decay: float, seed: int, length_bucketing: int = 1,
                         micro_batch_size: int | None = None, log_path: Path | None = None,
                         show_progress: bool = True) -> list[dict]:
    """Train ``model`` in place on (prompt, solution) pairs; returns the per-step log.

    Each step's loss is the token mean over the whole batch; with ``micro_batch_size`` the batch runs as
    length-sorted micro-batches whose token sums are divided by the batch's token count, so the gradient is
    the whole batch's (up to float summation order) while padding shrinks to each micro-batch's longest row."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    encoded = [
        (tokenizer(prompt, add_special_tokens=False)["input_ids"],
         tokenizer(solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
        for prompt, solution in examples
    ]
    lengths = [len(prompt) + len(solution) for prompt, solution in encoded]
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps, warmup_steps))
    model.train()
    batches: list[list[int]] = []
    history = []
    log_file = open(log_path, "w") if log_path else None
    start = time.time()
    progress = tqdm(range(steps), desc="warm start", disable=not show_progress, mininterval=2)
    for step in progress:
        if not batches:
            batches = _length_bucketed_batches(encoded, batch_size, rng, length_bucketing)
        rows = batches.pop()
        batch_tokens = sum(len(encoded[i][1]) for i in rows)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        for chunk in length_sorted_chunks(rows, lengths, micro_batch_size):
            seqs = pack_sequences([encoded[i][0] for i in chunk], [encoded[i][1] for i in chunk],
                                  tokenizer.pad_token_id).to(device)
            token_logp, _ = response_logprobs(model, seqs)
            chunk_loss = -(token_logp.sum() / batch_tokens)
            chunk_loss.backward()
            loss = loss + chunk_loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        record = {"step": step + 1, "loss": loss.item(), "grad_norm": float(grad_norm),
                  "lr": scheduler.get_last_lr()[0], "elapsed_s": round(time.time() - start, 2)}
        history.append(record)
        if log_file:
            log_file.write(json.dumps(record) + "\n")
        if step % 20 == 0:
            progress.set_postfix(loss=f"{record['loss']:.3f}")
    if log_file:
        log_file.close()
    model.eval()
    return history
