"""The Llama family's native decoding step (zoo/plugins/llama/decoding.py over zoo/native/decode_llama.c) against
the model's own forward pass, and generate with it against generate without it.

Configs cover what the kernel reads: grouped-query ratios 1, 2 and 4, q/k/v biases (Qwen2), all attention and MLP
biases, q/k norms (Qwen3), a sliding window shorter than the sequence (Mistral), partial-free and scaled rotary
(linear, dynamic, yarn), untied embeddings, head_dim different from hidden / heads; in float32 and bfloat16.
tests/plugins/test_llama.py compares generate (which uses this step) with transformers.
"""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.plugins.llama_checkpoints import make_batch, make_llama
from zoo.native import llama as native_llama
from zoo.plugins.llama.decoding import LlamaNativeDecodingStep, native_decoding_step
from zoo.plugins.llama.modeling import LlamaForCausalLM

pytestmark = pytest.mark.skipif(not native_llama.available(), reason=f"no native kernel: {native_llama.status()}")

CONFIGS = {
    "llama-mha-untied": ("llama", dict(num_key_value_heads=4, tie_word_embeddings=False)),
    "llama-gqa4-bias-headdim": ("llama", dict(num_attention_heads=8, num_key_value_heads=2, head_dim=6,
                                              attention_bias=True, mlp_bias=True)),
    "llama-dynamic": ("llama", dict(rope_scaling={"rope_type": "dynamic", "factor": 2.0}, max_position_embeddings=16)),
    "llama-yarn": ("llama", dict(rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                               "original_max_position_embeddings": 16})),
    "mistral-window": ("mistral", dict(sliding_window=5)),
    "qwen2-bias-tied": ("qwen2", dict(tie_word_embeddings=True)),
    "qwen3-qknorm": ("qwen3", dict(head_dim=16)),
}


def load(folder, dtype):
    return zoo.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)


def _steps(model, batch, steps, native, tokens=None):
    """Next-token logits (B, steps, V) of ``steps`` tokens after the prompt (the forward pass's argmax, or the given
    ``tokens`` (B, steps): both paths then read the same inputs), through the cache, by forward (logits_to_keep=1)
    or by the native step; and the tokens fed."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    B, L = ids.shape
    cache = model.new_kv_cache(B, L + steps + 1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                    logits_to_keep=1)
        token = out.logits[:, -1].float().argmax(-1, keepdim=True)
        step = LlamaNativeDecodingStep(model, cache) if native else None
        full_mask = torch.cat([mask, torch.ones(B, steps, dtype=mask.dtype)], dim=1).bool()
        pos = positions[:, -1:]
        logits, fed = [], []
        for i in range(steps):
            if tokens is not None:
                token = tokens[:, i : i + 1]
            fed.append(token)
            pos = pos + 1
            step_mask = full_mask[:, None, None, : L + i + 1]
            if native:
                lg = step(token, step_mask, pos)
            else:
                lg = model(input_ids=token, attention_mask=step_mask, position_ids=pos, past_key_values=cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1].float()
            logits.append(lg)
            token = lg.argmax(-1, keepdim=True)
    return torch.stack(logits, 1), torch.cat(fed, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_native_step_equals_the_forward_pass(tmp_path, name, dtype):
    model_type, overrides = CONFIGS[name]
    model = load(make_llama(tmp_path, model_type, **overrides), dtype)
    batch = make_batch(seed=3, batch=3, length=9)
    expected, tokens = _steps(model, batch, 8, native=False)
    got, _ = _steps(model, batch, 8, native=True, tokens=tokens)
    scale = expected.abs().max().item()
    if dtype == torch.float32:
        torch.testing.assert_close(got, expected, atol=1e-5 * max(scale, 1), rtol=1e-5)
    else:
        # the kernel rounds to bf16 where the forward pass does; only summation orders differ, and a one-ulp
        # difference of an activation moves a logit by a few bf16 steps at most
        assert (got - expected).abs().max().item() <= 0.03 * scale


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("name", ["llama-gqa4-bias-headdim", "mistral-window", "qwen3-qknorm"])
def test_generate_with_the_kernel_equals_generate_without(tmp_path, name, num_beams, monkeypatch):
    model_type, overrides = CONFIGS[name]
    model = load(make_llama(tmp_path, model_type, **overrides), torch.float32)
    batch = make_batch(seed=5, batch=3 if num_beams == 1 else 2, length=8)  # rows within the kernel's MAX_ROWS
    kwargs = dict(max_new_tokens=10, do_sample=False, num_beams=num_beams, pad_token_id=0)
    used = []
    original = LlamaForCausalLM.decoding_step

    def spy(self, cache):
        step = original(self, cache)
        used.append(type(step).__name__)
        return step

    monkeypatch.setattr(LlamaForCausalLM, "decoding_step", spy)
    with_kernel = model.generate(**batch, **kwargs)
    assert used and used[-1] == "LlamaNativeDecodingStep"
    monkeypatch.setattr(LlamaForCausalLM, "decoding_step", lambda self, cache: None)
    without = model.generate(**batch, **kwargs)
    assert torch.equal(with_kernel, without)


def test_the_step_is_not_used_where_it_cannot_compute_the_same(tmp_path):
    model = load(make_llama(tmp_path, "llama"), torch.float32)
    cache = model.new_kv_cache(2, 8)
    assert isinstance(native_decoding_step(model, cache), LlamaNativeDecodingStep)
    assert native_decoding_step(model, model.new_kv_cache(native_llama.MAX_ROWS + 1, 8)) is None  # too many rows
    handle = model.model.layers[0].mlp.register_forward_hook(lambda *args: None)
    assert native_decoding_step(model, cache) is None  # a hook the kernel would skip
    handle.remove()
    model.train()
    assert native_decoding_step(model, cache) is None
    model.eval()
    half = model.to(torch.float16)
    assert native_decoding_step(half, half.new_kv_cache(1, 8)) is None


def test_zoo_native_off_decodes_through_the_forward_pass(tmp_path, monkeypatch):
    model = load(make_llama(tmp_path, "qwen2"), torch.float32)
    monkeypatch.setattr(native_llama, "available", lambda: False)
    assert model.decoding_step(model.new_kv_cache(1, 8)) is None


@pytest.mark.parametrize("rope_scaling", [None, {"rope_type": "dynamic", "factor": 2.0}], ids=["default", "dynamic"])
def test_generating_past_max_position_embeddings_warns_and_matches_transformers(tmp_path, rope_scaling, caplog):
    """Rotary positions are computed, so a llama runs past max_position_embeddings (dynamic NTK scaling exists for
    exactly that): transformers generates there, and so does zoo, with a warning, where GPT-2's learned positions
    refuse it."""
    from tests.plugins.llama_checkpoints import load_hf

    overrides = dict(max_position_embeddings=12, **({"rope_scaling": rope_scaling} if rope_scaling else {}))
    folder = make_llama(tmp_path, "llama", **overrides)
    batch = make_batch(seed=7, batch=2, length=10, real=(10, 7))
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with caplog.at_level("WARNING", logger="zoo.generation.mixin"):
        ours = load(folder, torch.float32).generate(**batch, **kwargs)
    assert "past the 12 positions" in caplog.text
    theirs = load_hf(folder, "llama").generate(**batch, **kwargs)
    assert torch.equal(ours, theirs)
