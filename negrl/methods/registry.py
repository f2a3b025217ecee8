"""The method registry and the ``Method`` base class (methods.md §2).

A method is a class registered by name in its own file; a config string picks it, like verl's registries:

    >>> from negrl.methods import get_method, available_methods
    >>> method = get_method("grpo", clip_high=0.28)
    >>> method.requires_groups, method.reward_convention, method.paper_loss_agg
    (2, 'binary', 'seq-mean-token-mean')

Writing a method: subclass ``Method``, give it an ``Options`` dataclass (subclass of ``CommonOptions``, one
docstring per field, cleanrl-style), class metadata (``paper``, ``requires_groups`` ...) and an
``advantages(batch, groups)`` that returns the per-response (or per-token) advantage in float64. PPO-style
methods are done: the base class applies NTF, the clipped surrogate (C6), KL (C7), aggregation (C8) and logs
the diagnostics (§5). Methods with a different per-token loss (nft, rft) also override ``policy_token_loss``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from negrl.errors import ConfigError
from negrl.methods import common
from negrl.methods.batch import GroupSizeError, Prepared, RolloutBatch
from negrl.methods.ntf import negative_token_mask, ntf_diagnostics

LossAgg = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm", "constant", "paper"]
FilterCriterion = Literal["mixed", "has_correct"]


@dataclass(frozen=True)
class Paper:
    """Where a method comes from."""

    short: str
    arxiv: str
    title: str

    def __str__(self) -> str:
        return f"{self.short} (arXiv {self.arxiv})"


@dataclass
class CommonOptions:
    """Options every method accepts (methods.md §2); a method's own dataclass may change the defaults."""

    loss_agg: LossAgg = "token-mean"
    """Aggregation (C8); "paper" selects the method's recorded paper default."""
    clip_low: float = 0.2
    """eps_low of the clipped surrogate (C6)."""
    clip_high: float = 0.2
    """eps_high of the clipped surrogate (DAPO clip-higher: 0.28)."""
    dual_clip_c: float | None = None
    """verl's dual clip constant for A < 0 (None = off; verl uses 3)."""
    kl_beta: float = 0.0
    """Weight of the KL(pi_theta || pi_ref) loss term (C7); 0 means ref_logp is not needed."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """KL estimator of the loss term (C7 uses k3 = verl low_var_kl)."""
    log_ratio_clamp: float = 20.0
    """Hard clamp of l - l_old before exponentiation (C6)."""
    adv_eps: float = 1e-6
    """Added to the group std outside the square root (C9)."""
    std: Literal["sample", "population"] = "sample"
    """Group std convention (C9): sample (G - 1, verl/TRL) or population (G)."""
    max_response_length: int | None = None
    """L_max: needed by seq-mean-token-sum-norm and DAPO's overlong shaping."""
    agg_constant: float = 1000.0
    """C of the ``constant`` aggregation (NVlabs/NFT normalizer)."""
    ntf_keep: float | None = None
    """Negative token filtering (§3.10): fraction of a wrong response's tokens kept; None = off."""
    ntf_min_keep: int = 1
    """NTF keeps at least this many tokens of every negative response."""
    dynamic_sampling: bool | None = None
    """Group filter of C11: None = the method's default, True/False force it on/off."""


def _check_type(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, (tuple, list)) and all(
            _check_type(v, a) for v, a in zip(value, typing.get_args(hint))
        )
    return isinstance(value, hint)


def build_options(options_cls: type, method: str, values: dict[str, Any]):
    """Instantiate a method's options; unknown keys and wrong values raise ConfigError naming both."""
    hints = typing.get_type_hints(options_cls)
    names = [f.name for f in dataclasses.fields(options_cls)]
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"method {method!r} has no option {key!r}; its options are: {', '.join(sorted(names))}"
            )
        if not _check_type(value, hints[key]):
            raise ConfigError(f"method {method!r}: option {key}={value!r} is not a valid {hints[key]}")
    return options_cls(**values)


