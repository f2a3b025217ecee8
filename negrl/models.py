"""Load any causal LM + tokenizer (hub id or local directory), or build the offline toy model.

The toy model is a standard transformers architecture (Llama; Qwen2's auto-tokenizer mapping would
replace our character tokenizer with Qwen2's byte-level one on reload), randomly initialised from a config, with a
character-level tokenizer built with the ``tokenizers`` library. Both are saved with ``save_pretrained``
so every later stage loads them exactly like a hub model.

    >>> from negrl.models import build_toy_tokenizer, build_toy_model
    >>> tok = build_toy_tokenizer()
    >>> tok.decode(tok("1/2")["input_ids"])
    '1/2'
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import torch

from negrl.errors import ConfigError

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
TOY_ALPHABET = "".join(ch for ch in string.printable if ch not in "\r\x0b\x0c\t")  # printable ASCII + \n

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_toy_tokenizer():
    """A character-level tokenizer: one token per printable ASCII character, plus pad/bos/eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, BOS: 1, EOS: 2}
    for ch in TOY_ALPHABET:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=PAD,
        padding_side="left", clean_up_tokenization_spaces=False,
    )
    return tokenizer


def build_toy_model(tokenizer, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                    intermediate_size: int, max_position: int, seed: int = 0):
    """A randomly initialised Llama causal LM sized for the tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ConfigError(
            f"model.toy: hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}), "
            f"and num_heads by num_kv_heads ({num_kv_heads})"
        )
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, num_key_value_heads=num_kv_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position, tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, attention_dropout=0.0, attention_bias=False, mlp_bias=False,
        head_dim=hidden_size // num_heads,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_toy(toy_config: Any):
    tokenizer = build_toy_tokenizer()
    model = build_toy_model(
        tokenizer, toy_config.hidden_size, toy_config.num_layers, toy_config.num_heads,
        toy_config.num_kv_heads, toy_config.intermediate_size, toy_config.max_position, toy_config.seed,
    )
    return model, tokenizer


def load_tokenizer(name_or_path: str | os.PathLike):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(name_or_path: str | os.PathLike, dtype: str = "float32", device: str | None = None):
    """Load a causal LM from a hub id or a directory; eval mode, on ``device`` (default: cuda if present)."""
    from transformers import AutoModelForCausalLM

    source = str(name_or_path)
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(source).exists():
        raise ConfigError(f"model '{source}' is not a local directory and HF_HUB_OFFLINE=1 forbids the hub")
    model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype])
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return model


def load_model_and_tokenizer(name_or_path: str | os.PathLike, dtype: str = "float32", device: str | None = None):
    return load_model(name_or_path, dtype, device), load_tokenizer(name_or_path)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
