"""The online RL loop: sample prompts -> rollouts (G per prompt) -> verify -> method -> optimizer steps.

One call of ``train`` runs one (method, seed) pair and writes under ``out_dir``:
``metrics.jsonl`` (one JSON object per rollout step, methods.md §5 keys), ``checkpoints/`` (resumable),
and ``model/`` (the final policy, ``save_pretrained``), plus ``provenance.json``.

Per rollout step (methods.md C4, C5, C8): old log-probs are recomputed once by the trainer; the method's
``prepare`` runs once on the full rollout batch; the batch is split into ``mini_batches`` of whole groups
(seeded shuffle) for ``ppo_epochs`` passes; each mini-batch's loss denominator is fixed before its
micro-batches run backward (``negrl.train.update``).

Under ``torchrun`` the same loop runs data-parallel (DDP or FSDP2): rollouts are split by whole groups and
all-gathered, ``prepare`` sees the global batch, gradients are summed over ranks (``negrl.train.distributed``).
Only rank 0 writes metrics, TensorBoard/W&B, checkpoints and the final model.

Gradient noise (``negrl.train.grad_noise``): every ``train.grad_noise_check_every`` steps each update also
logs the cosine between the gradients of its mini-batch's two halves (``actor/grad_half_cosine``, and the
implied ``actor/grad_snr``; ``gcos`` in the progress bar); rank 0 warns in the training log (logger
``negrl.train``) when the cosine stays below ``train.grad_noise_warn_cosine`` (noise-dominated updates) or
``reward/mean`` falls over the run.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from negrl.config import TEST_SPLIT_KEYS, THROUGHPUT_KEYS, Config, to_dict
from negrl.data.prompts import render_prompt
from negrl.errors import ConfigError
from negrl.methods.from_config import method_from_config
from negrl.models import load_model_and_tokenizer
from negrl.provenance import atomic_path, write_provenance
from negrl.rollout import engine_options, make_engine
from negrl.rollout.base import SamplingParams
from negrl.train.checkpoint import (
    checkpoint_run_hash,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
    set_rng_state,
)
from negrl.train.distributed import (
    all_gather_list,
    all_reduce_sum_,
    barrier,
    cleanup,
    compile_decoder_layers,
    full_state_dict,
    init_distributed,
    is_sharded,
    load_optimizer_state,
    optimizer_state,
    shard_frozen,
    share_bounds,
    strip_prefix,
    wrap_policy,
)
from negrl.train.dynamic_sampling import collect_filtered_groups
from negrl.train.grad_noise import COSINE_KEY, GradNoiseMonitor
from negrl.train.groups import Group, build_batch, level_diagnostics, sample_groups
from negrl.train.logprobs import TokenLogprobs
from negrl.train.prompts import PromptStream
from negrl.train.sft import lr_factor
from negrl.train.tracking import MetricsLogger
from negrl.train.update import PolicyUpdater, UpdateSettings, rollout_logprobs, synchronize


def derived_seed(*parts: object) -> int:
    """A 31-bit seed derived from the parts (stable across runs and resumes)."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def compute_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """``train.precision``: bf16 (auto: on GPU), or None for full precision."""
    if mode == "fp32":
        return None
    if mode == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return None


class Trainer:
    """Holds the policy, optimizer and engine of one (method, seed) run."""

    def __init__(self, config: Config, method_name: str, seed: int, base_model: Path, problems: Sequence[dict],
                 out_dir: Path, device: str | None = None, show_progress: bool = True, resume: str = "auto") -> None:
        self.config, self.method_name, self.seed, self.out_dir = config, method_name, seed, Path(out_dir)
        self.show_progress = show_progress
        self.method = method_from_config(config, method_name)
        tc = config.train
        self.filter_groups = self.method.filters_groups  # method default, or train.dynamic_sampling (C11)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        sharded = tc.distributed == "fsdp"
        self.dist, self.device = init_distributed(device, need_group=sharded)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.run_hash = self._run_hash()
        checkpoint = self._resumable_checkpoint(resume)
        source = checkpoint or base_model
        self.model, self.tokenizer = load_model_and_tokenizer(source, config.model.dtype, str(self.device))
        precision = compute_dtype(tc.precision, self.device)
        # bf16 with fp32 masters: FSDP keeps bf16 parameters over fp32 shards; otherwise autocast
        self.autocast_dtype = None if sharded else precision
        if tc.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if tc.compile:
            compile_decoder_layers(self.model)
        engine_dtype = precision if self.device.type == "cuda" else None
        self.rollout_model = self.model
        if sharded:  # the engine samples from a full (unsharded) copy, refreshed after every update
            self.rollout_model, _ = load_model_and_tokenizer(
                source, "bfloat16" if engine_dtype == torch.bfloat16 else config.model.dtype, str(self.device))
        self.policy = wrap_policy(TokenLogprobs(self.model, tc.logprob_chunk_tokens), self.dist, tc.distributed,
                                  self.device, precision)
        self.ref_policy = None
        if self.method.options.kl_beta > 0:  # train.kl_beta or the method's own option
            ref_model, _ = load_model_and_tokenizer(base_model, config.model.dtype, str(self.device))
            ref_model.requires_grad_(False)
            self.ref_policy = shard_frozen(TokenLogprobs(ref_model, tc.logprob_chunk_tokens), self.dist,
                                           tc.distributed)
        fused = {"fused": True} if self.device.type == "cuda" and not sharded else {}
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                                           betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps, **fused)
        total_updates = tc.steps * tc.mini_batches * tc.ppo_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total_updates, tc.warmup_steps, tc.lr_schedule))
        self.settings = UpdateSettings(
            temperature=config.rollout.temperature, micro_batch_size=tc.micro_batch_size,
            micro_batch_tokens=tc.micro_batch_tokens, grad_clip=tc.grad_clip, mini_batches=tc.mini_batches,
            ppo_epochs=tc.ppo_epochs, autocast_dtype=self.autocast_dtype,
            sync_every_micro_batch=sharded and precision is not None)
        self.updater = PolicyUpdater(self.policy, self.optimizer, self.scheduler, self.method, self.settings,
                                     self.dist, self.device)
        self.stat_dtype = torch.float64 if next(self.model.parameters()).dtype == torch.float64 else torch.float32
        self.problems = list(problems)
        self.prompts = [render_prompt(p["problem"], config.data.prompt_template, self.tokenizer) for p in problems]
        self.answers = [p["answer"] for p in problems]
        self.levels = [int(p["level"]) for p in problems]
        self.stream = PromptStream(len(problems), seed)
        self.start_step = 0
        if checkpoint is not None:
            state = load_training_state(checkpoint)
            load_optimizer_state(self.policy, self.optimizer, state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.stream.load_state_dict(state["stream"])
            self.start_step, self.updater.optimizer_steps = state["step"], state["optimizer_steps"]
            set_rng_state(state["rng"])
        self.engine = make_engine(config.rollout.backend, model=self.rollout_model, tokenizer=self.tokenizer,
                                  **engine_options(config.rollout, engine_dtype))
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.noise_monitor = GradNoiseMonitor(
            tc.grad_noise_warn_cosine, tc.grad_noise_warn_window,
            responses_per_update=tc.prompts_per_step * tc.n // tc.mini_batches)
        if self.dist.is_main:
            self._truncate_metrics(self.start_step)
            if self.metrics_path.exists():  # a resumed run's warnings see the steps already done
                for line in self.metrics_path.read_text().splitlines():
                    row = json.loads(line)
                    self.noise_monitor.record(int(row["step/rollout"]), row)
        barrier(self.dist)

    @property
    def optimizer_steps(self) -> int:
        return self.updater.optimizer_steps

    # ------------------------------------------------------------------------------------------------

    def _run_hash(self) -> str:
        """What a checkpoint must match to be resumed: the settings that define the run, not those of
        ``THROUGHPUT_KEYS`` (workers, batch sizes for throughput, GPU count, checkpoint frequency, logging,
        diagnostics: they change the update only by the floating-point summation order) nor the test split's;
        the method and the seed."""
        digest = self.config.section_hash("model", "warmstart", "rollout", "train", "method_options", "data",
                                          "verify", ignore=THROUGHPUT_KEYS + TEST_SPLIT_KEYS)
        return f"{digest}/{self.method_name}/{self.seed}"

    def _resumable_checkpoint(self, resume: str) -> Path | None:
        """``auto``: resume from a checkpoint of the same run settings, else start fresh; ``must``: a
        compatible checkpoint is required; ``never``: start fresh (old checkpoints and metrics are removed)."""
        checkpoint = latest_checkpoint(self.checkpoint_dir)
        compatible = checkpoint is not None and checkpoint_run_hash(checkpoint) == self.run_hash
        if resume == "must" and not compatible:
            raise ConfigError(
                f"--resume: no checkpoint of this run's settings under {self.checkpoint_dir} "
                + ("(the config changed since it was written)" if checkpoint else "(none written yet)"))
        if compatible and resume != "never":
            return checkpoint
        barrier(self.dist)  # every rank has looked before rank 0 deletes
        if self.dist.is_main:
            if self.checkpoint_dir.exists():
                shutil.rmtree(self.checkpoint_dir)
            if (self.out_dir / "metrics.jsonl").exists():
                (self.out_dir / "metrics.jsonl").unlink()
        barrier(self.dist)
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
        seed = derived_seed(self.seed, step, round_index)
        if self.dist.enabled:  # each rank samples its own share of the prompts with its own stream
            seed = derived_seed(self.seed, step, round_index, "rank", self.dist.rank)
        return SamplingParams(n=self.config.train.n, temperature=rc.temperature, top_p=rc.top_p,
                              max_tokens=rc.max_tokens, seed=seed)

    def collect(self, step: int, timer: dict[str, float] | None = None,
                ) -> tuple[list[Group], list[Group], dict[str, float]]:
        """The step's groups: all generated ones, and the ones kept for training (dynamic sampling, C11).
        Under data parallelism each rank samples and verifies a contiguous share of every round's prompts and
        the groups are all-gathered, so every rank returns the same global lists."""
        tc, vc = self.config.train, self.config.verify
        generated: list[Group] = []
        uid_counter = [0]

        def draw_and_generate(num_prompts: int) -> list[Group]:
            indices = self.stream.take(num_prompts)
            bounds = share_bounds(len(indices), self.dist.world_size)
            first, last = bounds[self.dist.rank], bounds[self.dist.rank + 1]
            groups = sample_groups(self.engine, self.prompts, self.answers, self.levels, indices[first:last],
                                   self._sampling(step, len(generated)), first_uid=uid_counter[0] + first,
                                   verify_workers=vc.workers, verify_timeout=vc.timeout, timer=timer)
            if self.dist.enabled and self.config.train.old_logprobs == "recompute":
                for group in groups:  # the sampler's own log-probs are not used in training (C4)
                    for completion in group.completions:
                        completion.sampler_logprobs = None
                groups = all_gather_list(groups, self.dist)
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

    def step(self, step: int) -> dict[str, float]:
        tc, timer = self.config.train, {}
        start = synchronize(self.device)
        generated, kept, ds_diag = self.collect(step, timer)
        now = synchronize(self.device)
        timer["time/rollout_verify"] = now - start
        record: dict[str, float] = {"step/rollout": step + 1}
        record.update(level_diagnostics(generated))
        if kept:
            def logprobs(policy):
                return lambda seqs: rollout_logprobs(policy, seqs, self.settings, self.dist, self.device,
                                                     self.stat_dtype)

            from_sampler = tc.old_logprobs == "sampler"
            batch, seqs = build_batch(kept, self.tokenizer.pad_token_id,
                                      None if from_sampler else logprobs(self.policy),
                                      logprobs(self.ref_policy) if self.ref_policy is not None else None,
                                      self.device, self.stat_dtype)
            now, last = synchronize(self.device), now
            timer["time/old_logprob"] = now - last
            prep = self.method.prepare(batch)  # global batch, identical on every rank (C5)
            record.update(prep.diagnostics)  # over the trained (kept) groups
            tokens_before = self.updater.tokens
            self.model.train(tc.gradient_checkpointing)  # HF checkpointing runs in train mode only
            seeds = [derived_seed(self.seed, step, "minibatch", epoch) for epoch in range(tc.ppo_epochs)]
            every = tc.grad_noise_check_every
            record.update(self.updater.update(batch, seqs, prep, seeds,
                                              grad_noise=bool(every) and step % every == 0))
            self.model.eval()
            now, last = synchronize(self.device), now
            timer["time/update"] = now - last
            tokens = all_reduce_sum_(torch.tensor([float(self.updater.tokens - tokens_before)],
                                                  dtype=torch.float64, device=self.device), self.dist)
            timer["time/update_tokens_per_s"] = float(tokens.item()) / max(timer["time/update"], 1e-9)
            self._sync_rollout_weights()
            now, last = synchronize(self.device), now
            timer["time/sync"] = now - last
        # dynamic sampling: group fractions over all generated groups (before filtering, §5) and ds/* counters
        record.update(ds_diag)
        record["step/optimizer"] = self.updater.optimizer_steps
        record["reward/mean"] = float(np.mean([r for g in generated for r in g.rewards]))
        if self.device.type == "cuda":
            record["perf/max_memory_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        timer["time/step"] = synchronize(self.device) - start
        record.update(timer)
        return record

    def _sync_rollout_weights(self) -> None:
        """After the updates: the engine samples from the new weights (in place when it shares the model)."""
        if self.rollout_model is self.model:
            self.engine.sync_weights(self.model)
            return
        state = strip_prefix(full_state_dict(self.policy, all_ranks=True))  # FSDP: all-gathered on every rank
        self.rollout_model.load_state_dict(state, strict=False)
        self.engine.sync_weights(self.rollout_model)

    def _model_state(self) -> dict | None:
        """The full model state dict for saving (FSDP: gathered to rank 0; a collective), else None."""
        if not is_sharded(self.policy):
            return None
        state = strip_prefix(full_state_dict(self.policy, all_ranks=False))
        unique = {name for name, _ in self.model.named_parameters()}  # tied weights once (as save_pretrained)
        tied = {name for name, _ in self.model.named_parameters(remove_duplicate=False)} - unique
        return {k: v for k, v in state.items() if k not in tied}

    def _save_checkpoint(self, done: int) -> None:
        optimizer = optimizer_state(self.policy, self.optimizer)  # collectives first, on every rank
        model_state = self._model_state()
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_dir, done, self.model, self.tokenizer, {
                "optimizer": optimizer, "scheduler": self.scheduler.state_dict(),
                "stream": self.stream.state_dict(), "optimizer_steps": self.updater.optimizer_steps,
                "run_hash": self.run_hash, "world_size": self.dist.world_size,
            }, state_dict=model_state)
        barrier(self.dist)

    def run(self) -> Path:
        tc, main = self.config.train, self.dist.is_main
        progress = tqdm(range(self.start_step, tc.steps), initial=self.start_step, total=tc.steps,
                        desc=f"train {self.method_name} s{self.seed}", disable=not (self.show_progress and main),
                        mininterval=1)
        logger = None
        if main:
            logger = MetricsLogger(
                self.metrics_path,
                tensorboard_dir=self.out_dir / "tensorboard" if tc.logging.tensorboard else None,
                wandb_project=tc.logging.wandb_project, wandb_entity=tc.logging.wandb_entity,
                run_name=f"{self.config.experiment}/{self.method_name}/s{self.seed}", config=to_dict(self.config))
        try:
            for step in progress:
                record = self.step(step)
                if logger is not None:
                    logger.log(record, step + 1)
                    self.noise_monitor.observe(step + 1, record)
                postfix = {"reward": f"{record['reward/mean']:.3f}",
                           "all_wrong": f"{record.get('batch/frac_all_wrong_groups', float('nan')):.2f}"}
                if COSINE_KEY in record:
                    postfix["gcos"] = f"{record[COSINE_KEY]:.2f}"
                progress.set_postfix(**postfix, step_s=f"{record['time/step']:.1f}")
                done = step + 1
                if (tc.checkpoint_every and done % tc.checkpoint_every == 0) or done == tc.steps:
                    self._save_checkpoint(done)
        finally:
            if logger is not None:
                logger.close()
        final = self.out_dir / "model"
        model_state = self._model_state()
        if main:
            with atomic_path(final) as tmp:
                self.model.save_pretrained(tmp, state_dict=model_state)
                self.tokenizer.save_pretrained(tmp)
            write_provenance(self.out_dir, self.config.section_hash("model", "warmstart", "rollout", "train",
                                                                    "method_options", "data"),
                             self.seed, method=self.method_name, config=to_dict(self.config))
        barrier(self.dist)
        self.engine.close()
        return final


def train(config: Config, method_name: str, seed: int, base_model: Path, problems: Sequence[dict],
          out_dir: Path, device: str | None = None, show_progress: bool = True, resume: str = "auto") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    owns_process_group = torch.distributed.is_available() and not torch.distributed.is_initialized()
    trainer = Trainer(config, method_name, seed, base_model, problems, out_dir, device, show_progress, resume)
    final = trainer.run()
    if owns_process_group:  # started by init_distributed under torchrun
        cleanup(trainer.dist)
    return final