class Method:
    """A loss/advantage method; subclasses are registered with ``@register(name)``."""

    name: ClassVar[str] = ""
    paper: ClassVar[Paper]
    Options: ClassVar[type] = CommonOptions
    requires_groups: ClassVar[int] = 1
    """Minimum responses per uid (checked by validate_config and prepare)."""
    reward_convention: ClassVar[Literal["binary", "signed"]] = "binary"
    """What the method uses internally; the input reward is always binary (C1)."""
    default_filter: ClassVar[FilterCriterion | None] = None
    """Dynamic-sampling criterion the method uses by default (C11); None = filter off."""
    paper_loss_agg: ClassVar[str] = "token-mean"
    """The paper's aggregation, selected by loss_agg: paper."""

    def __init__(self, **options: Any) -> None:
        self.options = build_options(self.Options, self.name, options)
        o = self.options
        self.loss_agg: str = self.paper_loss_agg if o.loss_agg == "paper" else o.loss_agg
        if self.loss_agg == "seq-mean-token-sum-norm" and o.max_response_length is None:
            raise ConfigError(f"method {self.name!r}: loss_agg seq-mean-token-sum-norm needs max_response_length")
        if o.ntf_keep is not None and not 0 < o.ntf_keep <= 1:
            raise ConfigError(f"method {self.name!r}: ntf_keep must be in (0, 1] or null, got {o.ntf_keep}")
        if o.clip_low < 0 or o.clip_high < 0 or o.log_ratio_clamp <= 0 or o.ntf_min_keep < 1:
            raise ConfigError(
                f"method {self.name!r}: clip_low/clip_high must be >= 0, log_ratio_clamp > 0, ntf_min_keep >= 1"
            )
        self.check_options()

    def check_options(self) -> None:
        """Method-specific option checks (raise ConfigError)."""

    # --- registry metadata resolved with the options ---------------------------------------------------

    @property
    def filters_groups(self) -> bool:
        """Whether the trainer must filter groups with dynamic sampling (C11)."""
        forced = self.options.dynamic_sampling
        return self.default_filter is not None if forced is None else forced

    @property
    def filter_criterion(self) -> FilterCriterion:
        """The criterion used whenever groups are filtered (by default or forced by dynamic_sampling):
        ``mixed`` (0 < sum r < G) or ``has_correct`` (sum r >= 1)."""
        return self.default_filter or "mixed"

    @property
    def min_group_size(self) -> int:
        """Smallest group prepare accepts: requires_groups, and 2 whenever groups are filtered."""
        return max(self.requires_groups, 2 if self.filters_groups else 1)

    def validate_config(self, n: int) -> None:
        """Check the run's responses per prompt against the method (ConfigError)."""
        if n < self.requires_groups:
            raise ConfigError(
                f"method {self.name!r} needs rollout.n >= {self.requires_groups} responses per prompt "
                f"(got n = {n}): its advantage would be zero by construction"
            )
        if self.filters_groups and n < 2:
            raise ConfigError(
                f"method {self.name!r} filters groups (dynamic sampling, criterion {self.filter_criterion}), "
                f"which needs rollout.n >= 2 (got n = {n}); set dynamic_sampling: false or raise n"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    # --- prepare: once per rollout step, no grad (C5) ----------------------------------------------------

    def check_group_sizes(self, groups: common.Groups) -> None:
        """GroupSizeError naming the method, the uid, the size found and the minimum."""
        small = groups.size < self.min_group_size
        if bool(small.any()):
            j = int(small.nonzero()[0, 0])
            raise GroupSizeError(
                f"method {self.name!r} needs at least {self.min_group_size} responses per prompt, but uid "
                f"{int(groups.uid[j])} has {int(groups.size[j])} (group size {int(groups.size[j])} < "
                f"minimum {self.min_group_size}); sample more responses per prompt (rollout.n)"
            )

    def advantages(self, batch: RolloutBatch, groups: common.Groups):
        """[B] or [B,T] float64 advantage, or (adv, tensors, diagnostics). Implemented by each method."""
        raise NotImplementedError

    def prepare(self, batch: RolloutBatch) -> Prepared:
        """Advantages, NTF mask, on-policy weights and rollout diagnostics for the whole rollout batch."""
        with torch.no_grad():
            groups = common.group_by_uid(batch.uid)
            self.check_group_sizes(groups)
            out = self.advantages(batch, groups)
            adv, tensors, diagnostics = out if isinstance(out, tuple) else (out, {}, {})
            dtype = batch.old_logp.dtype
            mask = batch.mask
            if adv.dim() == 1:
                adv = adv[:, None]
            adv = torch.where(mask, adv.to(dtype), torch.zeros((), dtype=dtype, device=mask.device))
            if self.options.ntf_keep is not None:
                ntf_mask = negative_token_mask(
                    batch.old_logp, mask, batch.rewards, self.options.ntf_keep, self.options.ntf_min_keep
                )
                diagnostics.update(ntf_diagnostics(batch.old_logp, mask, batch.rewards, ntf_mask))
            else:
                ntf_mask = mask.clone()
            weight = adv * ntf_mask
            tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
            diag = common.rollout_diagnostics(batch.rewards, batch.truncated, mask, groups, weight)
            diag.update(diagnostics)
            return Prepared(adv=adv, weight=weight, ntf_mask=ntf_mask, tensors=tensors, diagnostics=diag)

    # --- loss: one (micro-)batch, with grad -------------------------------------------------------------

    def loss_mask(self, batch: RolloutBatch) -> Tensor:
        """[B,T] bool tokens in numerator and denominator (DAPO's overlong_filter removes some)."""
        return batch.mask

    def aggregation_denominator(self, batch: RolloutBatch) -> float:
        """The C8 denominator of this (whole) mini-batch; pass it to ``loss`` of each of its micro-batches."""
        o = self.options
        return common.aggregation_denominator(
            self.loss_mask(batch), self.loss_agg, o.max_response_length, o.agg_constant
        )

    def policy_token_loss(self, batch: RolloutBatch, prep: Prepared) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-token policy loss before NTF: -s_{i,t}, the clipped surrogate of C6; plus diagnostic tensors."""
        o = self.options
        ratio = common.clamped_log_ratio(batch.logp, batch.old_logp, o.log_ratio_clamp).exp()
        x = -common.clipped_surrogate(ratio, prep.adv, o.clip_low, o.clip_high, o.dual_clip_c)
        with torch.no_grad():
            r = ratio.detach()
            info = {
                "ratio": r,
                "clip_high": (prep.weight > 0) & (r > 1.0 + o.clip_high),
                "clip_low": (prep.weight < 0) & (r < 1.0 - o.clip_low),
            }
        return x, info

    def token_loss(self, batch: RolloutBatch, prep: Prepared) -> tuple[Tensor, Tensor, Tensor | None, dict]:
        """x_{i,t} = n * x_pg + beta * KL (C6, C7) before aggregation; returns (x, n * x_pg, kl, info)."""
        if batch.logp is None:
            raise ValueError(f"method {self.name!r}: loss needs batch.logp (current-policy log-probs)")
        x_pg, info = self.policy_token_loss(batch, prep)
        x_pg = x_pg * prep.ntf_mask
        kl = None
        x = x_pg
        if self.options.kl_beta > 0:
            if batch.ref_logp is None:
                raise ValueError(f"method {self.name!r}: kl_beta > 0 needs batch.ref_logp")
            kl = common.kl_penalty(batch.logp, batch.ref_logp, self.options.kl_estimator)
            x = x_pg + self.options.kl_beta * kl
        return x, x_pg, kl, info

    def loss(
        self, batch: RolloutBatch, prep: Prepared, *, denominator: float | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """AGG(x, mask) on one mini-batch (or micro-batch, with the mini-batch ``denominator``, C8)."""
        mask = self.loss_mask(batch)
        if denominator is None:
            denominator = self.aggregation_denominator(batch)
        x, x_pg, kl, info = self.token_loss(batch, prep)
        loss = common.aggregation_numerator(x, mask, self.loss_agg) / max(denominator, 1e-30)
        return loss, self.update_diagnostics(batch, mask, x_pg, kl, info, denominator)

    def update_diagnostics(self, batch, mask, x_pg, kl, info, denominator) -> dict[str, float]:
        """Update-level diagnostics (§5). actor/pg_loss is this batch's share of the mini-batch loss (sum it
        over micro-batches); the others are means over this batch's response tokens (average them)."""
        with torch.no_grad():
            m = mask.to(torch.float64)
            tokens = m.sum().clamp(min=1)
            ratio = info["ratio"].to(torch.float64)
            names = ["actor/pg_loss", "actor/ppo_kl", "actor/ratio_max", "actor/clipfrac_high", "actor/clipfrac_low"]
            values = [
                common.aggregation_numerator(x_pg.detach().double(), mask, self.loss_agg) / max(denominator, 1e-30),
                ((batch.old_logp - batch.logp.detach()).double() * m).sum() / tokens,
                torch.where(mask, ratio, 0.0).max(),
                (info["clip_high"] & mask).sum() / tokens,
                (info["clip_low"] & mask).sum() / tokens,
            ]
            if batch.entropy is not None:
                names.append("actor/entropy")
                values.append((batch.entropy.double() * m).sum() / tokens)
            if kl is not None:
                names.append("actor/kl_ref")
                values.append((kl.detach().double() * m).sum() / tokens)
            for key, value in info.items():
                if "/" in key:  # method-specific means over tokens, e.g. nft/ratio_mean
                    names.append(key)
                    values.append(value.to(torch.float64))
            return dict(zip(names, torch.stack([torch.as_tensor(v).to(m.device) for v in values]).tolist()))

    def __call__(self, batch: RolloutBatch) -> tuple[Tensor, dict[str, float]]:
        """Single-call contract: loss(batch, prepare(batch)); diagnostics of both merged."""
        prep = self.prepare(batch)
        loss, diag = self.loss(batch, prep)
        return loss, {**prep.diagnostics, **diag}


_REGISTRY: dict[str, type[Method]] = {}


def register(name: str):
    """Class decorator: ``@register("lens")`` makes the method available to ``get_method("lens")``."""

    def decorate(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return _REGISTRY[name]


def get_method(name: str, **options: Any) -> Method:
    """The method registered as ``name`` with the given options (ConfigError on unknown name or option)."""
    return method_class(name)(**options)
