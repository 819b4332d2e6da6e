"""zoo.generation against transformers' generate on the very same GPT-2 checkpoints.

Greedy ids must be equal, batched (left padding) and one prompt at a time, with per-row EOS stopping and pad
filling; the logits processors must equal transformers' LogitsProcessor classes, and sampling with the same seed
must draw the same tokens. The streamers must hand out exactly the decoded text, in pieces, as tokens arrive.
"""

from __future__ import annotations

import logging

import pytest
import torch
import transformers
from transformers.generation import logits_process as hf_lp

import zoo
from zoo import native
from tests.plugins.test_gpt2 import CONFIGS, EOS, PAD, VOCAB, make_batch, make_gpt2, write_tokenizer
from zoo.generation import (DecodingProjection, KVCache, TextIteratorStreamer, TextStreamer, apply_repetition_penalty,
                            apply_top_k, apply_top_p, causal_attention_mask, decode_matmul, decoding_weight,
                            has_forward_hooks, project_for_decoding, stream_generate)
from zoo.plugins.gpt2.modeling import GPT2DecodingStep, GPT2LMHeadModel, GPT2NativeDecodingStep


@pytest.fixture(params=["native", "pytorch"])
def step_backend(request, monkeypatch):
    """Decode through the native kernel, or through the PyTorch step as where zoo was built without it."""
    if request.param == "native" and not native.available():
        pytest.skip(f"native kernels not in use: {native.status()} (tests/test_native.py checks they are built)")
    if request.param == "pytorch":
        monkeypatch.setattr(native, "available", lambda: False)
    return GPT2NativeDecodingStep if request.param == "native" else GPT2DecodingStep


def both(folder, **overrides):
    """transformers' and zoo's GPT-2 LM on one checkpoint (weights drawn large enough to give varied text)."""
    hf = make_gpt2(folder, "causal-lm", scale=0.5, **overrides)
    return hf, GPT2LMHeadModel.from_pretrained(folder)


def hf_generate(hf, ids, mask=None, **kwargs):
    with torch.no_grad():
        return hf.generate(ids, attention_mask=mask, **kwargs)


# --- greedy parity -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])  # 2: decode_matmul splits the products
@pytest.mark.parametrize("config_name", CONFIGS)
def test_greedy_matches_transformers_batched_and_unbatched(tmp_path, config_name, threads, step_backend):
    torch.set_num_threads(threads)
    hf, model = both(tmp_path, **CONFIGS[config_name])
    batch = make_batch(seed=1)
    options = dict(max_new_tokens=12, do_sample=False, eos_token_id=EOS, pad_token_id=PAD)
    expected = hf_generate(hf, batch["input_ids"], batch["attention_mask"], **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got, expected)
    assert got.shape[1] <= 9 + 12
    for row in range(3):
        n = int(batch["attention_mask"][row].sum())
        prompt = batch["input_ids"][row : row + 1, -n:]
        assert torch.equal(model.generate(prompt, **options), hf_generate(hf, prompt, **options)), row


def test_each_row_stops_at_its_own_eos_and_is_padded_after(tmp_path):
    hf, model = both(tmp_path)
    batch = make_batch(seed=2)
    free = model.generate(**batch, max_new_tokens=10, eos_token_id=[])  # never stops early
    assert free.shape == (3, 19)
    eos = int(free[0, 9 + 2])  # the third new token of row 0 becomes the end of sequence
    options = dict(max_new_tokens=10, eos_token_id=eos, pad_token_id=PAD)
    got = model.generate(**batch, **options)
    assert torch.equal(got, hf_generate(hf, batch["input_ids"], batch["attention_mask"], do_sample=False, **options))
    for row in range(3):
        new = got[row, 9:].tolist()
        if eos in new:
            after = new[new.index(eos) + 1 :]
            assert after == [PAD] * len(after), row
    assert got[0, 9 + 2] == eos


