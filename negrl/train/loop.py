"""The online RL loop: sample prompts -> rollouts (G per prompt) -> verify -> method -> optimizer steps.

One call of ``train`` runs one (method, seed) pair and writes under ``out_dir``:
``metrics.jsonl`` (one JSON object per rollout step, methods.md §5 keys), ``checkpoints/`` (resumable),
and ``model/`` (the final policy, ``save_pretrained``), plus ``provenance.json``.

Per rollout step (methods.md C4, C5, C8): old log-probs are recomputed once by the trainer; the method's
``prepare`` runs once on the full rollout batch; the batch is split into ``mini_batches`` of whole groups
(seeded shuffle) for ``ppo_epochs`` passes; each mini-batch's loss denominator is fixed before its
micro-batches run backward.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from negrl.config import Config, to_dict
from negrl.data.prompts import render_prompt
from negrl.errors import ConfigError
from negrl.methods import get_method
from negrl.models import DTYPES, load_model_and_tokenizer
from negrl.provenance import atomic_path, write_provenance
from negrl.rollout import make_engine
from negrl.rollout.base import SamplingParams
from negrl.train.checkpoint import latest_checkpoint, load_training_state, save_checkpoint, set_rng_state
from negrl.train.dynamic_sampling import collect_filtered_groups
from negrl.train.groups import Group, build_batch, level_diagnostics, sample_groups
from negrl.train.logprobs import response_logprobs
from negrl.train.prompts import PromptStream
from negrl.train.sft import lr_factor


def derived_seed(*parts: object) -> int:
    """A 31-bit seed derived from the parts (stable across runs and resumes)."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def make_method(config: Config, method_name: str):
    options = dict(config.method_options.get(method_name, {}))
    options.setdefault("max_response_length", config.rollout.max_tokens)
    if config.train.kl_beta:
        options.setdefault("kl_beta", config.train.kl_beta)
    if config.train.dynamic_sampling is not None:
        options.setdefault("dynamic_sampling", config.train.dynamic_sampling)
    method = get_method(method_name, **options)
    method.validate_config(n=config.train.n)
    return method


