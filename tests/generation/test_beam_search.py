"""Beam search against transformers' on the same GPT-2 checkpoints: sequences, sequences_scores, beam_indices.

Batched and left-padded prompts, several num_beams / length_penalty / early_stopping settings, several EOS ids,
num_return_sequences, seeded beam sampling, both decoding steps (the native kernel and the PyTorch one); and the
mechanics: the prompt runs once, every step after it feeds one token per beam through the cache, and the cache's
rows are gathered in place rather than re-computed.
"""

from __future__ import annotations

import pytest
import torch

from tests.generation.common import EOS, PAD, assert_same, both, hf_generate, make_batch, zoo_generate
from tests.test_generation import step_backend  # noqa: F401  (the fixture: native kernel and PyTorch step)
from zoo.generation import KVCache
from zoo.plugins.gpt2.modeling import GPT2LMHeadModel


@pytest.fixture(scope="module", params=["tiny-gelu_new", "gelu-reorder-unscaled-untied"])
def pair(request, tmp_path_factory):
    return both(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def batch():
    return make_batch(seed=4)


def likely_eos(model, batch) -> list[int]:
    """Tokens the beams do pick early, so that beams finish at different lengths."""
    free = model.generate(**batch, max_new_tokens=6, eos_token_id=[], num_beams=2)
    return [int(free[0, 9 + 1]), int(free[2, 9 + 3])]


SETTINGS = [
    dict(num_beams=2),
    dict(num_beams=3, length_penalty=0.0),
    dict(num_beams=4, length_penalty=2.0, early_stopping=True),
    dict(num_beams=3, length_penalty=-0.5, early_stopping="never"),
    dict(num_beams=5, length_penalty=1.0, early_stopping="never"),
    dict(num_beams=4, length_penalty=0.5, early_stopping=False, num_return_sequences=3),
    dict(num_beams=3, early_stopping=True, num_return_sequences=3),
    dict(num_beams=2, repetition_penalty=1.4, no_repeat_ngram_size=2),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_beam_search_matches_transformers(pair, batch, settings):
    hf, model = pair
    eos = likely_eos(model, batch)
    common = dict(max_new_tokens=8, eos_token_id=eos, pad_token_id=PAD, return_dict_in_generate=True,
                  output_scores=True, output_logits=True, **settings)
    expected = hf_generate(hf, batch, **common)
    got = zoo_generate(model, batch, **common)
    assert_same(got, expected)
    n = settings.get("num_return_sequences", 1)
    assert got.sequences.shape[0] == 3 * n and got.sequences_scores.shape == (3 * n,)
    assert len(got.scores) == len(expected.scores) and got.scores[0].shape == (3 * settings["num_beams"], 120)
    ids_only = zoo_generate(model, batch, **{**common, "return_dict_in_generate": False})
    assert torch.equal(ids_only, got.sequences)


def test_beam_search_one_prompt_at_a_time_equals_the_batch(pair, batch):
    _, model = pair
    common = dict(max_new_tokens=7, eos_token_id=likely_eos(model, batch), pad_token_id=PAD, num_beams=3)
    together = model.generate(**batch, **common)
    for row in range(3):
        n = int(batch["attention_mask"][row].sum())
        alone = model.generate(batch["input_ids"][row : row + 1, -n:], **common)
        expected = together[row, 9 - n : 9 - n + alone.shape[1]]
        assert torch.equal(alone[0], expected), row


@pytest.mark.parametrize("settings", [dict(num_beams=2, top_k=10), dict(num_beams=3, temperature=0.8, top_p=0.9),
                                      dict(num_beams=3, num_return_sequences=2, min_p=0.05, top_k=0)],
                         ids=["top_k", "temperature-top_p", "return-sequences-min_p"])
def test_seeded_beam_sampling_matches_transformers(pair, batch, settings):
    hf, model = pair
    common = dict(max_new_tokens=8, eos_token_id=[EOS, *likely_eos(model, batch)], pad_token_id=PAD, do_sample=True,
                  return_dict_in_generate=True, output_scores=True, **settings)
    assert_same(zoo_generate(model, batch, **common), hf_generate(hf, batch, **common))


def test_beam_search_through_either_decoding_step(tmp_path, step_backend):  # noqa: F811
    hf, model = both(tmp_path)
    batch = make_batch(seed=5)
    for beams in (2, 3):  # 3 beams x 3 prompts = 9 rows: past the native kernel's row limit, the PyTorch step
        common = dict(max_new_tokens=8, eos_token_id=EOS, pad_token_id=PAD, num_beams=beams,
                      return_dict_in_generate=True, output_scores=True)
        assert_same(zoo_generate(model, batch, **common), hf_generate(hf, batch, **common))


def test_the_prompt_runs_once_and_the_cache_is_reordered_in_place(tmp_path, monkeypatch):
    _, model = both(tmp_path)
    batch = make_batch(seed=6)
    forward_calls, reorders = [], []
    real_forward, real_reorder = GPT2LMHeadModel.forward, KVCache.reorder

    def forward(self, input_ids=None, past_key_values=None, **kwargs):
        forward_calls.append((tuple(input_ids.shape), past_key_values.length))
        return real_forward(self, input_ids, past_key_values, **kwargs)

    def reorder(self, index):
        pointers = [k.data_ptr() for k in self.keys]
        real_reorder(self, index)
        reorders.append((len(index), self.length, pointers == [k.data_ptr() for k in self.keys]))

    monkeypatch.setattr(GPT2LMHeadModel, "forward", forward)
    monkeypatch.setattr(GPT2LMHeadModel, "decoding_step", lambda self, cache: None)  # every step through forward
    monkeypatch.setattr(KVCache, "reorder", reorder)
    out = model.generate(**batch, max_new_tokens=5, eos_token_id=[], num_beams=4)
    assert out.shape == (3, 9 + 5)
    assert forward_calls == [((3, 9), 0)] + [((12, 1), 9 + i) for i in range(4)]  # the prompt once, per prompt
    assert reorders[0] == (12, 9, False)  # the prompt's rows repeated for the beams: new buffers
    assert reorders[1:] == [(12, 9 + i, True) for i in range(5)]  # then gathered in place after every step


def test_beam_search_refuses_what_it_cannot_do(pair, batch):
    _, model = pair
    with pytest.raises(ValueError, match=r"num_return_sequences \(3\) must be <= num_beams \(2\)"):
        model.generate(**batch, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="a streamer cannot follow beam search"):
        model.generate(**batch, num_beams=2, streamer=object())
    with pytest.raises(ValueError, match="num_return_sequences=2 needs do_sample=True or num_beams > 1"):
        model.generate(**batch, num_return_sequences=2)