def test_generation_ends_when_every_row_has_stopped(tmp_path):
    hf, model = both(tmp_path)
    prompt = make_batch(seed=3)["input_ids"][:1]
    first = int(model.generate(prompt, max_new_tokens=1, eos_token_id=[])[0, -1])
    got = model.generate(prompt, max_new_tokens=10, eos_token_id=first, pad_token_id=PAD)
    assert got.shape == (1, 10) and got[0, -1] == first
    assert torch.equal(got, hf_generate(hf, prompt, max_new_tokens=10, do_sample=False, eos_token_id=first,
                                        pad_token_id=PAD))


def test_greedy_with_repetition_penalty_matches_transformers(tmp_path):
    hf, model = both(tmp_path)
    batch = make_batch(seed=4)
    options = dict(max_new_tokens=10, repetition_penalty=1.5, eos_token_id=EOS, pad_token_id=PAD)
    assert torch.equal(model.generate(**batch, **options),
                       hf_generate(hf, batch["input_ids"], batch["attention_mask"], do_sample=False, **options))


def test_attention_mask_is_inferred_from_pad_tokens_like_transformers(tmp_path):
    hf, model = both(tmp_path)
    batch = make_batch(seed=5)
    options = dict(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD)
    with_mask = model.generate(**batch, **options)
    assert torch.equal(model.generate(batch["input_ids"], **options), with_mask)
    assert torch.equal(with_mask, hf_generate(hf, batch["input_ids"], do_sample=False, **options))


def test_decoding_feeds_one_token_per_step_through_the_cache(tmp_path, monkeypatch):
    _, model = both(tmp_path)
    monkeypatch.setattr(GPT2LMHeadModel, "decoding_step", lambda self, cache: None)  # every step through forward
    calls = []
    real = GPT2LMHeadModel.forward

    def recording(self, input_ids=None, past_key_values=None, **kwargs):
        calls.append((tuple(input_ids.shape), past_key_values.length, kwargs.get("logits_to_keep")))
        return real(self, input_ids, past_key_values, **kwargs)

    monkeypatch.setattr(GPT2LMHeadModel, "forward", recording)
    model.generate(make_batch()["input_ids"][:1], max_new_tokens=5, eos_token_id=[])
    assert calls == [((1, 9), 0, 1), ((1, 1), 9, 1), ((1, 1), 10, 1), ((1, 1), 11, 1), ((1, 1), 12, 1)]


def test_decoding_step_takes_over_after_the_prompt(tmp_path, monkeypatch, step_backend):
    _, model = both(tmp_path)
    forward_calls, step_calls = [], []
    real_forward, real_step = GPT2LMHeadModel.forward, step_backend.__call__

    def forward(self, input_ids=None, past_key_values=None, **kwargs):
        forward_calls.append(tuple(input_ids.shape))
        return real_forward(self, input_ids, past_key_values, **kwargs)

    def step(self, input_ids, attention_mask=None, position_ids=None):
        step_calls.append((tuple(input_ids.shape), self.cache.length))
        return real_step(self, input_ids, attention_mask, position_ids)

    monkeypatch.setattr(GPT2LMHeadModel, "forward", forward)
    monkeypatch.setattr(step_backend, "__call__", step)
    model.generate(make_batch()["input_ids"][:1], max_new_tokens=4, eos_token_id=[])
    assert forward_calls == [(1, 9)]  # the prompt
    assert step_calls == [((1, 1), 9), ((1, 1), 10), ((1, 1), 11)]
    forward_calls.clear(), step_calls.clear()
    model.generate(make_batch()["input_ids"][:1], max_new_tokens=1, eos_token_id=[])
    assert forward_calls == [(1, 9)] and step_calls == []  # one token: the step is not even made


