"""Prompt templates: every template asks for the final answer in ``\\boxed{}``.

A tokenizer with a chat template (instruct models) gets the instruction as a user turn through
``apply_chat_template``; a base model or the toy character model gets the plain text.

    >>> from negrl.data.prompts import render_prompt
    >>> render_prompt("Compute 1+1.", "boxed_short")
    'Compute 1+1. Answer in \\\\boxed{}.\\n'
"""

from __future__ import annotations

from typing import Any

TEMPLATES = {
    # Qwen2.5-Math / LENS / Dr. GRPO evaluation wording.
    "boxed": "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
    # Short form for the character-level toy model (every character is a token).
    "boxed_short": "{problem} Answer in \\boxed{{}}.\n",
}


def render_prompt(problem: str, template: str, tokenizer: Any | None = None) -> str:
    if template not in TEMPLATES:
        raise KeyError(f"unknown prompt template {template!r}; known: {', '.join(TEMPLATES)}")
    text = TEMPLATES[template].format(problem=problem)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text
