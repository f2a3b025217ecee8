"""The transformers rollout backend: batched sampling from an in-process ``PreTrainedModel``.

Two decoders share one sampling loop (``_decode_chunk``):

* ``native`` (default for Llama/Qwen2/Qwen3/Mistral-shaped models): a decode step of our own that
  reads the model's parameters in place (no copy when dtype/device match, so the trainer's optimizer
  updates are seen at once), keeps a preallocated static KV cache ``[batch, kv_heads, T, head_dim]``
  per layer, grouped-query attention without repeating K/V, and on CUDA replays each decode step as
  a captured CUDA graph (one graph per (batch bucket, length bucket), captured lazily).
* ``generic`` (any ``AutoModelForCausalLM``): the model's own forward with a ``DynamicCache``.

Both prefill each distinct prompt once and share its KV cache between its ``n`` samples, left-pad,
drop finished rows from the batch (compaction; on CUDA to the next graph bucket) and stop as soon as
every row has finished. Sampling is exact softmax(logits / T) (``negrl.rollout.sampling``) with a
dedicated ``torch.Generator`` seeded from ``SamplingParams.seed``: same seed + weights + prompts +
engine options give identical completions. Results do depend on ``max_batch_size`` (how rows are
grouped), on the device, and, on CUDA, on non-deterministic kernels.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from negrl.rollout.base import Completion, SamplingParams
from negrl.rollout.sampling import response_text, sample_next

NATIVE_MODEL_TYPES = ("qwen2", "llama", "qwen3", "mistral")
_HAS_RMS_NORM = hasattr(F, "rms_norm")


# --------------------------------------------------------------------------------------------------
# engine


class HFEngine:
    """Rollouts with a transformers model held in this process (colocated with the trainer).

    Options:
        max_batch_size: sequences decoded together (bounds KV-cache and logits memory).
        impl: ``"auto"`` (native when the architecture is supported, else generic), ``"native"``,
            ``"generic"``.
        device / dtype: where and in which dtype to decode; default: the model's. When they differ
            from the model's, the native decoder keeps a converted copy of the weights, refreshed by
            ``sync_weights`` (the generic decoder keeps a converted model copy likewise).
        cuda_graphs: capture decode steps as CUDA graphs (CUDA + native only; default True).
        bucketed: decode in (batch, KV-length) buckets as CUDA graphs need (implied by cuda_graphs).
        sync_every: decode steps between host syncs (finish checks, compaction, stop strings);
            default 8 on CUDA, 1 on CPU.
        len_bucket: KV length granularity of captured graphs on CUDA.
        keep_buffers: keep the KV cache and graphs between ``generate`` calls (default: on CUDA);
            ``sleep()`` frees them.
        add_special_tokens: passed to the tokenizer for prompts (vLLM's default is True too).
        include_stop_str_in_output: keep a matched stop string at the end of ``text``.
        prefill_tokens: prompt tokens per prefill forward (bounds prefill memory).
        fused_sampler: on CUDA with Triton, sample (temperature > 0, top_p == 1) with one fused
            kernel (``negrl.rollout.triton_sampler``) instead of ~7 torch passes over the logits.
    """

    name = "hf"

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        *,
        model_path: str | None = None,
        max_batch_size: int = 256,
        impl: str = "auto",
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        cuda_graphs: bool = True,
        bucketed: bool | None = None,
        sync_every: int | None = None,
        len_bucket: int = 64,
        keep_buffers: bool | None = None,
        add_special_tokens: bool = True,
        include_stop_str_in_output: bool = False,
        prefill_tokens: int = 1 << 16,
        fused_sampler: bool = True,
    ) -> None:
        if model is None:
            if model_path is None:
                raise ValueError("HFEngine needs model= or model_path=")
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_as_dtype(dtype) or "auto")
            if device is not None:
                model.to(device)
        if tokenizer is None:
            if model_path is None:
                raise ValueError("HFEngine needs tokenizer= (or model_path= to load one)")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_path)
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if impl not in ("auto", "native", "generic"):
            raise ValueError(f"impl must be auto|native|generic, got {impl!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = int(max_batch_size)
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.dtype = _as_dtype(dtype) or _model_dtype(model)
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        # bucketed: batch / KV-length buckets as the CUDA graphs need them (forced on with graphs;
        # on CPU only useful to test that path)
        self.bucketed = self.cuda_graphs or bool(bucketed)
        if sync_every is None:
            sync_every = 8 if self.device.type == "cuda" else 1
        self.sync_every = max(1, int(sync_every))
        self.len_bucket = max(1, int(len_bucket))
        self.keep_buffers = (self.device.type == "cuda") if keep_buffers is None else bool(keep_buffers)
        self.add_special_tokens = add_special_tokens
        self.include_stop_str_in_output = include_stop_str_in_output
        self.prefill_tokens = int(prefill_tokens)
        self.fused_sampler = bool(fused_sampler) and self.device.type == "cuda"
        if self.fused_sampler:
            from negrl.rollout.triton_sampler import HAVE_TRITON

            self.fused_sampler = HAVE_TRITON

        reason = native_unsupported_reason(model)
        if impl == "native" and reason:
            raise ValueError(f"impl='native' is not available for this model: {reason}")
        self.impl = "native" if (impl == "native" or (impl == "auto" and not reason)) else "generic"

        self.eos_ids = _eos_ids(model, tokenizer)
        if not self.eos_ids:
            raise ValueError("no EOS token id: set tokenizer.eos_token or model.generation_config.eos_token_id")
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.eos_ids[0])
        self._runner: _NativeRunner | _GenericRunner | None = None

    # ---------------------------------------------------------------- protocol

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Completion]:
        prompts = list(prompts)
        prompt_ids = [self._encode(p) for p in prompts]
        rows = [(pi, s) for pi in range(len(prompts)) for s in range(params.n)]
        # Length-sorted so each chunk pads little; the n samples of a prompt stay together.
        order = sorted(range(len(rows)), key=lambda r: len(prompt_ids[rows[r][0]]))
        results: list[Any] = [None] * len(rows)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(params.seed))
        runner = self._get_runner()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(order), self.max_batch_size):
                    chunk = order[start : start + self.max_batch_size]
                    outs = self._decode_chunk(runner, [prompt_ids[rows[r][0]] for r in chunk], params, gen)
                    for r, o in zip(chunk, outs):
                        results[r] = o
        finally:
            self.model.train(was_training)
            if not self.keep_buffers:
                runner.release()
        completions = []
        for r, (pi, s) in enumerate(rows):
            tokens, logps, reason = results[r]
            completions.append(self._completion(pi, s, prompt_ids[pi], tokens, logps, reason, params.stop))
        return completions

    def sync_weights(self, model: Any) -> None:
        """Sample from ``model``'s weights from now on. Same object: nothing to copy (the weights
        are read in place), only converted copies (dtype/device differ) are refreshed. Another
        object: its state dict is copied into the engine's model in place."""
        if model is not None and model is not self.model:
            src = getattr(model, "module", model)  # DDP / compiled wrappers
            self.model.load_state_dict(src.state_dict(), strict=True)
        if self._runner is not None:
            self._runner.refresh()

    def sleep(self) -> None:
        """Free the KV cache, CUDA graphs and converted weights (the trainer needs the memory)."""
        if self._runner is not None:
            self._runner.release(weights=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def wake_up(self) -> None:
        """Counterpart of ``sleep``; buffers are re-created lazily by the next ``generate``."""
        if self._runner is not None:
            self._runner.refresh()

    def close(self) -> None:
        self.sleep()
        self._runner = None

    # ---------------------------------------------------------------- internals

    def _get_runner(self) -> "_NativeRunner | _GenericRunner":
        if self._runner is None:
            cls = _NativeRunner if self.impl == "native" else _GenericRunner
            self._runner = cls(self)
        return self._runner

    def _encode(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=self.add_special_tokens)["input_ids"]
        if len(ids) == 0:
            raise ValueError(f"prompt tokenizes to zero tokens: {prompt!r}")
        return [int(t) for t in ids]

    def _decode_chunk(
        self, runner: Any, prompt_ids: list[list[int]], params: SamplingParams, gen: torch.Generator
    ) -> list[tuple[list[int], list[float], str]]:
        """Decode one chunk of rows (each a prompt's token ids); returns (tokens, logprobs, reason)."""
        dev = self.device
        # distinct prompts are prefilled once
        uniq: dict[tuple[int, ...], int] = {}
        row_map = [uniq.setdefault(tuple(p), len(uniq)) for p in prompt_ids]
        u_ids = [list(k) for k in uniq]
        n_rows, m = len(prompt_ids), params.max_tokens
        logits = runner.start(u_ids, row_map, m)  # [n_rows, V] float32

        out_tok = torch.full((n_rows, m), self.pad_id, dtype=torch.long, device=dev)
        out_lp = torch.zeros((n_rows, m), dtype=torch.float32, device=dev)
        lengths = torch.full((n_rows,), m, dtype=torch.long, device=dev)
        stopped = torch.zeros(n_rows, dtype=torch.bool, device=dev)
        row_ids = torch.arange(n_rows, device=dev)  # batch slot -> chunk row
        done = torch.zeros(n_rows, dtype=torch.bool, device=dev)  # per batch slot
        eos = torch.tensor(self.eos_ids, dtype=torch.long, device=dev)
        pad = torch.tensor(self.pad_id, dtype=torch.long, device=dev)
        stop_strs = tuple(s for s in params.stop if s)
        stop_check = _StopChecker(self.tokenizer, stop_strs, n_rows) if stop_strs else None
        b = n_rows
        fused = self.fused_sampler and params.temperature > 0 and params.top_p >= 1.0
        if fused:
            from negrl.rollout.triton_sampler import fused_sample
        for i in range(m):
            if fused:
                tok, lp = fused_sample(logits, params.temperature, gen, row_ids)
            else:
                tok, lp = sample_next(logits, params.temperature, params.top_p, gen, row_ids, n_rows)
            live = ~done
            tok = torch.where(live, tok, pad)
            out_tok[row_ids, i] = tok
            out_lp[row_ids, i] = torch.where(live, lp, torch.zeros_like(lp))
            hit = live & torch.isin(tok, eos)
            lengths[row_ids] = torch.where(hit, torch.full_like(row_ids, i + 1), lengths[row_ids])
            stopped[row_ids] = stopped[row_ids] | hit
            done = done | hit
            if i == m - 1:
                break
            if (i + 1) % self.sync_every == 0:
                if stop_check is not None:
                    stop_check.check(out_tok, lengths, stopped, i)
                    done = stopped[row_ids] | done
                n_active = int((~done).sum())
                if n_active == 0:
                    break
                target = runner.bucket(n_active, b)
                if target < b:
                    active = torch.nonzero(~done).squeeze(1)
                    filler = torch.nonzero(done).squeeze(1)[: target - n_active]
                    keep = torch.cat([active, filler])
                    runner.select(keep, target)
                    row_ids, done, tok, b = row_ids[keep], done[keep], tok[keep], target
            logits = runner.step(tok)
        if stop_check is not None:
            stop_check.check(out_tok, lengths, stopped, m - 1)
        lengths_l = lengths.tolist()
        toks = out_tok.tolist()
        lps = out_lp.tolist()
        stopped_l = stopped.tolist()
        outs = []
        for r in range(n_rows):
            n = lengths_l[r]
            reason = "stop" if stopped_l[r] else "length"
            outs.append((toks[r][:n], lps[r][:n], reason))
        return outs

    def _completion(
        self,
        prompt_index: int,
        sample_idx: int,
        prompt_ids: list[int],
        tokens: list[int],
        logps: list[float],
        reason: str,
        stop: tuple[str, ...],
    ) -> Completion:
        text = response_text(self.tokenizer, tokens, reason, stop, self.include_stop_str_in_output)
        return Completion(
            prompt_index=prompt_index,
            sample_idx=sample_idx,
            prompt_token_ids=list(prompt_ids),
            token_ids=tokens,
            text=text,
            finish_reason=reason,
            truncated=reason == "length",
            sampler_logprobs=logps,
        )


class _StopChecker:
    """Finds, per row, the first generated token at which a stop string appears in the decoded text.

    Checks are incremental (each position once) and decode only a tail window of tokens, so a stop
    string found at position j was completed by token j; the row is then cut to j + 1 tokens."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], n_rows: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.window = 4 * max(len(s) for s in stops) + 4
        self.checked = [0] * n_rows  # positions < checked[r] are known stop-free
        self.open = set(range(n_rows))

    def check(self, out_tok: torch.Tensor, lengths: torch.Tensor, stopped: torch.Tensor, i: int) -> None:
        if not self.open:
            return
        rows = sorted(self.open)
        toks = out_tok[rows, : i + 1].tolist()
        lens = lengths[rows].tolist()
        stp = stopped[rows].tolist()
        for r, t, n, s in zip(rows, toks, lens, stp):
            end = min(i + 1, n)  # positions [checked, end) are new
            for j in range(self.checked[r], end):
                tail = self.tokenizer.decode(t[max(0, j + 1 - self.window) : j + 1], skip_special_tokens=True)
                if any(x in tail for x in self.stops):
                    lengths[r] = j + 1
                    stopped[r] = True
                    self.open.discard(r)
                    break
            else:
                self.checked[r] = end
                if s or end >= n:  # finished by EOS / length and fully checked
                    self.open.discard(r)


# --------------------------------------------------------------------------------------------------
# generic decoder: the model's own forward + DynamicCache


class _GenericRunner:
    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self._copy: Any = None
        self.refresh()
        self.cache: Any = None

    @property
    def model(self) -> Any:
        return self._copy if self._copy is not None else self.engine.model

    def refresh(self) -> None:
        e = self.engine
        if _model_dtype(e.model) == e.dtype and _model_device(e.model) == e.device:
            self._copy = None
            return
        if self._copy is None:
            self._copy = copy.deepcopy(e.model).to(device=e.device, dtype=e.dtype).eval()
        else:
            self._copy.load_state_dict(e.model.state_dict())

    def release(self, weights: bool = False) -> None:
        self.cache = None
        if weights:
            self._copy = None

    def bucket(self, n_active: int, b: int) -> int:
        return n_active if n_active <= b - max(1, b // 8) else b

    def start(self, u_ids: list[list[int]], row_map: list[int], max_new: int) -> torch.Tensor:
        from transformers import DynamicCache

        e = self.engine
        if self._copy is None and not (_model_dtype(e.model) == e.dtype and _model_device(e.model) == e.device):
            self.refresh()
        ids, valid, _ = _left_pad(u_ids, e.pad_id, e.device)
        pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
        self.cache = DynamicCache()
        kw = dict(input_ids=ids, attention_mask=valid.long(), position_ids=pos, past_key_values=self.cache,
                  use_cache=True)
        try:
            out = self.model(**kw, logits_to_keep=1)
        except TypeError:  # architectures without logits_to_keep
            out = self.model(**kw)
        self.cache = out.past_key_values
        idx = torch.tensor(row_map, dtype=torch.long, device=e.device)
        self.cache.batch_select_indices(idx)
        self.mask = valid.long()[idx]
        self.pos = pos[idx, -1]
        return out.logits[:, -1].float()[idx]

    def select(self, keep: torch.Tensor, target: int) -> None:
        self.cache.batch_select_indices(keep)
        self.mask = self.mask[keep]
        self.pos = self.pos[keep]

    def step(self, tok: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        self.pos = self.pos + 1
        out = self.model(
            input_ids=tok[:, None],
            attention_mask=self.mask,
            position_ids=self.pos[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache = out.past_key_values
        return out.logits[:, -1].float()


# --------------------------------------------------------------------------------------------------
# native decoder: own static-cache decode loop over the model's parameters


def native_unsupported_reason(model: Any) -> str:
    """Empty string when the native decoder can run ``model``; else why not."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return "no config"
    mt = getattr(cfg, "model_type", None)
    if mt not in NATIVE_MODEL_TYPES:
        return f"model_type {mt!r} not in {NATIVE_MODEL_TYPES}"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"hidden_act {cfg.hidden_act!r}"
    if getattr(cfg, "use_sliding_window", False) or (mt == "mistral" and getattr(cfg, "sliding_window", None)):
        return "sliding-window attention"
    layer_types = getattr(cfg, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return f"layer types {sorted(set(layer_types))}"
    base = getattr(model, "model", None)
    if base is None or not hasattr(base, "layers") or not hasattr(model, "lm_head"):
        return "not a <Model>ForCausalLM with .model.layers and .lm_head"
    for layer in base.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if attn is None or mlp is None:
            return "layer without self_attn/mlp"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            if not isinstance(getattr(attn, name, None), torch.nn.Linear):
                return f"self_attn.{name} is not nn.Linear (quantized?)"
        for name in ("gate_proj", "up_proj", "down_proj"):
            if not isinstance(getattr(mlp, name, None), torch.nn.Linear):
                return f"mlp.{name} is not nn.Linear"
    if getattr(cfg, "attention_dropout", 0.0) not in (0, 0.0) and model.training:
        return "attention dropout"
    return ""


@dataclass
class _Layer:
    ln1: torch.Tensor
    ln2: torch.Tensor
    wq: torch.Tensor
    bq: torch.Tensor | None
    wk: torch.Tensor
    bk: torch.Tensor | None
    wv: torch.Tensor
    bv: torch.Tensor | None
    wo: torch.Tensor
    bo: torch.Tensor | None
    wg: torch.Tensor
    wu: torch.Tensor
    wd: torch.Tensor
    qn: torch.Tensor | None
    kn: torch.Tensor | None


class _NativeRunner:
    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        m = engine.model
        cfg = m.config
        self.n_layers = len(m.model.layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.group = self.n_heads // self.n_kv
        self.scale = self.head_dim**-0.5
        self.eps = float(getattr(cfg, "rms_norm_eps", 1e-6))
        self.vocab = int(m.lm_head.weight.shape[0])
        self.device, self.dtype = engine.device, engine.dtype
        self._copies: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._fingerprint: tuple = ()
        self.layers: list[_Layer] = []
        self._buf_b = self._buf_t = 0
        self._graphs: dict[tuple[int, int], Any] = {}
        self._pool: Any = None
        self._bind()

    # weights ------------------------------------------------------------------------------------

    def _params_fingerprint(self) -> tuple:
        return tuple((p.data_ptr(), p.dtype, p.device) for p in self.engine.model.parameters())

    def _bind(self) -> None:
        """Alias the model's parameters (same dtype/device) or make converted copies."""
        m = self.engine.model
        cache: dict[int, torch.Tensor] = {}
        self._copies = []

        def conv(p: torch.Tensor | None) -> torch.Tensor | None:
            if p is None:
                return None
            src = p.detach()
            if src.dtype == self.dtype and src.device == self.device:
                return src
            key = src.data_ptr()
            if key not in cache:
                cache[key] = src.to(device=self.device, dtype=self.dtype, copy=True)
                self._copies.append((src, cache[key]))
            return cache[key]

        base = m.model
        self.embed = conv(base.embed_tokens.weight)
        self.norm = conv(base.norm.weight)
        self.lm_head = conv(m.lm_head.weight)
        self.norm_eps = float(getattr(base.norm, "variance_epsilon", getattr(base.norm, "eps", self.eps)))
        self.layers = []
        for layer in base.layers:
            a, f = layer.self_attn, layer.mlp
            qn, kn = getattr(a, "q_norm", None), getattr(a, "k_norm", None)
            self.layers.append(
                _Layer(
                    ln1=conv(layer.input_layernorm.weight),
                    ln2=conv(layer.post_attention_layernorm.weight),
                    wq=conv(a.q_proj.weight),
                    bq=conv(a.q_proj.bias),
                    wk=conv(a.k_proj.weight),
                    bk=conv(a.k_proj.bias),
                    wv=conv(a.v_proj.weight),
                    bv=conv(a.v_proj.bias),
                    wo=conv(a.o_proj.weight),
                    bo=conv(a.o_proj.bias),
                    wg=conv(f.gate_proj.weight),
                    wu=conv(f.up_proj.weight),
                    wd=conv(f.down_proj.weight),
                    qn=conv(qn.weight) if qn is not None else None,
                    kn=conv(kn.weight) if kn is not None else None,
                )
            )
        self.rotary = base.rotary_emb
        self._fingerprint = self._params_fingerprint()
        self._graphs = {}
        self._rope_t = 0

    def refresh(self) -> None:
        """Re-read the weights: in-place copies when converted; re-bind when tensors moved."""
        if self._params_fingerprint() != self._fingerprint or not self.layers:
            self._bind()
            return
        with torch.no_grad():
            for src, dst in self._copies:
                dst.copy_(src)

    def release(self, weights: bool = False) -> None:
        self._graphs = {}
        self._pool = None
        self._buf_b = self._buf_t = 0
        for name in ("K", "V", "bias", "tok_buf", "pos_buf", "col_buf", "logits_buf"):
            setattr(self, name, None)
        if weights:
            self.layers = []
            self._copies = []

    # buffers ------------------------------------------------------------------------------------

    def _ensure(self, b: int, t: int) -> None:
        if not self.layers:
            self._bind()
        if self._params_fingerprint() != self._fingerprint:
            self._bind()
            self._buf_b = 0
        if b <= self._buf_b and t <= self._buf_t:
            return
        b_alloc = max(b, self._buf_b)
        t_alloc = max(t, self._buf_t)
        if self.engine.bucketed:
            t_alloc = _round_up(t_alloc, self.engine.len_bucket)
        self.release()
        dev, dt = self.device, self.dtype
        shape = (b_alloc, self.n_kv, t_alloc, self.head_dim)
        self.K = [torch.zeros(shape, device=dev, dtype=dt) for _ in range(self.n_layers)]
        self.V = [torch.zeros(shape, device=dev, dtype=dt) for _ in range(self.n_layers)]
        self.bias = torch.full((b_alloc, t_alloc), float("-inf"), device=dev, dtype=dt)
        self.tok_buf = torch.zeros(b_alloc, dtype=torch.long, device=dev)
        self.pos_buf = torch.zeros(b_alloc, dtype=torch.long, device=dev)
        self.col_buf = torch.zeros(1, dtype=torch.long, device=dev)
        self.logits_buf = torch.zeros((b_alloc, self.vocab), device=dev, dtype=torch.float32)
        self._buf_b, self._buf_t = b_alloc, t_alloc
        # rope table for every position a row can reach
        pos = torch.arange(t_alloc, device=dev)[None]
        probe = torch.zeros(1, device=dev, dtype=dt)
        cos, sin = self.rotary(probe, pos)
        cos, sin = cos[0].to(dt), sin[0].to(dt)
        half = sin.shape[-1] // 2
        self.cos, self.sin = cos, torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)  # signed sin

    def bucket(self, n_active: int, b: int) -> int:
        if self.engine.bucketed:
            t = _graph_bucket(n_active)
            return t if t < b else b
        return n_active if n_active <= b - max(1, b // 8) else b

    # math ---------------------------------------------------------------------------------------

    def _rms(self, x: torch.Tensor, w: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        eps = self.eps if eps is None else eps
        if _HAS_RMS_NORM:  # one fused kernel on CUDA; statistics in float32 like HF's RMSNorm
            return F.rms_norm(x, (x.shape[-1],), w, eps)
        dt = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        return w * h.to(dt)

    @staticmethod
    def _rope(x: torch.Tensor, cos: torch.Tensor, sin_s: torch.Tensor) -> torch.Tensor:
        """x * cos + rotate_half(x) * sin, as roll(x, D/2) * [-sin1, sin2] (3 kernels)."""
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, -1), sin_s)

    def _qkv(self, w: _Layer, h: torch.Tensor, shape: tuple[int, ...]):
        q = F.linear(h, w.wq, w.bq).view(*shape, self.n_heads, self.head_dim)
        k = F.linear(h, w.wk, w.bk).view(*shape, self.n_kv, self.head_dim)
        v = F.linear(h, w.wv, w.bv).view(*shape, self.n_kv, self.head_dim)
        if w.qn is not None:
            q = self._rms(q, w.qn)
            k = self._rms(k, w.kn)
        return q, k, v

    def _mlp(self, w: _Layer, x: torch.Tensor) -> torch.Tensor:
        h = self._rms(x, w.ln2)
        return x + F.linear(F.silu(F.linear(h, w.wg)) * F.linear(h, w.wu), w.wd)

    # prefill ------------------------------------------------------------------------------------

    def start(self, u_ids: list[list[int]], row_map: list[int], max_new: int) -> torch.Tensor:
        e = self.engine
        n_rows = len(row_map)
        s_len = max(len(p) for p in u_ids)
        u = len(u_ids)
        self._ensure(max(n_rows, u), s_len + max_new)
        ids, valid, _ = _left_pad(u_ids, e.pad_id, self.device)
        last = torch.empty((u, self.vocab), device=self.device, dtype=torch.float32)
        per = max(1, min(u, e.prefill_tokens // max(1, s_len)))
        for a in range(0, u, per):
            z = min(u, a + per)
            last[a:z] = self._prefill(ids[a:z], valid[a:z], a)
        idx = torch.tensor(row_map, dtype=torch.long, device=self.device)
        for kv in (*self.K, *self.V):
            kv[:n_rows, :, :s_len] = kv[idx, :, :s_len]
        self.bias[:n_rows].fill_(float("-inf"))
        self.bias[:n_rows, :s_len].masked_fill_(valid[idx], 0.0)
        self.pos_buf[:n_rows] = valid.sum(-1)[idx]
        self.col_buf.fill_(s_len)
        self._col_host = s_len
        self.b = n_rows
        self.s_len = s_len
        return last[idx]

    def _prefill(self, ids: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        u, s = ids.shape
        pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]  # [u,1,s,D]
        causal = torch.ones(s, s, dtype=torch.bool, device=self.device).tril()
        eye = torch.eye(s, dtype=torch.bool, device=self.device)
        mask = (causal & (valid[:, None, :] | eye))[:, None]  # [u,1,s,s]; pad queries see themselves
        x = F.embedding(ids, self.embed)
        for li, w in enumerate(self.layers):
            h = self._rms(x, w.ln1)
            q, k, v = self._qkv(w, h, (u, s))
            q = self._rope(q.transpose(1, 2), cos, sin)
            k = self._rope(k.transpose(1, 2), cos, sin)
            v = v.transpose(1, 2)
            self.K[li][row0 : row0 + u, :, :s] = k
            self.V[li][row0 : row0 + u, :, :s] = v
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale, enable_gqa=True)
            x = x + F.linear(o.transpose(1, 2).reshape(u, s, -1), w.wo, w.bo)
            x = self._mlp(w, x)
        x = self._rms(x[:, -1], self.norm, self.norm_eps)
        return F.linear(x, self.lm_head).float()

    # decode -------------------------------------------------------------------------------------

    def _step_impl(self, b: int, t: int) -> None:
        """One decode step for batch slots [0, b) attending to KV columns [0, t); reads tok_buf,
        pos_buf, col_buf; writes K/V column col and logits_buf[:b]. Idempotent given its inputs,
        so CUDA-graph warm-up runs are harmless."""
        col = self.col_buf
        pos = self.pos_buf[:b]
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]  # [b,1,D]
        bias = self.bias[:b]
        bias.index_fill_(1, col, 0.0)
        biasv = bias[:, None, None, :t]  # [b,1,1,t]
        x = F.embedding(self.tok_buf[:b], self.embed)  # [b,H]
        for li, w in enumerate(self.layers):
            h = self._rms(x, w.ln1)
            q, k, v = self._qkv(w, h, (b,))
            q = self._rope(q, cos, sin)
            k = self._rope(k, cos, sin)
            kc, vc = self.K[li][:b], self.V[li][:b]
            kc.index_copy_(2, col, k.unsqueeze(2))
            vc.index_copy_(2, col, v.unsqueeze(2))
            qg = q.view(b, self.n_kv, self.group, self.head_dim)  # grouped queries: K/V not repeated
            sc = torch.add(biasv, torch.matmul(qg, kc[:, :, :t].transpose(-1, -2)), alpha=self.scale)
            p = torch.softmax(sc, dim=-1)  # float32 inside, like HF's softmax(dtype=float32).to(bf16)
            o = torch.matmul(p, vc[:, :, :t]).reshape(b, self.n_heads * self.head_dim)
            x = torch.addmm(x, o, w.wo.t()) if w.bo is None else x + F.linear(o, w.wo, w.bo)
            h = self._rms(x, w.ln2)
            x = torch.addmm(x, F.silu(F.linear(h, w.wg)) * F.linear(h, w.wu), w.wd.t())
        x = self._rms(x, self.norm, self.norm_eps)
        self.logits_buf[:b].copy_(F.linear(x, self.lm_head))

    def step(self, tok: torch.Tensor) -> torch.Tensor:
        b = self.b
        self.tok_buf[:b].copy_(tok)
        t_need = self._col_host + 1
        if self.engine.bucketed:
            t = min(_round_up(t_need, self.engine.len_bucket), self._buf_t)
            if self.engine.cuda_graphs:
                g = self._graphs.get((b, t))
                if g is None:
                    g = self._capture(b, t)
                g.replay()
            else:
                self._step_impl(b, t)
        else:
            self._step_impl(b, t_need)
        self.pos_buf[:b] += 1
        self.col_buf += 1
        self._col_host += 1
        return self.logits_buf[:b]

    def _capture(self, b: int, t: int) -> Any:
        stream = torch.cuda.Stream(device=self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step_impl(b, t)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=self._pool):
            self._step_impl(b, t)
        self._graphs[(b, t)] = g
        return g

    def select(self, keep: torch.Tensor, target: int) -> None:
        t = self._col_host + 1
        for kv in (*self.K, *self.V):
            kv[:target, :, :t] = kv[keep, :, :t]
        self.bias[:target] = self.bias[keep]
        self.pos_buf[:target] = self.pos_buf[keep]
        self.b = target


def _graph_bucket(n: int) -> int:
    """Smallest of 1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, ... that is >= n."""
    if n <= 8:
        return 1 << max(0, math.ceil(math.log2(max(n, 1))))
    p = 1 << (n - 1).bit_length()  # next power of two >= n
    return p * 3 // 4 if p * 3 // 4 >= n else p


# --------------------------------------------------------------------------------------------------
# helpers


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def _left_pad(seqs: list[list[int]], pad_id: int, device: torch.device):
    s = max(len(p) for p in seqs)
    ids = torch.full((len(seqs), s), pad_id, dtype=torch.long)
    valid = torch.zeros((len(seqs), s), dtype=torch.bool)
    for i, p in enumerate(seqs):
        ids[i, s - len(p) :] = torch.tensor(p, dtype=torch.long)
        valid[i, s - len(p) :] = True
    return ids.to(device), valid.to(device), s


def _as_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    return getattr(torch, aliases.get(name, name))


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _model_dtype(model: Any) -> torch.dtype:
    try:
        return next(model.parameters()).dtype
    except StopIteration:
        return torch.float32


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    gc = getattr(model, "generation_config", None)
    for src in (getattr(tokenizer, "eos_token_id", None), getattr(gc, "eos_token_id", None)):
        if src is None:
            continue
        for t in src if isinstance(src, (list, tuple)) else [src]:
            if t is not None and int(t) not in ids:
                ids.append(int(t))
    return ids