@dataclass
class StepTimer:
    totals: dict

    def __init__(self) -> None:
        self.totals = defaultdict(float)

    def add(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self.totals[key] += now - start
        return now


def _mean_dicts(dicts: Sequence[dict[str, float]]) -> dict[str, float]:
    sums, counts = defaultdict(float), defaultdict(int)
    for d in dicts:
        for key, value in d.items():
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                sums[key] += value
                counts[key] += 1
    return {k: sums[k] / counts[k] for k in sums}


class Trainer:
    """Holds the policy, optimizer and engine of one (method, seed) run."""

    def __init__(self, config: Config, method_name: str, seed: int, base_model: Path, problems: Sequence[dict],
                 out_dir: Path, device: str | None = None, show_progress: bool = True, resume: str = "auto") -> None:
        self.config, self.method_name, self.seed, self.out_dir = config, method_name, seed, Path(out_dir)
        self.show_progress = show_progress
        self.method = make_method(config, method_name)
        tc = config.train
        self.filter_groups = self.method.filters_groups  # method default, or train.dynamic_sampling (C11)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.run_hash = config.section_hash("model", "warmstart", "rollout", "train", "method_options", "data",
                                            "verify") + f"/{method_name}/{seed}"
        checkpoint = self._resumable_checkpoint(resume)
        self.model, self.tokenizer = load_model_and_tokenizer(checkpoint or base_model, config.model.dtype,
                                                              str(self.device))
        self.ref_model = None
        if tc.kl_beta > 0:
            self.ref_model, _ = load_model_and_tokenizer(base_model, config.model.dtype, str(self.device))
            self.ref_model.requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                                           betas=(0.9, 0.999))
        total_updates = tc.steps * tc.mini_batches * tc.ppo_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total_updates, tc.warmup_steps, tc.lr_schedule))
        self.problems = list(problems)
        self.prompts = [render_prompt(p["problem"], config.data.prompt_template, self.tokenizer) for p in problems]
        self.answers = [p["answer"] for p in problems]
        self.levels = [int(p["level"]) for p in problems]
        self.stream = PromptStream(len(problems), seed)
        self.start_step, self.optimizer_steps = 0, 0
        if checkpoint is not None:
            state = load_training_state(checkpoint)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.stream.load_state_dict(state["stream"])
            self.start_step, self.optimizer_steps = state["step"], state["optimizer_steps"]
            set_rng_state(state["rng"])
        self.engine = make_engine(config.rollout.backend, model=self.model, tokenizer=self.tokenizer,
                                  max_batch_size=config.rollout.max_batch_size)
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self._truncate_metrics(self.start_step)

    # ------------------------------------------------------------------------------------------------

    def _resumable_checkpoint(self, resume: str) -> Path | None:
        """``auto``: resume from a checkpoint of the same run settings, else start fresh; ``must``: a
        compatible checkpoint is required; ``never``: start fresh (old checkpoints and metrics are removed)."""
        checkpoint = latest_checkpoint(self.checkpoint_dir)
        compatible = checkpoint is not None and load_training_state(checkpoint).get("run_hash") == self.run_hash
        if resume == "must" and not compatible:
            raise ConfigError(
                f"--resume: no checkpoint of this run's settings under {self.checkpoint_dir} "
                + ("(the config changed since it was written)" if checkpoint else "(none written yet)"))
        if compatible and resume != "never":
            return checkpoint
        if self.checkpoint_dir.exists():
            shutil.rmtree(self.checkpoint_dir)
        if (self.out_dir / "metrics.jsonl").exists():
            (self.out_dir / "metrics.jsonl").unlink()
        return None

    def _truncate_metrics(self, step: int) -> None:
        """Keep exactly the metric lines of steps already in the checkpoint (a resumed run rewrites the rest)."""
        if not self.metrics_path.exists():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line)["step/rollout"] <= step]
        with atomic_path(self.metrics_path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))

    def _sampling(self, step: int, round_index: int) -> SamplingParams:
        rc = self.config.rollout
        return SamplingParams(n=self.config.train.n, temperature=rc.temperature, top_p=rc.top_p,
                              max_tokens=rc.max_tokens, seed=derived_seed(self.seed, step, round_index))

    def collect(self, step: int) -> tuple[list[Group], list[Group], dict[str, float]]:
        """The step's groups: all generated ones, and the ones kept for training (dynamic sampling, C11)."""
        tc, vc = self.config.train, self.config.verify
        generated: list[Group] = []
        uid_counter = [0]

        def draw_and_generate(num_prompts: int) -> list[Group]:
            indices = self.stream.take(num_prompts)
            groups = sample_groups(self.engine, self.prompts, self.answers, self.levels, indices,
                                   self._sampling(step, len(generated)), first_uid=uid_counter[0],
                                   verify_workers=vc.workers, verify_timeout=vc.timeout)
            uid_counter[0] += len(groups)
            generated.extend(groups)
            return groups

        if not self.filter_groups:
            groups = draw_and_generate(tc.prompts_per_step)
            return groups, groups, {}
        kept, diagnostics = collect_filtered_groups(
            draw_and_generate, train_prompts=tc.prompts_per_step, gen_batch_multiplier=tc.gen_batch_multiplier,
            max_num_gen_batches=tc.max_num_gen_batches, criterion=self.method.filter_criterion)
        return generated, list(kept), diagnostics

    def update(self, batch, seqs, prep, step: int) -> dict[str, float]:
        """Mini-batches of whole groups, ppo_epochs passes, micro-batched backward with a fixed denominator."""
        tc, temperature = self.config.train, self.config.rollout.temperature
        uids = batch.uid.unique().tolist()
        update_diags: list[dict[str, float]] = []
        grad_norms = []
        for epoch in range(tc.ppo_epochs):
            order = list(uids)
            random.Random(derived_seed(self.seed, step, "minibatch", epoch)).shuffle(order)
            for chunk in np.array_split(np.array(order), tc.mini_batches):
                if len(chunk) == 0:
                    continue
                rows = torch.nonzero(torch.isin(batch.uid, torch.as_tensor(chunk, device=batch.uid.device)))[:, 0]
                mini = batch.select(rows)
                mini_prep = prep.select(rows)
                denominator = self.method.aggregation_denominator(mini)
                self.optimizer.zero_grad(set_to_none=True)
                micro_diags, loss_total = [], 0.0
                for micro in torch.arange(len(rows), device=rows.device).split(tc.micro_batch_size):
                    logp, entropy = response_logprobs(self.model, seqs.select(rows[micro]), temperature,
                                                      with_entropy=True)
                    logp = logp.to(batch.old_logp.dtype)
                    loss, diag = self.method.loss(mini.select(micro).with_logp(logp, entropy),
                                                  mini_prep.select(micro), denominator=denominator)
                    loss.backward()
                    loss_total += loss.item()
                    micro_diags.append(diag)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
                if torch.isfinite(grad_norm):
                    self.optimizer.step()
                self.scheduler.step()
                self.optimizer_steps += 1
                grad_norms.append(float(grad_norm))
                merged = _mean_dicts(micro_diags)
                merged["actor/pg_loss"] = sum(d.get("actor/pg_loss", 0.0) for d in micro_diags)
                merged["actor/loss"] = loss_total
                update_diags.append(merged)
        out = _mean_dicts(update_diags)
        out["actor/grad_norm"] = float(np.mean(grad_norms)) if grad_norms else 0.0
        out["actor/grad_norm_max"] = float(np.max(grad_norms)) if grad_norms else 0.0
        out["actor/lr"] = self.scheduler.get_last_lr()[0]
        return out

    def step(self, step: int) -> dict[str, float]:
        timer = StepTimer()
        start = time.perf_counter()
        generated, kept, ds_diag = self.collect(step)
        start = timer.add("time/rollout_verify", start)
        record: dict[str, float] = {"step/rollout": step + 1}
        record.update(level_diagnostics(generated))
        if kept:
            dtype = torch.float32
            batch, seqs = build_batch(kept, self.model, self.ref_model, self.tokenizer.pad_token_id,
                                      self.config.rollout.temperature, self.config.train.micro_batch_size,
                                      self.device, dtype)
            start = timer.add("time/old_logprob", start)
            prep = self.method.prepare(batch)
            record.update(prep.diagnostics)  # over the trained (kept) groups
            record.update(self.update(batch, seqs, prep, step))
            start = timer.add("time/update", start)
            self.engine.sync_weights(self.model)
            timer.add("time/sync", start)
        # dynamic sampling: group fractions over all generated groups (before filtering, §5) and ds/* counters
        record.update(ds_diag)
        record["step/optimizer"] = self.optimizer_steps
        record["reward/mean"] = float(np.mean([r for g in generated for r in g.rewards]))
        record.update(timer.totals)
        return record

    def run(self) -> Path:
        tc = self.config.train
        progress = tqdm(range(self.start_step, tc.steps), initial=self.start_step, total=tc.steps,
                        desc=f"train {self.method_name} s{self.seed}", disable=not self.show_progress,
                        mininterval=1)
        with open(self.metrics_path, "a") as metrics_file:
            for step in progress:
                record = self.step(step)
                metrics_file.write(json.dumps(record, sort_keys=True) + "\n")
                metrics_file.flush()
                progress.set_postfix(reward=f"{record['reward/mean']:.3f}",
                                     all_wrong=f"{record.get('batch/frac_all_wrong_groups', float('nan')):.2f}")
                done = step + 1
                if (tc.checkpoint_every and done % tc.checkpoint_every == 0) or done == tc.steps:
                    save_checkpoint(self.checkpoint_dir, done, self.model, self.tokenizer, {
                        "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "stream": self.stream.state_dict(), "optimizer_steps": self.optimizer_steps,
                        "run_hash": self.run_hash,
                    })
        final = self.out_dir / "model"
        with atomic_path(final) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
        write_provenance(self.out_dir, self.config.section_hash("model", "warmstart", "rollout", "train",
                                                                "method_options", "data"),
                         self.seed, method=self.method_name, config=to_dict(self.config))
        self.engine.close()
        return final


def train(config: Config, method_name: str, seed: int, base_model: Path, problems: Sequence[dict],
          out_dir: Path, device: str | None = None, show_progress: bool = True, resume: str = "auto") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Trainer(config, method_name, seed, base_model, problems, out_dir, device, show_progress, resume).run()
