"""Typed configuration, read from the same YAML that Snakemake validates.

The dataclasses below are the single source of truth: ``workflow/schemas/config.schema.yaml`` is
generated from them (``negrl config-schema``; a test checks the committed file is current), so the
Snakemake ``validate`` and the CLI can never disagree about a key.

    >>> from negrl.config import load_config
    >>> cfg = load_config("config/config.yaml")          # doctest: +SKIP
    >>> cfg.train.n, cfg.methods                          # doctest: +SKIP
    (8, ['grpo', 'lens'])

An unknown key, a wrong type or a missing required value raises ``ConfigError`` naming the dotted key
and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class ArithConfig:
    seed: int = 0
    """Seed of the synthetic task generator (same seed, same problems)."""
    train_per_level: int = 4000
    """Training problems per difficulty level (at most; level 1 has about 1,700 distinct ones)."""
    test_per_level: int = 100
    """Test problems per difficulty level (disjoint from train)."""


@dataclass
class MathConfig:
    train: str = "../shared/data/math/math_train.jsonl"
    """Training split: a local .jsonl/.parquet path, or a Hugging Face hub dataset id."""
    test: str = "../shared/data/math/math500_test.jsonl"
    """Test split: a local .jsonl/.parquet path, or a Hugging Face hub dataset id."""
    train_split: str = "train"
    """Split name when ``train`` is a hub id."""
    test_split: str = "test"
    """Split name when ``test`` is a hub id."""
    max_train_problems: int | None = None
    """Use only the first N training problems (None = all)."""
    max_test_problems: int | None = None
    """Use only the first N test problems (None = all)."""


@dataclass
class DataConfig:
    task: Literal["arith", "math"] = "arith"
    """Which task: the synthetic leveled arithmetic task or MATH."""
    prompt_template: Literal["boxed", "boxed_short"] = "boxed_short"
    """Prompt wording (negrl.data.prompts); both ask for the answer in \\boxed{}."""
    arith: ArithConfig = field(default_factory=ArithConfig)
    """Settings of the synthetic task."""
    math: MathConfig = field(default_factory=MathConfig)
    """Settings of the MATH loader."""


@dataclass
class ToyModelConfig:
    hidden_size: int = 128
    """Model width."""
    num_layers: int = 4
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads."""
    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    intermediate_size: int = 384
    """MLP width."""
    max_position: int = 320
    """Longest prompt + response in tokens."""
    seed: int = 0
    """Initialisation seed."""


@dataclass
class ModelConfig:
    name_or_path: str | None = None
    """Hugging Face hub id or local directory of a causal LM; null builds the offline toy model."""
    toy: ToyModelConfig = field(default_factory=ToyModelConfig)
    """Shape of the offline toy model (used when name_or_path is null)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Training and rollout dtype (float32 on CPU)."""


@dataclass
class WarmStartConfig:
    enabled: bool = True
    """Supervised fine-tuning on worked solutions before RL (the toy model needs it)."""
    steps: int = 600
    """Optimizer steps."""
    batch_size: int = 64
    """Examples per step."""
    lr: float = 2e-3
    """Peak learning rate (cosine decay to 10%)."""
    warmup_steps: int = 30
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    seed: int = 0
    """Shuffling seed."""
    length_bucketing: int = 1
    """Sort each window of this many batches by length (less padding, faster); 1 = plain random batches.
    Windows > 1 make batches length- and so level-homogeneous, which hurt the toy warm start (measured)."""
    micro_batch_size: int | None = 16
    """Examples per forward/backward: each batch is sorted by length and run in micro-batches of this size
    (gradient accumulation; the same update as one batch, with far less padding: 2x faster on the toy task).
    null = the whole batch at once."""


@dataclass
class RolloutConfig:
    backend: Literal["hf", "vllm"] = "hf"
    """Generation backend: transformers (hf) or vLLM."""
    max_tokens: int = 64
    """Maximum response tokens (max_response_length in methods.md); longer responses are truncated."""
    temperature: float = 1.0
    """Sampling temperature for training rollouts."""
    top_p: float = 1.0
    """Nucleus mass for training rollouts (1.0 keeps the sampler equal to softmax(logits / T))."""
    max_batch_size: int = 512
    """Sequences per generation forward pass."""
    gpu_memory_utilization: float = 0.4
    """vLLM: fraction of GPU memory for the engine."""
    tensor_parallel_size: int = 1
    """vLLM: tensor-parallel degree."""


