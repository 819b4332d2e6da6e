"""T5's native decoding step (zoo/plugins/t5/decoding.py over zoo/native/decode_t5.c) against the model's own
forward pass, and generate with it against generate without it.

Configs cover what the kernel reads: T5's relu MLP with tied embeddings (the d_model**-0.5 output scale), mT5's
gated-gelu with an untied head, umT5's gated-silu with a position bias in every layer, more decoder than encoder
layers, heads * d_kv different from d_model and not a multiple of 16 (the row products' scalar tail), encoder
batches with padding, and more steps than relative_attention_max_distance (every kind of bucket).
tests/plugins/test_t5_generation.py compares generate (which uses this step) with transformers.
"""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.plugins.t5_checkpoints import PAD, make_batch, make_t5
from zoo.native import t5 as native_t5
from zoo.plugins.t5.decoding import T5NativeDecodingStep, native_decoding_step
from zoo.plugins.t5.modeling import T5ForConditionalGeneration

pytestmark = pytest.mark.skipif(not native_t5.available(), reason=f"no native kernel: {native_t5.status()}")

#: name: (model_type, config overrides, untied, weight scale); the scales keep float32 itself accurate to ~1e-6 (the
#: narrow heads amplify rounding: at 0.6 the forward pass is off its own float64 result by 4e-3)
CONFIGS = {
    "t5-relu-tied": ("t5", dict(feed_forward_proj="relu"), False, 0.6),
    "mt5-gated-gelu-untied": ("mt5", dict(feed_forward_proj="gated-gelu"), True, 0.6),
    "umt5-gated-silu": ("umt5", dict(feed_forward_proj="gated-silu", num_decoder_layers=2), False, 0.6),
    "t5-narrow-heads-more-decoder-layers": ("t5", dict(d_kv=6, num_layers=1, num_decoder_layers=3), False, 0.3),
}