# --- the decoding step ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2, 3], ids=["1-thread", "2-threads", "3-threads"])  # 3: blocks that don't divide
@pytest.mark.parametrize("config_name", CONFIGS)
def test_decoding_step_equals_the_forward_pass(tmp_path, config_name, threads, step_backend):
    """Logits and cache after each step equal forward's on a copy of the same cache: left-padded batch, then one
    prompt without padding (positions from the cache, no mask). The PyTorch step does forward's maths with the same
    products: 1e-5. The native kernel sums in its own order, an independent float32 rounding: like forward's, within
    ~2e-6 of the logits' scale of a float64 model (tests/test_native.py holds both to 1e-5 of it), so against
    forward it gets 1e-5 of that scale (these random models give logits of up to ~15)."""
    torch.set_num_threads(threads)
    _, model = both(tmp_path, **CONFIGS[config_name])
    generator = torch.Generator().manual_seed(7)
    batch = make_batch(seed=6)
    for ids, mask in ((batch["input_ids"], batch["attention_mask"]), (batch["input_ids"][:1], None)):
        B, L = ids.shape
        positions = (mask.cumsum(-1) - 1).clamp(min=0) if mask is not None else None
        prefill_mask = causal_attention_mask(mask, L, 0)[0] if mask is not None else None
        key_mask = (torch.cat([mask, torch.ones(B, 4, dtype=torch.long)], 1).bool()[:, None, None, :]
                    if mask is not None else None)
        with torch.inference_mode():
            caches = [model.new_kv_cache(B, L + 4) for _ in range(2)]
            for cache in caches:
                model(input_ids=ids, attention_mask=prefill_mask, position_ids=positions, past_key_values=cache,
                      use_cache=True, logits_to_keep=1)
            step = model.decoding_step(caches[0])
            assert type(step) is step_backend
            token = torch.randint(2, VOCAB, (B, 1), generator=generator)
            position = positions[:, -1:] if positions is not None else None
            for n in range(1, 5):
                position = position + 1 if position is not None else None
                step_mask = key_mask[..., : L + n] if key_mask is not None else None
                expected = model(input_ids=token, attention_mask=step_mask, position_ids=position,
                                 past_key_values=caches[1], use_cache=True, logits_to_keep=1).logits[:, -1]
                got = step(token, step_mask, position)
                scale = float(expected.abs().max()) if step_backend is GPT2NativeDecodingStep else 1.0
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)
                token = expected.argmax(-1, keepdim=True)
            assert caches[0].length == caches[1].length == L + 4
            for mine, theirs in zip(caches[0].keys + caches[0].values, caches[1].keys + caches[1].values):
                torch.testing.assert_close(mine[:, :, : L + 4], theirs[:, :, : L + 4], rtol=1e-5, atol=1e-5)


def test_decoding_step_stands_aside_where_it_would_differ(tmp_path, step_backend):
    """Hooks (it bypasses the modules), training mode and half-precision upcasting fall back to forward; hooks then
    run at every token."""
    _, model = both(tmp_path)
    cache = model.new_kv_cache(1, 4)
    assert model.decoding_step(cache) is not None
    seen = []
    handle = model.transformer.h[1].mlp.register_forward_hook(lambda module, args, out: seen.append(out.shape[1]))
    assert model.decoding_step(cache) is None
    model.generate(make_batch()["input_ids"][:1], max_new_tokens=3, eos_token_id=[])
    assert seen == [9, 1, 1]  # the prompt, then each new token went through the hooked module
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda module, args: None)  # a global hook
    try:
        assert model.decoding_step(cache) is None
    finally:
        handle.remove()
    assert not has_forward_hooks(model) and model.decoding_step(cache) is not None
    model.train()
    assert model.decoding_step(cache) is None
    model.eval()
    _, upcast = both(tmp_path / "upcast", reorder_and_upcast_attn=True)
    assert upcast.decoding_step(cache) is not None  # float32: upcasting changes nothing
    # float16: neither step upcasts (in bfloat16 the native kernel does: tests/test_native.py)
    half = upcast.to(torch.float16)
    assert half.decoding_step(half.new_kv_cache(1, 4)) is None


