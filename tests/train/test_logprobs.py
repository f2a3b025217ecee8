import torch

from negrl.models import load_model_and_tokenizer
from negrl.train.logprobs import pack_sequences, response_logprobs


def test_packing_layout():
    seqs = pack_sequences([[5, 6, 7], [8]], [[9, 2], [10, 11, 2]], pad_id=0)
    assert seqs.input_ids.tolist() == [[5, 6, 7, 9, 2], [8, 10, 11, 2, 0]]
    assert seqs.target_index.tolist() == [[3, 4, 0], [1, 2, 3]]
    assert seqs.response_mask.tolist() == [[True, True, False], [True, True, True]]
    assert seqs.select(torch.tensor([0])).input_ids.tolist() == [[5, 6, 7, 9, 2]]


def test_logprobs_equal_an_unpadded_forward_at_temperature(tiny_model_dir):
    model, _ = load_model_and_tokenizer(tiny_model_dir, device="cpu")
    prompts, responses = [[5, 6, 7], [8]], [[9, 2], [10, 11, 12, 2]]
    seqs = pack_sequences(prompts, responses, pad_id=0)
    logp, entropy = response_logprobs(model, seqs, temperature=0.7, with_entropy=True)
    for row, (prompt, response) in enumerate(zip(prompts, responses)):
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            full = torch.log_softmax(model(input_ids=ids).logits[0] / 0.7, -1)
        expected = [full[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(response)]
        torch.testing.assert_close(logp[row, : len(response)], torch.tensor(expected), atol=1e-5, rtol=0)
        assert (logp[row, len(response):] == 0).all()
        ent = -(full.exp() * full).sum(-1)[len(prompt) - 1 : len(prompt) - 1 + len(response)]
        torch.testing.assert_close(entropy[row, : len(response)], ent, atol=1e-5, rtol=0)


def test_chunked_head_matches_full_log_softmax_and_its_gradients():
    from negrl.train.logprobs import chunked_head_logprobs

    torch.manual_seed(0)
    h = torch.randn(37, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(50, dtype=torch.float64, requires_grad=True)
    y, g = torch.randint(0, 50, (37,)), torch.randn(37, dtype=torch.float64)
    logp, entropy = chunked_head_logprobs(h, w, b, y, temperature=0.7, chunk_tokens=5, with_entropy=True)
    grads = torch.autograd.grad((logp * g).sum(), (h, w, b))
    full = torch.log_softmax((h @ w.T + b) / 0.7, -1)
    expected = torch.autograd.grad((full.gather(1, y[:, None]).squeeze(1) * g).sum(), (h, w, b))
    torch.testing.assert_close(logp, full.gather(1, y[:, None]).squeeze(1), atol=1e-12, rtol=0)
    torch.testing.assert_close(entropy, -(full.exp() * full).sum(-1), atol=1e-12, rtol=0)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_fallback_through_model_logits_agrees_with_the_chunked_head(tiny_model_dir):
    model, _ = load_model_and_tokenizer(tiny_model_dir, device="cpu")
    seqs = pack_sequences([[5, 6, 7], [8]], [[9, 2], [10, 11, 12, 2]], pad_id=0)
    fast, fast_entropy = response_logprobs(model, seqs, temperature=0.9, with_entropy=True, chunk_tokens=2)
    model.config.final_logit_softcapping = 0.5  # not applied by Llama's forward: only forces the fallback
    slow, slow_entropy = response_logprobs(model, seqs, temperature=0.9, with_entropy=True, chunk_tokens=2)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast_entropy, slow_entropy, atol=1e-5, rtol=0)