@dataclass
class TrainLoggingConfig:
    tensorboard: bool = True
    """Also write TensorBoard event files (under the run folder's tensorboard/)."""
    wandb_project: str | None = None
    """Weights & Biases project; null = off (used only when wandb is installed)."""
    wandb_entity: str | None = None
    """Weights & Biases entity (team or user); null = your default."""


@dataclass
class TrainConfig:
    steps: int = 100
    """Rollout steps (each followed by ``mini_batches * ppo_epochs`` optimizer updates)."""
    prompts_per_step: int = 32
    """Prompts per rollout step (train_prompts in methods.md)."""
    n: int = 8
    """Responses per prompt (group size G)."""
    mini_batches: int = 1
    """Optimizer updates per rollout per epoch (whole groups per mini-batch)."""
    ppo_epochs: int = 1
    """Passes over the rollout batch."""
    micro_batch_size: int = 256
    """Responses per forward/backward (gradient accumulation inside a mini-batch)."""
    lr: float = 1e-4
    """Peak learning rate."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Schedule after warm-up."""
    warmup_steps: int = 0
    """Linear warm-up in optimizer steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    adam_beta1: float = 0.9
    """AdamW first-moment decay."""
    adam_beta2: float = 0.999
    """AdamW second-moment decay."""
    adam_eps: float = 1.0e-8
    """AdamW epsilon; larger values damp the update of parameters whose gradients are mostly noise."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    kl_beta: float = 0.0
    """Weight of the k3 KL penalty to the initial model (0: no reference model)."""
    checkpoint_every: int = 50
    """Save a resumable checkpoint every k rollout steps (0: only at the end)."""
    dynamic_sampling: bool | None = None
    """Group filtering (methods.md C11): null uses the method's default."""
    max_num_gen_batches: int = 10
    """Dynamic sampling: generation rounds per step before giving up."""
    gen_batch_multiplier: int = 3
    """Dynamic sampling: prompts drawn per round, as a multiple of prompts_per_step."""
    micro_batch_tokens: int | None = None
    """Also cap each (length-sorted) micro-batch at this many padded tokens (rows x longest); null = rows only."""
    old_logprobs: Literal["recompute", "sampler"] = "recompute"
    """Where the old (behaviour) log-probs of the ratio come from (methods.md C4): recompute = a no-grad
    pass of the trainer (needed when the sampler's numerics differ: vLLM, bf16); sampler = the rollout
    engine's own log-probs of the sampled tokens, which saves that pass when the engine runs the trainer's
    weights in the same precision (the CPU default: they agree to 3e-7)."""
    logprob_chunk_tokens: int = 1024
    """Response positions per chunk of the output projection and log-softmax (bounds logits memory)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Trainer compute: auto = bf16 on GPU, fp32 on CPU; bf16 keeps fp32 master weights and gradients."""
    gradient_checkpointing: bool = False
    """Recompute decoder activations in the backward pass (less memory, about 1/3 more compute)."""
    compile: bool = False
    """torch.compile each decoder block's forward (dynamic shapes; the first steps pay the compile time)."""
    distributed: Literal["ddp", "fsdp"] = "ddp"
    """ddp: replicated (bf16 by autocast); fsdp: FSDP2 sharding, bf16 parameters over fp32 masters (also 1 GPU)."""
    gpus: int | None = None
    """GPUs per training run (>1: the Snakemake rule launches torchrun); null = 1 with a hub model, else 0."""
    grad_noise_check_every: int = 1
    """Every k rollout steps, log the cosine between the gradients of two halves (by groups) of each update's
    mini-batch (actor/grad_half_cosine, actor/grad_snr); 0 = off. Costs one extra copy of the gradients in
    memory during those updates (4 bytes per parameter), under DDP/FSDP one extra gradient reduction, and
    some padding (each half is micro-batched on its own; negrl/train/grad_noise.py)."""
    grad_noise_warn_cosine: float = 0.02
    """Warn in the training log when the half-batch gradient cosine, averaged over the last
    grad_noise_warn_window measured steps, is below this (noise-dominated updates). Measured on the CPU
    toy: 0.03-0.07 with 512 responses per update (which learns), -0.004 and 0.04 with 64 (which unlearns):
    a weak signal on its own at this scale (docs/default-config.md)."""
    grad_noise_warn_window: int = 10
    """Measured steps the warning averages over (also the windows of the falling-reward warning)."""
    logging: TrainLoggingConfig = field(default_factory=TrainLoggingConfig)
    """Metric sinks besides metrics.jsonl."""