def test_generate_defaults_and_inputs(tmp_path):
    _, model = both(tmp_path)
    ids = make_batch()["input_ids"][0]
    out = model.generate(ids, max_new_tokens=3, eos_token_id=[])  # a 1D prompt is a batch of one
    assert out.shape == (1, 12) and torch.equal(out[0, :9], ids)
    assert torch.equal(model.generate(ids[None], max_new_tokens=0), ids[None])
    assert model.generate(ids, max_new_tokens=20).shape[1] <= 29  # eos from the config
    assert not torch.is_inference_mode_enabled() and model.training is False


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(temperature=0.0, do_sample=True), "temperature must be > 0"),
    (dict(top_p=1.5), "top_p must be in"),
    (dict(top_k=-1), "top_k must be an int"),
    (dict(repetition_penalty=0), "repetition_penalty must be > 0"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an int"),
    (dict(max_new_tokens=100), "exceeds the 48 positions"),
])
def test_generate_refuses_bad_options(tmp_path, kwargs, message):
    _, model = both(tmp_path)
    with pytest.raises(ValueError, match=message):
        model.generate(make_batch()["input_ids"], **kwargs)


def test_right_padding_is_warned_about(tmp_path, caplog):
    _, model = both(tmp_path)
    batch = make_batch()
    right = {k: v.flip(1) for k, v in batch.items()}
    with caplog.at_level(logging.WARNING, logger="zoo.generation"):
        model.generate(**right, max_new_tokens=2, pad_token_id=PAD)
    assert "right-padded" in caplog.text and "padding_side='left'" in caplog.text


# --- sampling ------------------------------------------------------------------------------------------------------------


def test_logits_processors_equal_transformers():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 50, generator=generator) * 3
    ids = torch.randint(0, 50, (4, 7), generator=generator)
    for penalty in (0.7, 1.3):
        torch.testing.assert_close(apply_repetition_penalty(scores, ids, penalty),
                                   hf_lp.RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone()), atol=0, rtol=0)
    for k in (1, 5, 50, 80):
        torch.testing.assert_close(apply_top_k(scores, k), hf_lp.TopKLogitsWarper(k)(ids, scores), atol=0, rtol=0)
    for p in (0.0, 0.3, 0.9, 1.0):
        torch.testing.assert_close(apply_top_p(scores, p), hf_lp.TopPLogitsWarper(p)(ids, scores), atol=0, rtol=0)


@pytest.mark.parametrize("options", [
    dict(),
    dict(temperature=0.7, top_k=10),
    dict(top_p=0.8, top_k=0, repetition_penalty=1.2),
    dict(temperature=1.3, top_k=20, top_p=0.9),
], ids=["defaults", "temperature-top_k", "top_p-penalty", "all"])
def test_sampling_with_a_seed_draws_what_transformers_draws(tmp_path, options):
    hf, model = both(tmp_path)
    batch = make_batch(seed=6)
    common = dict(max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD, do_sample=True, **options)
    torch.manual_seed(123)
    expected = hf_generate(hf, batch["input_ids"], batch["attention_mask"], **common)
    got = model.generate(**batch, seed=123, **common)
    assert torch.equal(got, expected)


def test_sampling_is_reproducible_with_seed_or_generator(tmp_path):
    _, model = both(tmp_path)
    ids = make_batch()["input_ids"]
    options = dict(max_new_tokens=12, do_sample=True, temperature=1.5, top_k=0, eos_token_id=[])
    a = model.generate(ids, seed=7, **options)
    assert torch.equal(a, model.generate(ids, seed=7, **options))
    assert torch.equal(a, model.generate(ids, generator=torch.Generator().manual_seed(7), **options))
    assert not torch.equal(a, model.generate(ids, seed=8, **options))


# --- the cache and the mask helper ---------------------------------------------------------------------------------------


