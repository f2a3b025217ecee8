"""The native decoder of the transformers backend: a decode step of our own over the model's weights.

For Llama/Qwen2/Qwen3/Mistral-shaped models it reads the parameters in place (no copy when dtype and
device match), keeps a preallocated static KV cache per layer, does grouped-query attention without
repeating K/V, and on CUDA replays each decode step as a captured CUDA graph. ``negrl.rollout.hf``
drives it; see that module for the sampling loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from negrl.rollout.hf import HFEngine

NATIVE_MODEL_TYPES = ("qwen2", "llama", "qwen3", "mistral")
_HAS_RMS_NORM = hasattr(F, "rms_norm")


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
    def __init__(self, engine: "HFEngine") -> None:
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
