import torch

from negrl.models import build_toy_tokenizer, count_parameters, load_model_and_tokenizer


def test_character_tokenizer_roundtrip():
    tokenizer = build_toy_tokenizer()
    text = "Compute (-1/2+3)*4. Answer in \\boxed{}.\n-\\frac{7}{2}"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token_id == 2 and tokenizer.pad_token_id == 0


def test_saved_toy_model_loads_like_any_model(tiny_model_dir):
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tokenizer.decode(tokenizer("a b\n")["input_ids"]) == "a b\n"  # spaces survive the reload
    assert tokenizer.padding_side == "left"
    assert count_parameters(model) > 0 and not model.training
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[5, 6, 7]])).logits
    assert logits.shape == (1, 3, len(tokenizer))