@pytest.fixture(autouse=True)
def two_threads():
    """The kernel splits every matrix over the threads: two exercise the split on any machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def load(tmp_path, name):
    model_type, overrides, untied, scale = CONFIGS[name]
    folder = make_t5(tmp_path, model_type, scale=scale, untied=untied, **overrides)
    return zoo.AutoModelForSeq2SeqLM.from_pretrained(folder)


def _steps(model, batch, steps, native, tokens=None, capacity=None):
    """Next-token logits (B, steps, V) of ``steps`` decoder tokens after the start token (the forward pass's argmax,
    or the given ``tokens`` (B, steps): both paths then read the same inputs), through the cache, by forward
    (logits_to_keep=1) or by the native step; and the tokens fed."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    B = ids.shape[0]
    cache = model.new_kv_cache(B, capacity or steps + 2)
    with torch.inference_mode():
        encoder = model.get_encoder()(ids, mask)
        start = torch.full((B, 1), PAD, dtype=torch.long)
        out = model(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=start, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        step = T5NativeDecodingStep(model, cache) if native else None
        encoder_mask = mask.bool() if not bool(mask.all()) else None
        logits, fed = [], []
        for i in range(steps):
            if tokens is not None:
                token = tokens[:, i : i + 1]
            fed.append(token)
            if native:
                lg = step(token, encoder_mask)
            else:
                lg = model(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=token,
                           past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].float()
            logits.append(lg)
            token = lg.argmax(-1, keepdim=True)
    return torch.stack(logits, 1), torch.cat(fed, 1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_native_step_equals_the_forward_pass(tmp_path, name):
    model = load(tmp_path, name)
    batch = make_batch(seed=3, batch=3, length=12)  # rows of 12, 9 and 4 real tokens
    # 20 steps: past relative_attention_max_distance (16), so exact, logarithmic and overflow buckets all occur
    expected, tokens = _steps(model, batch, 20, native=False)
    got, _ = _steps(model, batch, 20, native=True, tokens=tokens)
    torch.testing.assert_close(got, expected, atol=1e-5 * max(expected.abs().max().item(), 1), rtol=1e-5)


def test_a_row_decodes_the_same_alone_and_in_a_batch(tmp_path):
    """Each row's arithmetic is its own (the row products of 2-8 rows keep the single-row dot's order), so batching
    does not change a row's logits by a single bit."""
    model = load(tmp_path, "mt5-gated-gelu-untied")
    batch = make_batch(seed=4, batch=5, length=10, real=(10, 10, 10, 10, 10))
    together, tokens = _steps(model, batch, 6, native=True)
    for row in range(5):
        alone, _ = _steps(model, {k: v[row : row + 1] for k, v in batch.items()}, 6, native=True,
                          tokens=tokens[row : row + 1])
        assert torch.equal(alone[0], together[row])


def test_the_cache_growing_past_its_capacity_recomputes_the_bias(tmp_path):
    model = load(tmp_path, "umt5-gated-silu")
    batch = make_batch(seed=6, batch=2, length=8)
    expected, tokens = _steps(model, batch, 12, native=False, capacity=4)
    got, _ = _steps(model, batch, 12, native=True, tokens=tokens, capacity=4)
    torch.testing.assert_close(got, expected, atol=1e-5 * max(expected.abs().max().item(), 1), rtol=1e-5)


@pytest.mark.parametrize("options", [dict(num_beams=1), dict(num_beams=2, num_return_sequences=2),
                                     dict(do_sample=True, top_k=8, seed=11)], ids=["greedy", "beam", "sample"])
@pytest.mark.parametrize("name", ["t5-relu-tied", "umt5-gated-silu"])
def test_generate_with_the_kernel_equals_generate_without(tmp_path, name, options, monkeypatch):
    model = load(tmp_path, name)
    batch = make_batch(seed=5, batch=3, length=12)
    options = dict(options)
    seed = options.pop("seed", None)
    kwargs = dict(max_new_tokens=12, min_new_tokens=12, **options)
    used = []
    original = T5ForConditionalGeneration.decoding_step

    def spy(self, cache):
        step = original(self, cache)
        used.append(type(step).__name__)
        return step

    def run():
        if seed is not None:
            torch.manual_seed(seed)
        return model.generate(**batch, **kwargs)

    monkeypatch.setattr(T5ForConditionalGeneration, "decoding_step", spy)
    with_kernel = run()
    assert used and used[-1] == "T5NativeDecodingStep"
    monkeypatch.setattr(T5ForConditionalGeneration, "decoding_step", lambda self, cache: None)
    assert torch.equal(with_kernel, run())


@pytest.mark.parametrize("name", ["t5-relu-tied", "mt5-gated-gelu-untied"])
def test_the_start_token_runs_through_the_step_over_cross_attention_filled_from_the_encoder(tmp_path, name):
    """generate fills the cross-attention keys/values from the encoder output (fill_cross_attention) and runs the
    start token through the native step: the same keys/values as the first forward pass, the same logits."""
    model = load(tmp_path, name)
    batch = make_batch(seed=7, batch=3, length=12)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    start = torch.full((3, 1), PAD, dtype=torch.long)
    with torch.inference_mode():
        encoder = model.get_encoder()(ids, mask)
        by_forward = model.new_kv_cache(3, 4)
        expected = model(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=start,
                         past_key_values=by_forward, use_cache=True, logits_to_keep=1).logits[:, -1].float()
        filled = model.new_kv_cache(3, 4)
        model.fill_cross_attention(filled, encoder)
        assert len(filled.cross) == len(by_forward.cross) == model.config.num_decoder_layers
        for (k, v), (k2, v2) in zip(filled.cross, by_forward.cross):
            assert torch.equal(k, k2) and torch.equal(v, v2)
        kept = filled.cross
        model.fill_cross_attention(filled, encoder * 2)  # already filled: left as it is
        assert filled.cross is kept
        got = T5NativeDecodingStep(model, filled)(start, mask.bool())
    torch.testing.assert_close(got, expected, atol=1e-5 * max(expected.abs().max().item(), 1), rtol=1e-5)
    assert filled.get_seq_length() == 1


def test_the_step_is_not_used_where_it_cannot_compute_the_same(tmp_path):
    model = load(tmp_path, "t5-relu-tied")
    batch = make_batch(seed=1, batch=2, length=6)

    def filled_cache(m, rows=2):
        cache = m.new_kv_cache(rows, 8)
        with torch.inference_mode():
            m(input_ids=batch["input_ids"][:1].expand(rows, -1), decoder_input_ids=torch.zeros(rows, 1, dtype=torch.long),
              past_key_values=cache, use_cache=True)
        return cache

    cache = filled_cache(model)
    assert isinstance(native_decoding_step(model, cache), T5NativeDecodingStep)
    assert native_decoding_step(model, model.new_kv_cache(2, 8)) is None  # no cross-attention keys/values yet
    assert native_decoding_step(model, filled_cache(model, native_t5.MAX_ROWS + 1)) is None  # too many rows
    handle = model.decoder.block[0].layer[-1].register_forward_hook(lambda *args: None)
    assert native_decoding_step(model, cache) is None  # a hook the kernel would skip
    handle.remove()
    model.train()
    assert native_decoding_step(model, cache) is None
    model.eval()
    half = model.to(torch.bfloat16)
    assert native_decoding_step(half, filled_cache(half)) is None  # float32 only: bf16 decodes through forward


def test_zoo_native_off_decodes_through_the_forward_pass(tmp_path, monkeypatch):
    model = load(tmp_path, "t5-relu-tied")
    monkeypatch.setattr(native_t5, "available", lambda: False)
    assert model.decoding_step(model.new_kv_cache(1, 8)) is None


def test_a_token_id_out_of_range_is_refused_with_the_vocabulary_size(tmp_path):
    model = load(tmp_path, "t5-relu-tied")
    batch = make_batch(seed=2, batch=1, length=6)
    cache = model.new_kv_cache(1, 8)
    with torch.inference_mode():
        model(**batch, decoder_input_ids=torch.zeros(1, 1, dtype=torch.long), past_key_values=cache, use_cache=True)
        step = native_decoding_step(model, cache)
        with pytest.raises(IndexError, match="out of range.*check the tokenizer"):
            step(torch.tensor([[10_000]]))
        with pytest.raises(ValueError, match="encoder_mask must be a contiguous boolean"):
            step(torch.tensor([[3]]), torch.ones(1, 5, dtype=torch.long))