def test_kv_cache_writes_in_place_and_grows():
    cache = KVCache(num_layers=2, batch_size=1, num_heads=2, head_dim=3, capacity=4)
    k = torch.randn(1, 2, 3, 3)
    keys, _ = cache.update(0, k, k)
    assert keys.shape == (1, 2, 3, 3) and keys.data_ptr() == cache.keys[0].data_ptr()
    cache.update(1, k, k)
    cache.advance(3)
    more = torch.randn(1, 2, 2, 3)
    keys, values = cache.update(0, more, more)  # 5 > capacity 4: doubles, keeping the past
    assert cache.keys[0].shape[2] == 8 and cache.get_seq_length() == 3
    torch.testing.assert_close(keys, torch.cat([k, more], dim=2))
    cache.reorder(torch.tensor([0, 0]))  # e.g. beam search: rows picked (here duplicated) by index
    assert cache.keys[1].shape[0] == 2 and torch.equal(cache.keys[1][0], cache.keys[1][1])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_decode_matmul_equals_addmm(threads):
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(96, 40, generator=generator), torch.randn(40, generator=generator)
    for rows in (1, 3, 16, 17):  # 17: past the split limit, one addmm
        x = torch.randn(rows, 96, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(decode_matmul(x, weight, bias), torch.addmm(bias, x, weight))
            torch.testing.assert_close(decode_matmul(x, weight), x @ weight)
            odd = torch.randn(rows, 95, generator=generator)  # not divisible by the threads: one addmm
            torch.testing.assert_close(decode_matmul(odd, weight[:95], bias), torch.addmm(bias, odd, weight[:95]))
    x = torch.randn(1, 96, requires_grad=True)
    decode_matmul(x, weight, bias).sum().backward()  # with autograd on it is differentiable (plain addmm)
    torch.testing.assert_close(x.grad, weight.sum(1)[None])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_decoding_projection_equals_addmm(threads):
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(96, 40, generator=generator), torch.randn(40, generator=generator)
    with torch.inference_mode():
        for inner in (96, 95):  # 95: not divisible by 2 or 3 threads, one block
            projection, plain = DecodingProjection(weight[:inner], bias), DecodingProjection(weight[:inner])
            assert projection.blocks == (threads if inner % threads == 0 else 1) and not projection.by_output
            for rows in (1, 3):
                x = torch.randn(rows, inner, generator=generator)
                torch.testing.assert_close(projection(x), torch.addmm(bias, x, weight[:inner]))
                torch.testing.assert_close(plain(x), x @ weight[:inner])
        for out in (40, 35):  # through the (out, in) copy, by blocks of outputs; 35: threads don't divide it
            w = weight[:, :out]
            projection = DecodingProjection(w, bias[:out], transposed=w.t().contiguous())
            plain = DecodingProjection(w, transposed=w.t().contiguous())
            assert projection.by_output == (threads > 1 and out % threads == 0)
            for rows in (1, 3):
                x = torch.randn(rows, 96, generator=generator)
                torch.testing.assert_close(projection(x), torch.addmm(bias[:out], x, w))
                torch.testing.assert_close(plain(x), x @ w)
        with pytest.raises(ValueError, match=r"contiguous \(40, 96\) tensor, got \(96, 40\)"):
            DecodingProjection(weight, bias, transposed=weight)


def test_project_for_decoding_equals_the_linear_layer_and_follows_its_weight():
    linear = torch.nn.Linear(16, 40)
    h = torch.randn(2, 1, 16)
    with torch.no_grad():
        torch.testing.assert_close(project_for_decoding(h, linear), linear(h))
        first = decoding_weight(linear)
        assert torch.equal(first, linear.weight.t())
        project_for_decoding(h, linear)
        assert decoding_weight(linear) is first  # kept between steps
        linear.weight.mul_(2)  # changed in place (a training step, a tied embedding edited): the copy is remade
        torch.testing.assert_close(project_for_decoding(h, linear), linear(h))
    out = project_for_decoding(h, linear)  # with autograd on: the layer itself, so gradients flow
    assert out.requires_grad and out.grad_fn is not None


def test_causal_attention_mask():
    assert causal_attention_mask(None, 5, 0) == (None, True)
    assert causal_attention_mask(None, 1, 7) == (None, False)
    assert causal_attention_mask(torch.ones(2, 8), 1, 7) == (None, False)
    mask, is_causal = causal_attention_mask(None, 2, 3)  # a chunk after a cached past: causal with an offset
    assert not is_causal and mask.tolist() == [[True] * 4 + [False], [True] * 5]
    padding = torch.tensor([[0, 1, 1], [1, 1, 1]])
    mask, _ = causal_attention_mask(padding, 3, 0)
    assert mask.shape == (2, 1, 3, 3) and mask[0, 0].tolist() == [[False] * 3, [False, True, False], [False, True, True]]
    with pytest.raises(ValueError, match="covers 2 positions.*3"):
        causal_attention_mask(torch.tensor([[0, 1]]), 1, 2)


# --- streaming -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_with_tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-tok")
    write_tokenizer(folder, as_json=True)
    tokenizer = zoo.AutoTokenizer.from_pretrained(folder)
    make_gpt2(folder, "causal-lm", scale=0.5, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
              bos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel.from_pretrained(folder), tokenizer


def test_stream_generate_yields_the_decoded_text_in_pieces(lm_with_tokenizer):
    model, tokenizer = lm_with_tokenizer
    prompt = tokenizer("emoji 😀 and 中文", return_tensors="pt")["input_ids"]
    full = model.generate(prompt, max_new_tokens=30, eos_token_id=[])
    chunks = list(stream_generate(model, tokenizer, prompt, max_new_tokens=30, eos_token_id=[]))
    assert "".join(chunks) == tokenizer.decode(full[0, prompt.shape[1]:])
    assert len(chunks) > 1
    with_prompt = list(stream_generate(model, tokenizer, prompt, skip_prompt=False, max_new_tokens=30, eos_token_id=[]))
    assert "".join(with_prompt) == tokenizer.decode(full[0])


def test_stream_generate_reraises_errors_of_the_generating_thread(lm_with_tokenizer):
    model, tokenizer = lm_with_tokenizer
    with pytest.raises(ValueError, match="exceeds"):
        list(stream_generate(model, tokenizer, torch.tensor([[5, 6]]), max_new_tokens=1000, timeout=30))


def test_text_streamers_hold_back_incomplete_characters(lm_with_tokenizer):
    model, tokenizer = lm_with_tokenizer
    pieces: list[tuple[str, bool]] = []
    streamer = TextStreamer(tokenizer, skip_prompt=True, on_text=lambda text, end: pieces.append((text, end)))
    ids = torch.tensor(tokenizer.encode("a 😀 b 中文 c\nd e"))
    streamer.put(torch.tensor([[1, 2]]))  # the prompt, skipped
    for token in ids:
        streamer.put(token[None])
    streamer.end()
    assert "".join(text for text, _ in pieces) == "a 😀 b 中文 c\nd e"
    assert all("\ufffd" not in text for text, _ in pieces)
    assert pieces[-1][1] and not any(end for _, end in pieces[:-1])


def test_iterator_streamer_works_with_a_thread_like_transformers(lm_with_tokenizer):
    import threading

    model, tokenizer = lm_with_tokenizer
    prompt = tokenizer("Hello world", return_tensors="pt")
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=30)
    options = dict(max_new_tokens=15, eos_token_id=[])
    thread = threading.Thread(target=model.generate, kwargs=dict(**prompt, streamer=streamer, **options))
    thread.start()
    text = "".join(streamer)
    thread.join()
    assert text == tokenizer.decode(model.generate(**prompt, **options)[0, prompt["input_ids"].shape[1]:])


def test_transformers_streamer_protocol_is_accepted(lm_with_tokenizer, tmp_path):
    """transformers' own TextIteratorStreamer (put/end) can listen to zoo's generate."""
    model, tokenizer = lm_with_tokenizer
    tokenizer.save_pretrained(tmp_path)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    streamer = transformers.TextIteratorStreamer(hf_tok, skip_prompt=True)
    prompt = tokenizer("Hello", return_tensors="pt")
    out = model.generate(**prompt, streamer=streamer, max_new_tokens=8, eos_token_id=[])
    assert "".join(streamer) == hf_tok.decode(out[0, prompt["input_ids"].shape[1]:])
