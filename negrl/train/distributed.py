"""Data parallelism for the online RL loop over ``torch.distributed`` (DDP or FSDP2), launched by ``torchrun``.

Semantics (design note of issue 5; methods.md C5, C8, §3.5 "global whitening"):

* Every rank holds the same prompt stream. A generation round's prompts are split into contiguous shares
  of whole groups; each rank samples and verifies its share, then the groups are all-gathered, so every
  rank sees the global list of groups in the same order (uids are global positions). Dynamic-sampling
  decisions are therefore identical on all ranks.
* Old (and reference) log-probs: each rank computes a contiguous share of the rows; the shares are summed
  into the full ``[B, T]`` tensor with one ``all_reduce`` (the other ranks contribute exact zeros), so every
  rank holds the global ``RolloutBatch`` and runs ``method.prepare`` on the global batch, identically.
* Updates: each mini-batch (whole groups, seeded shuffle, the same on every rank) is split across ranks by
  whole groups. The C8 denominator is computed from the global mini-batch (every rank has it), each rank's
  loss is its rows' numerator over that denominator, times the world size because DDP/FSDP average
  gradients over ranks. Every rank runs the same number of micro-batches (padding with zero-weight ones),
  as FSDP's collectives require.

With one process (no ``WORLD_SIZE`` in the environment) every helper is a no-op and nothing is wrapped.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None, need_group: bool = False) -> tuple[DistContext, torch.device]:
    """The context and this rank's device. Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is
    initialised here (NCCL on GPUs, gloo on CPU) unless the caller already did; ``cuda`` becomes
    ``cuda:<LOCAL_RANK>``. ``need_group`` (FSDP in one process) starts a process group of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    initialized = dist.is_available() and dist.is_initialized()
    if world == 1 and not initialized and not need_group:
        return DistContext(), torch.device(device or ("cuda" if use_cuda else "cpu"))
    if use_cuda:
        target = torch.device(device if device and ":" in device else f"cuda:{local_rank}")
        torch.cuda.set_device(target)
    else:
        target = torch.device("cpu")
    if not initialized:
        backend = "nccl" if use_cuda else "gloo"
        if world == 1:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
        else:
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank), target


def share(items: Sequence[T], ctx: DistContext, rank: int | None = None) -> list[T]:
    """The contiguous share of ``items`` that ``rank`` (default: this rank) handles (np.array_split sizes)."""
    bounds = share_bounds(len(items), ctx.world_size)
    r = ctx.rank if rank is None else rank
    return list(items[bounds[r]:bounds[r + 1]])


def share_bounds(count: int, world_size: int) -> list[int]:
    """Start offsets of the world_size contiguous shares of ``count`` items, plus ``count``."""
    sizes = [len(part) for part in np.array_split(np.arange(count), world_size)]
    return [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]


def all_gather_list(items: list[T], ctx: DistContext) -> list[T]:
    """Concatenation of every rank's list, in rank order (pickled objects)."""
    if not ctx.enabled:
        return list(items)
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def all_reduce_sum_(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max_int(value: int, ctx: DistContext, device: torch.device) -> int:
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def reduce_diagnostics(diag: dict[str, float], weight: float, ctx: DistContext) -> dict[str, float]:
    """Combine per-rank update diagnostics: ``*loss`` keys are summed (each rank holds its share of the
    mini-batch loss), ``*_max`` keys take the max, the rest are averaged weighted by ``weight`` (the rank's
    response tokens), which makes token means independent of how the mini-batch was split."""
    if not ctx.enabled:
        return diag
    parts: list[tuple[dict[str, float], float]] = [({}, 0.0)] * ctx.world_size
    dist.all_gather_object(parts, (diag, float(weight)))
    out: dict[str, float] = {}
    for key in sorted({k for p, _ in parts for k in p}):
        values = [(p[key], w) for p, w in parts if key in p]
        if key.endswith("loss"):
            out[key] = float(sum(v for v, _ in values))
        elif key.endswith("_max"):
            out[key] = float(max(v for v, _ in values))
        else:
            total = sum(w for _, w in values)
            out[key] = float(sum(v * w for v, w in values) / total) if total else 0.0
    return out


# --------------------------------------------------------------------------------------------------
# Wrapping: DDP for models that fit on one GPU, FSDP2 (fully_shard) for large ones.


def decoder_layers(lm: nn.Module) -> list[nn.Module]:
    """The transformer blocks (the classes a transformers model lists in ``_no_split_modules``)."""
    names = set(getattr(lm, "_no_split_modules", None) or ())
    return [m for m in lm.modules() if type(m).__name__ in names]


def compile_decoder_layers(lm: nn.Module) -> None:
    """torch.compile each decoder block's ``forward`` (fuses norms, rotary, activations and residual adds);
    the module's hooks (FSDP's unshard/reshard) stay outside the compiled region."""
    for layer in decoder_layers(lm):
        layer.forward = torch.compile(layer.forward, dynamic=True)


def wrap_policy(policy: nn.Module, ctx: DistContext, strategy: str, device: torch.device,
                param_dtype: torch.dtype | None = None) -> nn.Module:
    """DDP(policy) or FSDP2 ``fully_shard`` of each decoder block and the root (``param_dtype`` bf16 for
    mixed precision, gradients then reduced in fp32). DDP in a single process: the policy unchanged; FSDP
    needs a process group (of one, in a single process)."""
    if strategy == "ddp":
        if not ctx.enabled:
            return policy
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(policy, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False)
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=param_dtype,
                                  reduce_dtype=torch.float32 if param_dtype is not None else None)
        for layer in decoder_layers(getattr(policy, "lm", policy)):
            fully_shard(layer, mp_policy=mp)
        fully_shard(policy, mp_policy=mp)
        return policy
    raise ValueError(f"unknown distributed strategy {strategy!r}; use ddp or fsdp")


def shard_frozen(model: nn.Module, ctx: DistContext, strategy: str) -> nn.Module:
    """A frozen (reference) model: sharded like the policy under FSDP, replicated otherwise."""
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in decoder_layers(getattr(model, "lm", model)):
            fully_shard(layer)
        fully_shard(model)
    return model


def is_sharded(model: nn.Module) -> bool:
    return any(hasattr(p, "full_tensor") for p in model.parameters())


@contextlib.contextmanager
def gradient_sync(policy: nn.Module, enabled: bool):
    """Skip the gradient all-reduce for all but the last micro-batch of a mini-batch."""
    if enabled:
        yield
        return
    if hasattr(policy, "no_sync"):  # DDP
        with policy.no_sync():
            yield
    elif hasattr(policy, "set_requires_gradient_sync"):  # FSDP2
        policy.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            policy.set_requires_gradient_sync(True)
    else:
        yield


def full_state_dict(model: nn.Module, *, all_ranks: bool) -> dict[str, torch.Tensor]:
    """Unsharded state dict of a (possibly FSDP-sharded) module; ``all_ranks=False`` leaves it on rank 0 only
    (on CPU). A collective under FSDP: every rank must call it."""
    if not is_sharded(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=not all_ranks))


def optimizer_state(policy: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer state to checkpoint (full, on rank 0 under FSDP; a collective then)."""
    if not is_sharded(policy):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(policy, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(policy: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    if not is_sharded(policy):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(policy, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))


def strip_prefix(state: dict[str, torch.Tensor], prefix: str = "lm.") -> dict[str, torch.Tensor]:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def cleanup(ctx: DistContext) -> None:
    if dist.is_available() and dist.is_initialized():
        barrier(ctx)
        dist.destroy_process_group()
