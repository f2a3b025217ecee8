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
from typing import Any, Sequence

import torch

from negrl.rollout.base import Completion, SamplingParams
from negrl.rollout.hf_native import _left_pad, _NativeRunner, native_unsupported_reason
from negrl.rollout.sampling import response_text, sample_next



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

