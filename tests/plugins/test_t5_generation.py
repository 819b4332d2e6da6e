"""Seq2seq generate (zoo/generation/runner.py ``Seq2SeqRunner``) for T5, mT5 and umT5 against transformers' generate
on small random checkpoints: greedy, beam search and seeded sampling ids equal on padded encoder batches, the decoder
side's length options, EOS stopping with pad filling, ``forced_bos_token_id`` and ``decoder_start_token_id``.

transformers 5 sizes its generation cache by ``num_layers`` (config.num_hidden_layers), so its cached generate fails
on a checkpoint with more decoder than encoder layers; the parity checkpoints here have equal counts, and the one
with more decoder layers is compared against transformers' uncached generate.
"""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.plugins.t5_checkpoints import EOS, PAD, load_hf, make_batch, make_t5
from zoo.errors import GenerationError

#: (model_type, feed_forward_proj, untied)
CASES = [("t5", "relu", False), ("mt5", "gated-gelu", True), ("umt5", "gated-silu", False)]
IDS = ["-".join(map(str, c)) for c in CASES]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(transformers' model, zoo's model) per case, weights drawn large enough to give varied text."""
    out = {}
    for case, name in zip(CASES, IDS):
        folder = make_t5(tmp_path_factory.mktemp(name), case[0], scale=0.6, feed_forward_proj=case[1],
                         untied=case[2], num_decoder_layers=2)
        out[name] = (load_hf(folder, case[0]), zoo.AutoModelForSeq2SeqLM.from_pretrained(folder))
    return out


def hf_generate(hf, batch, **options):
    with torch.no_grad():
        return hf.generate(**batch, **options)


@pytest.mark.parametrize("name", IDS)
def test_greedy_matches_transformers_batched_and_per_row(pairs, name):
    hf, model = pairs[name]
    batch = make_batch(seed=1)
    options = dict(max_new_tokens=12, do_sample=False)
    expected = hf_generate(hf, batch, **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got, expected)
    assert bool((got[:, 0] == model.config.decoder_start_token_id).all())
    for row in range(3):  # each input alone, unpadded, gives its row of the padded batch
        n = int(batch["attention_mask"][row].sum())
        alone = model.generate(batch["input_ids"][row : row + 1, :n], **options)
        assert torch.equal(alone, got[row : row + 1, : alone.shape[1]]), row


BEAMS = [dict(num_beams=2, max_new_tokens=10),
         dict(num_beams=3, num_return_sequences=3, length_penalty=0.5, early_stopping=True, max_new_tokens=10),
         dict(num_beams=4, num_return_sequences=2, length_penalty=1.5, early_stopping="never", max_new_tokens=8,
              no_repeat_ngram_size=2)]


@pytest.mark.parametrize("options", BEAMS, ids=["2-beams", "3-beams-early", "4-beams-never"])
@pytest.mark.parametrize("name", IDS)
def test_beam_search_matches_transformers(pairs, name, options):
    hf, model = pairs[name]
    batch = make_batch(seed=2)
    expected = hf_generate(hf, batch, **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got, expected)
    assert got.shape[0] == 3 * options.get("num_return_sequences", 1)


def test_beam_search_scores_match_transformers(pairs):
    hf, model = pairs["t5-relu-False"]
    batch = make_batch(seed=3)
    options = dict(num_beams=3, num_return_sequences=2, max_new_tokens=8, return_dict_in_generate=True,
                   output_scores=True)
    expected = hf_generate(hf, batch, **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got.sequences, expected.sequences)
    torch.testing.assert_close(got.sequences_scores, expected.sequences_scores, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.beam_indices, expected.beam_indices)


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.7, top_k=10), dict(top_p=0.8, top_k=0),
                                     dict(num_beams=2, temperature=1.2)],
                         ids=["defaults", "temperature-top_k", "top_p", "beam-sample"])
@pytest.mark.parametrize("name", IDS)
def test_sampling_with_a_seed_draws_what_transformers_draws(pairs, name, options):
    hf, model = pairs[name]
    batch = make_batch(seed=4)
    common = dict(max_new_tokens=10, do_sample=True, **options)
    torch.manual_seed(123)
    expected = hf_generate(hf, batch, **common)
    got = model.generate(**batch, seed=123, **common)
    assert torch.equal(got, expected)
    assert not torch.equal(got, model.generate(**batch, seed=124, **common))


@pytest.mark.parametrize("options", [dict(max_new_tokens=5), dict(max_length=7), dict()],
                         ids=["max_new_tokens", "max_length", "default-20"])
def test_lengths_count_decoder_tokens_as_transformers_does(pairs, options):
    hf, model = pairs["mt5-gated-gelu-True"]
    batch = make_batch(seed=5, length=16, real=(16, 9, 4))  # inputs longer than max_length: only decoder counts
    expected = hf_generate(hf, batch, eos_token_id=[], **options)
    got = model.generate(**batch, eos_token_id=[], **options)
    assert torch.equal(got, expected)
    assert got.shape[1] == {"max_new_tokens": 6, "max_length": 7}.get(next(iter(options), ""), 21)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_rows_stop_at_their_eos_and_are_padded_after(pairs, num_beams):
    hf, model = pairs["t5-relu-False"]
    batch = make_batch(seed=6)
    free = model.generate(**batch, max_new_tokens=12, eos_token_id=[])
    stop = int(free[1, 3])  # a token row 1 does write: as EOS, that row ends early
    options = dict(max_new_tokens=12, eos_token_id=stop, pad_token_id=PAD, num_beams=num_beams)
    expected = hf_generate(hf, batch, **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got, expected)
    if num_beams == 1:
        ended = (got[1] == stop).nonzero()[0, 0]
        assert bool((got[1, ended + 1 :] == PAD).all())
        assert ended <= 3


def test_forced_bos_and_decoder_start_token(pairs):
    hf, model = pairs["umt5-gated-silu-False"]
    batch = make_batch(seed=7)
    for options in (dict(forced_bos_token_id=42, max_new_tokens=6), dict(decoder_start_token_id=5, max_new_tokens=6),
                    dict(forced_bos_token_id=42, num_beams=2, max_new_tokens=6)):
        expected = hf_generate(hf, batch, **options)
        got = model.generate(**batch, **options)
        assert torch.equal(got, expected), options
        if "forced_bos_token_id" in options:
            assert bool((got[:, 1] == 42).all())
        else:
            assert bool((got[:, 0] == 5).all())


@pytest.mark.parametrize("num_beams", [1, 2])
def test_more_decoder_layers_and_no_cache_match_transformers_uncached(tmp_path, num_beams):
    folder = make_t5(tmp_path, "t5", scale=0.6, feed_forward_proj="gated-gelu")  # 2 encoder, 3 decoder layers
    hf, model = load_hf(folder), zoo.AutoModelForSeq2SeqLM.from_pretrained(folder)
    batch = make_batch(seed=8)
    options = dict(max_new_tokens=8, num_beams=num_beams)
    expected = hf_generate(hf, batch, use_cache=False, **options)
    assert torch.equal(model.generate(**batch, **options), expected)
    assert torch.equal(model.generate(**batch, use_cache=False, **options), expected)


def test_the_encoder_runs_once_per_call(pairs):
    _, model = pairs["t5-relu-False"]
    calls = []
    handle = model.get_encoder().register_forward_hook(lambda *args: calls.append(1))
    try:
        model.generate(**make_batch(seed=9), num_beams=3, max_new_tokens=6)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_generate_without_input_ids_says_what_to_pass(pairs):
    _, model = pairs["t5-relu-False"]
    with pytest.raises(GenerationError, match="needs input_ids for its encoder"):
        model.generate(max_new_tokens=3)
