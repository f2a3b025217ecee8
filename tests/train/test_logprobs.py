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