@dataclass
class EvalConfig:
    n_samples: int = 4
    """Samples per test problem; accuracy is the mean over samples (mean@k)."""
    temperature: float = 1.0
    """Sampling temperature for evaluation (0 = greedy, then n_samples must be 1)."""
    top_p: float = 1.0
    """Nucleus mass for evaluation."""
    max_tokens: int | None = None
    """Response budget for evaluation (null = rollout.max_tokens)."""
    seed: int = 1234
    """Sampling seed for evaluation rollouts (the same for every model)."""


@dataclass
class VerifyConfig:
    workers: int = 2
    """Verifier worker processes."""
    timeout: float = 5.0
    """Per-item wall-clock limit in seconds (the worker is killed past it)."""
    secondary: bool = False
    """Also run Math-Verify and record agreement (slower)."""


@dataclass
class ReportConfig:
    confidence: float = 0.95
    """Confidence level of the intervals."""
    bootstrap_samples: int = 2000
    """Bootstrap resamples for the intervals."""
    seed: int = 0
    """Bootstrap seed."""
    reference_method: str = "grpo"
    """Method every other method is compared with, paired over problems (difference_vs_<it>.csv and a
    section of accuracy_by_level.md); the comparison is skipped, with a note, when it is not in methods."""


@dataclass
class Config:
    experiment: str = "arith-cpu"
    """Name of the result folder: results/<experiment>/."""
    methods: list[str] = field(default_factory=lambda: ["grpo", "lens"])
    """Methods to train and compare (names from ``negrl methods``)."""
    seeds: list[int] = field(default_factory=lambda: [1, 2])
    """Training seeds; every method runs once per seed."""
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-method options passed to get_method, e.g. {lens: {alpha: 0.25}}."""
    data: DataConfig = field(default_factory=DataConfig)
    """Which problems, and how they are prompted."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Which model to start from."""
    warmstart: WarmStartConfig = field(default_factory=WarmStartConfig)
    """Supervised warm start of the toy model."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Generation settings shared by training and evaluation."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The online RL loop."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Test-set evaluation."""
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    """Answer verification."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """Tables and plots."""

    def section_hash(self, *names: str, ignore: tuple[str, ...] = ()) -> str:
        """A short hash of the named top-level sections (what a stage's output depends on), leaving out the
        dotted keys in ``ignore`` (e.g. ``THROUGHPUT_KEYS``: they change speed, not results)."""
        payload = {name: to_dict(getattr(self, name)) for name in names}
        for dotted in ignore:
            *parents, leaf = dotted.split(".")
            node = payload
            for part in parents:
                node = node.get(part, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node.pop(leaf, None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


# Keys that change how fast, where or how observably a stage runs, not what it computes (up to the
# floating-point summation order): left out of the hashes that decide when a stage is stale and whether a
# checkpoint can be resumed, so changing them re-runs nothing.
THROUGHPUT_KEYS = (
    "rollout.max_batch_size", "rollout.gpu_memory_utilization", "verify.workers", "train.checkpoint_every",
    "train.logging", "train.gpus", "train.micro_batch_size", "train.micro_batch_tokens",
    "train.logprob_chunk_tokens", "train.gradient_checkpointing", "train.compile",
    "train.grad_noise_check_every", "train.grad_noise_warn_cosine", "train.grad_noise_warn_window",
)
# Keys of only the training split or only the test split: the other split's stages ignore them.
TRAIN_SPLIT_KEYS = ("data.arith.train_per_level", "data.math.train", "data.math.train_split",
                    "data.math.max_train_problems")
TEST_SPLIT_KEYS = ("data.arith.test_per_level", "data.math.test", "data.math.test_split",
                   "data.math.max_test_problems")


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


# Loading (YAML -> Config, checked key by key) lives in negrl.config_loading; re-exported here.
from negrl.config_loading import from_dict, load_config, retype_command_line  # noqa: E402,F401  isort: skip
