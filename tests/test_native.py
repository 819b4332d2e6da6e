"""zoo.native: the decoding kernel is built, computes GPT-2's step as exactly as PyTorch does, and is used only
where it can be.

float32 accuracy is judged against a float64 copy of the same model: the kernel and PyTorch's float32 forward pass
are two roundings of the same maths, and each must stay within 1e-5 of the logits' scale of the exact values.
bfloat16 is judged against the bf16 forward pass itself: the kernel rounds where it rounds, so nearly every logit is
the very same bf16 value, and the rest are a few bf16 steps away (far less than bf16 costs against float64).
int8 models (zoo/quantization.py) are judged against a float64 model with their dequantized weights, and against
their own int8 forward pass (see the int8 section).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.plugins.test_gpt2 import CONFIGS, VOCAB, make_batch, make_gpt2
from zoo import native, quantization
from zoo.generation import causal_attention_mask
from zoo.plugins.gpt2 import modeling as gpt2_modeling
from zoo.plugins.gpt2.modeling import GPT2DecodingStep, GPT2LMHeadModel, GPT2NativeDecodingStep
from zoo.quantization import Int8Linear

needs_kernel = pytest.mark.skipif(not native.available(), reason=f"native kernels not in use: {native.status()}")

#: activations the kernel computes itself beyond the three of CONFIGS (gelu_new, relu, gelu)
MORE_ACTIVATIONS = ["silu", "quick_gelu", "gelu_fast", "gelu_pytorch_tanh"]


def test_the_kernel_is_built_wherever_a_c_compiler_is():
    """Installing zoo compiles zoo/native/decode.c; a silent build failure would only show as slow decoding."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler on this machine: zoo runs on PyTorch alone")
    if os.environ.get("ZOO_NATIVE", "1") == "0":
        pytest.skip("ZOO_NATIVE=0 is set")
    assert native.available(), native.status()
    assert native.status() == "in use"


def test_zoo_native_0_turns_the_kernels_off():
    code = "from zoo import native; print(native.available(), native.status())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ZOO_NATIVE": "0"}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False turned off by ZOO_NATIVE=0"


def test_importing_zoo_native_loads_no_torch():
    code = "import sys, zoo.native; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def model_pair(folder, **overrides):
    make_gpt2(folder, "causal-lm", scale=0.5, **overrides)
    model = GPT2LMHeadModel.from_pretrained(folder)
    return model, copy.deepcopy(model).double()


def run_steps(model, step_class, ids, mask, tokens, step_threads=None):
    """Prefill ``ids`` through forward, then decode ``tokens`` (n, B) one column at a time through ``step_class``
    (None: forward), on ``step_threads`` threads if given; the logits of every step (n, B, V) in float64, and the
    cache."""
    B, L = ids.shape
    n = tokens.shape[0]
    positions = (mask.cumsum(-1) - 1).clamp(min=0) if mask is not None else None
    key_mask = (torch.cat([mask, torch.ones(B, n, dtype=torch.long)], 1).bool()[:, None, None, :]
                if mask is not None else None)
    with torch.inference_mode():
        cache = model.new_kv_cache(B, L + n)
        model(input_ids=ids, attention_mask=causal_attention_mask(mask, L, 0)[0] if mask is not None else None,
              position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1)
        if step_threads is not None:
            torch.set_num_threads(step_threads)
        step = step_class(model, cache) if step_class is not None else None
        position = positions[:, -1:] if positions is not None else None
        logits = []
        for i in range(n):
            position = position + 1 if position is not None else None
            step_mask = key_mask[..., : L + i + 1] if key_mask is not None else None
            token = tokens[i][:, None]
            if step is None:
                out = model(input_ids=token, attention_mask=step_mask, position_ids=position, past_key_values=cache,
                            use_cache=True, logits_to_keep=1).logits[:, -1]
            else:
                out = step(token, step_mask, position)
            logits.append(out.double())
    return torch.stack(logits), cache


def assert_near_exact(got, exact, what):
    scale = float(exact.abs().max())
    error = float((got - exact).abs().max())
    assert error <= 1e-5 * scale, f"{what}: max error {error:.3g} against float64, logits up to {scale:.3g}"


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3], ids=["1-thread", "2-threads", "3-threads"])  # 3: uneven blocks
@pytest.mark.parametrize("overrides", [*CONFIGS.values(), *({"activation_function": a} for a in MORE_ACTIVATIONS)],
                         ids=[*CONFIGS, *MORE_ACTIVATIONS])
def test_native_step_is_as_exact_as_pytorch(tmp_path, overrides, threads):
    """Logits and cache of six steps, a left-padded batch and a single unpadded prompt, against float64."""
    torch.set_num_threads(threads)
    model, exact_model = model_pair(tmp_path, **overrides)
    batch = make_batch(seed=3)
    tokens = torch.randint(2, VOCAB, (6, 3), generator=torch.Generator().manual_seed(4))
    for ids, mask, toks in ((batch["input_ids"], batch["attention_mask"], tokens), (batch["input_ids"][:1], None,
                                                                                     tokens[:, :1])):
        exact, exact_cache = run_steps(exact_model, None, ids, mask, toks)
        native_logits, native_cache = run_steps(model, GPT2NativeDecodingStep, ids, mask, toks)
        forward_logits, _ = run_steps(model, None, ids, mask, toks)
        assert_near_exact(forward_logits, exact, "PyTorch forward")  # the standard the kernel is held to
        assert_near_exact(native_logits, exact, "native step")
        assert exact_cache.length == ids.shape[1] + toks.shape[0]
        assert_cache_near_exact(native_cache, exact_cache, ids, mask)


def assert_cache_near_exact(mine, exact, ids, mask):
    """Attended cache positions within float32 rounding of the float64 model's (padding positions hold whatever a
    fully masked prompt row computes, never attended: not compared)."""
    length = exact.length
    assert mine.length == length
    attended = torch.ones(ids.shape[0], length, dtype=torch.bool)
    if mask is not None:
        attended[:, : ids.shape[1]] = mask.bool()
    attended = attended[:, None, :, None]  # (B, 1, S, 1)
    for a, b in zip(mine.keys + mine.values, exact.keys + exact.values):
        torch.testing.assert_close(torch.where(attended, a[:, :, :length].double(), 0.0),
                                   torch.where(attended, b[:, :, :length], 0.0), rtol=1e-5, atol=1e-5)


@needs_kernel
def test_native_step_grows_a_full_cache(tmp_path):
    model, _ = model_pair(tmp_path)
    ids = make_batch(seed=1)["input_ids"][:1]
    with torch.inference_mode():
        cache, reference = model.new_kv_cache(1, 9), model.new_kv_cache(1, 9)  # room for the prompt only
        for c in (cache, reference):
            model(input_ids=ids, past_key_values=c, use_cache=True, logits_to_keep=1)
        step = GPT2NativeDecodingStep(model, cache)
        token = torch.tensor([[5]])
        for _ in range(3):
            got = step(token)
            expected = model(input_ids=token, past_key_values=reference, use_cache=True, logits_to_keep=1).logits[:, -1]
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    assert cache.length == 12 and cache.capacity >= 12


@needs_kernel
def test_out_of_range_ids_are_an_error_and_leave_the_cache_alone(tmp_path):
    model, _ = model_pair(tmp_path)
    ids = make_batch(seed=1)["input_ids"][:1]
    with torch.inference_mode():
        cache = model.new_kv_cache(1, 12)
        model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        for t in cache.keys + cache.values:
            t[:, :, 9:] = 0.0  # past the cached 9 positions the buffer is uninitialised (maybe NaN): make it known
        before = [t.clone() for t in cache.keys + cache.values]
        step = GPT2NativeDecodingStep(model, cache)
        with pytest.raises(IndexError, match=r"token id or position is out of range: ids \[120\] \(the vocabulary "
                                             r"has 120\)"):
            step(torch.tensor([[VOCAB]]))
        with pytest.raises(IndexError, match="out of range"):
            step(torch.tensor([[3]]), position_ids=torch.tensor([[-1]]))
    assert cache.length == 9
    assert all(torch.equal(a, b) for a, b in zip(before, cache.keys + cache.values))  # not even position 9


@needs_kernel
def test_generate_picks_the_native_step_only_where_it_runs(tmp_path, monkeypatch):
    """float32 on CPU with a few rows: the kernel; another dtype, an activation it lacks, or a large batch: the
    PyTorch step."""
    model, exact_model = model_pair(tmp_path)
    assert type(model.decoding_step(model.new_kv_cache(1, 4))) is GPT2NativeDecodingStep
    assert type(model.decoding_step(model.new_kv_cache(gpt2_modeling.NATIVE_MAX_ROWS, 4))) is GPT2NativeDecodingStep
    assert type(model.decoding_step(model.new_kv_cache(gpt2_modeling.NATIVE_MAX_ROWS + 1, 4))) is GPT2DecodingStep
    assert type(exact_model.decoding_step(exact_model.new_kv_cache(1, 4))) is GPT2DecodingStep
    mish, _ = model_pair(tmp_path / "mish", activation_function="mish")
    assert type(mish.decoding_step(mish.new_kv_cache(1, 4))) is GPT2DecodingStep
    with pytest.raises(ValueError, match="activation 'mish' is not one it computes"):
        GPT2NativeDecodingStep(mish, mish.new_kv_cache(1, 4))
    monkeypatch.setattr(native, "available", lambda: False)  # as where zoo was built without a compiler
    assert type(model.decoding_step(model.new_kv_cache(1, 4))) is GPT2DecodingStep


@needs_kernel
def test_greedy_generate_is_the_same_through_either_step(tmp_path, monkeypatch):
    torch.set_num_threads(2)
    model, _ = model_pair(tmp_path)
    batch = make_batch(seed=9)
    options = dict(max_new_tokens=10, eos_token_id=[])
    through_kernel = model.generate(**batch, **options)
    monkeypatch.setattr(native, "available", lambda: False)
    assert torch.equal(model.generate(**batch, **options), through_kernel)


@needs_kernel
def test_tensors_of_the_wrong_shape_are_refused_before_the_kernel_reads_them(tmp_path):
    """The kernel indexes raw memory: a shape other than GPT-2's, a cache of another model, or inputs and masks
    that do not match the cache are ValueErrors that say what was expected."""
    model, _ = model_pair(tmp_path)
    step = GPT2NativeDecodingStep(model, model.new_kv_cache(2, 12))
    kernel = step.kernel
    body = model.transformer
    layers = [GPT2NativeDecodingStep.layer_weights(b) for b in body.h]
    common = dict(wte=body.wte.weight, wpe=body.wpe.weight, ln_f_weight=body.ln_f.weight, ln_f_bias=body.ln_f.bias,
                  head_weight=model.lm_head.weight, heads=model.config.n_head, eps=1e-5, activation="gelu_new")
    transposed = copy.copy(layers[1].__dict__)
    transposed["attn_weight"] = layers[1].attn_weight.t().contiguous()
    with pytest.raises(ValueError, match=r"layers\[1\]\.attn_weight has shape \(96, 32\), expected \(32, 96\)"):
        native.NativeDecoder(layers=[layers[0], native.DecoderLayerWeights(**transposed)], cache=model.new_kv_cache(1, 4),
                             **common)
    with pytest.raises(ValueError, match="the cache has 1 layers, the model 2"):
        native.NativeDecoder(layers=layers, cache=gpt2_modeling.KVCache(1, 1, 4, 8, 4), **common)
    with pytest.raises(ValueError, match="not a multiple of the 5 heads"):
        native.NativeDecoder(layers=layers, cache=model.new_kv_cache(1, 4), **{**common, "heads": 5})
    with torch.inference_mode():
        with pytest.raises(ValueError, match=r"expected input_ids and positions of shape \(2,\)"):
            kernel(torch.tensor([3]), torch.tensor([0]))
        with pytest.raises(ValueError, match=r"boolean \(2, 1, 1, 1\) mask"):
            kernel(torch.tensor([3, 4]), torch.tensor([0, 0]), torch.ones(2, 1, 1, 5, dtype=torch.bool))
    assert step.cache.length == 0


# --- bfloat16 ---------------------------------------------------------------------------------------------------------

#: bf16 keeps 8 significant bits: a step between neighbouring values is at most 2**-7 of their magnitude
BF16_STEP = 2.0**-7
#: Configs for the bf16 tests: those of float32 (reorder_and_upcast_attn and an untied head among them) and every
#: activation, the ones zoo.activations writes as several torch ops (each rounding) included
BF16_CONFIGS = {**CONFIGS, **{a: {"activation_function": a} for a in [*MORE_ACTIVATIONS, "gelu_python"]}}


def bf16_model(folder, **overrides):
    make_gpt2(folder, "causal-lm", scale=0.5, **overrides)
    return GPT2LMHeadModel.from_pretrained(folder, dtype=torch.bfloat16)


def padded_batch(rows, length=9, seed=3):
    """``rows`` prompts left-padded to different lengths (one of them unpadded, one of two tokens)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (rows, length), generator=g)
    mask = torch.ones(rows, length, dtype=torch.long)
    for row in range(rows):
        mask[row, : (row * 3) % (length - 1)] = 0
    ids[mask == 0] = 0
    return ids, mask


def widened_step(model, cache):
    """The native step with the output embedding's bf16 rows widened, even where vdpbf16ps would run."""
    step = GPT2NativeDecodingStep(model, cache)
    body = model.transformer
    step.kernel = native.NativeDecoder(
        wte=body.wte.weight, wpe=body.wpe.weight, layers=[GPT2NativeDecodingStep.layer_weights(b) for b in body.h],
        ln_f_weight=body.ln_f.weight, ln_f_bias=body.ln_f.bias, head_weight=model.lm_head.weight,
        heads=model.config.n_head, eps=model.config.layer_norm_epsilon, activation=model.config.activation_function,
        cache=cache, upcast=model.config.reorder_and_upcast_attn, widen_bf16=True)
    return step


def assert_follows_bf16(got, expected, what, min_equal=0.75):
    """``got`` (float64 of bf16 values) against the bf16 forward pass's ``expected``.

    The bound: a float-level difference (summation order, exp, LayerNorm moments) can decide a rounding the other
    way, leaving an intermediate one bf16 step off, which moves logits by a few steps at most: 4 steps at the
    logits' scale, ~0.03 of it, where the bf16 model itself is ~0.05-0.08 of it from float64 (these tiny models
    show none; 256-384 wide ones up to 2 steps). Rounding at the same points also leaves most logits the very same
    bf16 value (all of them here, 82-87% on the wider models); one rounding missing (after an activation of several
    torch ops) leaves a third of them equal."""
    assert torch.equal(got.to(torch.bfloat16).double(), got), f"{what}: values that are not bf16"
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    assert error <= 4 * BF16_STEP * scale, f"{what}: max error {error:.3g} against bf16 forward, logits to {scale:.3g}"
    equal = float((got == expected).double().mean())
    assert equal >= min_equal, f"{what}: only {equal:.0%} of the logits are the bf16 forward pass's"


def assert_cache_follows(mine, theirs, ids, mask):
    """Attended cache positions: bf16, within one step of the forward pass's, nearly all the same value."""
    length = theirs.length
    assert mine.length == length
    attended = torch.ones(ids.shape[0], length, dtype=torch.bool)
    if mask is not None:
        attended[:, : ids.shape[1]] = mask.bool()
    attended = attended[:, None, :, None]  # (B, 1, S, 1)
    equal = total = 0
    for a, b in zip(mine.keys + mine.values, theirs.keys + theirs.values):
        assert a.dtype == torch.bfloat16
        a, b = (torch.where(attended, t[:, :, :length].double(), 0.0) for t in (a, b))
        torch.testing.assert_close(a, b, rtol=BF16_STEP, atol=BF16_STEP * float(b.abs().max()))
        equal, total = equal + int((a == b).sum()), total + a.numel()
    assert equal >= 0.75 * total, f"only {equal / total:.0%} of the cached values are the bf16 forward pass's"


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3], ids=["1-thread", "2-threads", "3-threads"])
@pytest.mark.parametrize("name", list(BF16_CONFIGS))
def test_bf16_native_step_rounds_where_the_bf16_forward_pass_rounds(tmp_path, name, threads):
    """Logits and cache of six steps, a left-padded batch and a single prompt, against the bf16 forward pass run on
    one thread, the prompt too (on more, torch's split matrix-vector product rounds each thread's partial product
    to bf16 as well; the kernel keeps its partial products in float32 at any thread count)."""
    model = bf16_model(tmp_path, **BF16_CONFIGS[name])
    batch = make_batch(seed=3)
    tokens = torch.randint(2, VOCAB, (6, 3), generator=torch.Generator().manual_seed(4))
    for ids, mask, toks in ((batch["input_ids"], batch["attention_mask"], tokens),
                            (batch["input_ids"][:1], None, tokens[:, :1])):
        torch.set_num_threads(1)
        forward_logits, forward_cache = run_steps(model, None, ids, mask, toks)
        native_logits, native_cache = run_steps(model, GPT2NativeDecodingStep, ids, mask, toks, step_threads=threads)
        assert_follows_bf16(native_logits, forward_logits, f"{name}, {ids.shape[0]} rows")
        assert_cache_follows(native_cache, forward_cache, ids, mask)


@needs_kernel
@pytest.mark.parametrize("rows", [1, 5, gpt2_modeling.NATIVE_MAX_ROWS, 10], ids=lambda r: f"{r}-rows")
@pytest.mark.parametrize("head", ["native", "widened"])
def test_bf16_rows_with_left_padding(tmp_path, rows, head):
    """Up to NATIVE_MAX_ROWS rows (and beyond, where the kernel takes vdpbf16ps' rows in groups of eight), each
    left-padded differently; the output embedding through vdpbf16ps where the processor has it, and widened."""
    torch.set_num_threads(1)
    model = bf16_model(tmp_path)
    ids, mask = padded_batch(rows)
    tokens = torch.randint(2, VOCAB, (5, rows), generator=torch.Generator().manual_seed(6))
    forward_logits, forward_cache = run_steps(model, None, ids, mask, tokens)
    step_class = GPT2NativeDecodingStep if head == "native" else widened_step
    native_logits, native_cache = run_steps(model, step_class, ids, mask, tokens, step_threads=2)
    assert_follows_bf16(native_logits, forward_logits, f"{rows} rows, {head} head")
    assert_cache_follows(native_cache, forward_cache, ids, mask)


@needs_kernel
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bf16_greedy_ids_are_the_pytorch_steps(tmp_path, seed, monkeypatch):
    """32 greedy tokens for three left-padded prompts: through the kernel, then through the bf16 PyTorch step."""
    torch.set_num_threads(1)
    make_gpt2(tmp_path, "causal-lm", seed=seed, scale=0.5)
    model = GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    used = []
    original = GPT2LMHeadModel.decoding_step

    def spy(self, cache):
        step = original(self, cache)
        used.append(type(step))
        return step

    monkeypatch.setattr(GPT2LMHeadModel, "decoding_step", spy)
    batch = make_batch(seed=seed + 10)
    options = dict(max_new_tokens=32, do_sample=False, eos_token_id=[])
    through_kernel = model.generate(**batch, **options)
    monkeypatch.setattr(native, "available", lambda: False)
    through_pytorch = model.generate(**batch, **options)
    assert used == [GPT2NativeDecodingStep, GPT2DecodingStep]
    assert through_kernel.shape == (3, 9 + 32)
    assert torch.equal(through_kernel, through_pytorch)


@needs_kernel
def test_bf16_decoding_step_is_the_native_one(tmp_path, monkeypatch):
    """bf16 (reorder_and_upcast_attn included, which only the kernel computes in half precision) decodes through the
    kernel; float16 through PyTorch, or forward where it upcasts; a cache of another dtype is refused."""
    model = bf16_model(tmp_path)
    cache = model.new_kv_cache(1, 4)
    assert cache.keys[0].dtype == torch.bfloat16
    assert type(model.decoding_step(cache)) is GPT2NativeDecodingStep
    assert type(model.decoding_step(model.new_kv_cache(gpt2_modeling.NATIVE_MAX_ROWS + 1, 4))) is GPT2DecodingStep
    fp32_cache = gpt2_modeling.KVCache(2, 1, 4, 8, 4)
    assert type(model.decoding_step(fp32_cache)) is GPT2DecodingStep
    with pytest.raises(ValueError, match=r"of one dtype \(torch.bfloat16, the model's, the cache's too\), got a cache "
                                         r"tensor torch.float32"):
        GPT2NativeDecodingStep(model, fp32_cache)
    half = copy.deepcopy(model).to(torch.float16)
    assert type(half.decoding_step(half.new_kv_cache(1, 4))) is GPT2DecodingStep
    with pytest.raises(ValueError, match="it reads float32 or bfloat16 weights, got torch.float16"):
        GPT2NativeDecodingStep(half, half.new_kv_cache(1, 4))
    upcast = bf16_model(tmp_path / "upcast", reorder_and_upcast_attn=True)
    assert type(upcast.decoding_step(upcast.new_kv_cache(1, 4))) is GPT2NativeDecodingStep
    upcast_half = copy.deepcopy(upcast).to(torch.float16)
    assert upcast_half.decoding_step(upcast_half.new_kv_cache(1, 4)) is None
    monkeypatch.setattr(native, "available", lambda: False)
    assert upcast.decoding_step(upcast.new_kv_cache(1, 4)) is None  # the PyTorch step does not upcast
    assert type(model.decoding_step(cache)) is GPT2DecodingStep


# --- int8 ---------------------------------------------------------------------------------------------------------
# An int8 model's step reads int8 (out, in) weights with per-row scales (zoo/quantization.py). In float32 the kernel
# computes the float32 product with the dequantized weights q * scale (no rounding of activations), so it is held to a
# float64 model with exactly those weights, to float32 rounding; the prompt runs through Int8Linear's exact path
# there (its CPU fast path rounds activations to bf16, which the kernel need not copy). Against the int8 forward pass
# with that fast path it is within the bf16 rounding of activations. In bf16 it rounds where the bf16 int8 forward
# pass rounds, and is held to it as the bf16 float step is held to the bf16 forward pass.


def int8_pair(folder, dtype=torch.float32, **overrides):
    """An int8 GPT-2 (``quantization="int8"``, in ``dtype``) and a float64 copy whose projections, the output
    projection included (its own, untied), are the int8 model's dequantized weights ``q * scale``; its other tensors
    are the int8 model's float ones."""
    make_gpt2(folder, "causal-lm", scale=0.5, **overrides)
    model = GPT2LMHeadModel.from_pretrained(folder, dtype=dtype, quantization="int8")
    exact = GPT2LMHeadModel.from_pretrained(folder, dtype=dtype).double()
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, Int8Linear):
                continue
            weight = module.weight_int8.double() * module.weight_scale.double()[:, None]  # (out, in)
            if name == "lm_head":
                exact.lm_head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.float64)
                exact.lm_head.weight.copy_(weight)
            else:
                exact.get_submodule(name).weight.copy_(weight.t())  # a Conv1D: (in, out)
    assert isinstance(model.lm_head, Int8Linear)
    return model, exact


def int8_step(loop):
    """The int8 native step on its AVX-512 rows ("vector", where the processor has them) or the portable loop."""
    return functools.partial(GPT2NativeDecodingStep, widen=loop == "portable")


def prompts():
    """A left-padded batch of three and a single unpadded prompt, with six tokens to decode for each."""
    batch = make_batch(seed=3)
    tokens = torch.randint(2, VOCAB, (6, 3), generator=torch.Generator().manual_seed(4))
    return [(batch["input_ids"], batch["attention_mask"], tokens), (batch["input_ids"][:1], None, tokens[:, :1])]


@needs_kernel
@pytest.mark.parametrize("loop", ["vector", "portable"])
@pytest.mark.parametrize("threads", [1, 2, 3], ids=["1-thread", "2-threads", "3-threads"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_int8_native_step_is_the_dequantized_product(tmp_path, monkeypatch, name, threads, loop):
    """float32: logits and cache of six steps against float64 with the dequantized weights, to float32 rounding."""
    monkeypatch.setattr(quantization, "_BF16", False)  # the prompt through Int8Linear's exact path
    torch.set_num_threads(threads)
    model, exact_model = int8_pair(tmp_path, **CONFIGS[name])
    for ids, mask, toks in prompts():
        exact, exact_cache = run_steps(exact_model, None, ids, mask, toks)
        native_logits, native_cache = run_steps(model, int8_step(loop), ids, mask, toks)
        assert native_cache.keys[0].dtype == torch.float32
        assert_near_exact(native_logits, exact, f"int8 native step ({loop})")
        assert_cache_near_exact(native_cache, exact_cache, ids, mask)


@needs_kernel
@pytest.mark.parametrize("name", list(CONFIGS))
def test_int8_native_step_follows_the_int8_forward_pass(tmp_path, name):
    """float32, against zoo's PyTorch int8 path as it runs here: on a CPU with bf16 instructions its fast path
    rounds activations and products to bf16 in every projection, which moves its logits from the exact ones by
    1-5% (relative L2; the most where attention is unscaled). The kernel (float32 activations) is held to within
    twice that distance of it: measured up to 1.3 times (the two share the prompt's rounded cache, the exact model
    does not); without the fast path the two are the same float32 maths."""
    torch.set_num_threads(2)
    model, exact_model = int8_pair(tmp_path, **CONFIGS[name])
    for ids, mask, toks in prompts():
        forward_logits, _ = run_steps(model, None, ids, mask, toks)
        native_logits, _ = run_steps(model, GPT2NativeDecodingStep, ids, mask, toks)
        exact, _ = run_steps(exact_model, None, ids, mask, toks)
        rounding = float((forward_logits - exact).norm() / exact.norm())  # what its bf16 activations cost
        error = float((native_logits - forward_logits).norm() / forward_logits.norm())
        assert error <= 2 * rounding + 1e-5, f"{name}: {error:.3g} from the int8 forward pass ({rounding:.3g} off)"


def int8pack_everywhere(overrides):
    """Whether the bf16 int8 forward pass multiplies every decoding row on _weight_int8pack_mm (the rounding the
    kernel follows): a CPU with bf16 instructions and every inner dimension a multiple of 16."""
    width = overrides.get("n_embd", 32)
    inner = overrides.get("n_inner") or 4 * width
    return quantization._bf16_cpu() and width % 16 == 0 and inner % 16 == 0


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3], ids=["1-thread", "2-threads", "3-threads"])
@pytest.mark.parametrize("name", list(BF16_CONFIGS))
def test_bf16_int8_native_step_rounds_where_the_int8_forward_pass_rounds(tmp_path, name, threads):
    """bf16: no farther from the float64 dequantized model than the bf16 int8 forward pass (one thread) is, but for
    a few bf16 steps; and where that forward pass multiplies every decoding row on _weight_int8pack_mm (rounding the
    scaled product, then the sum with the bias, as the kernel does), logits and cache follow it as the bf16 float
    step follows the bf16 forward pass (measured: every logit its very value). Its other path (an inner dimension
    not a multiple of 16, or no bf16 instructions) rounds the product before the scale, which leaves 15-30% of the
    logits equal and up to 6 bf16 steps between the two, the kernel the closer to float64."""
    model, exact_model = int8_pair(tmp_path, torch.bfloat16, **BF16_CONFIGS[name])
    follows = int8pack_everywhere(BF16_CONFIGS[name])
    for ids, mask, toks in prompts():
        torch.set_num_threads(1)
        forward_logits, forward_cache = run_steps(model, None, ids, mask, toks)
        native_logits, native_cache = run_steps(model, GPT2NativeDecodingStep, ids, mask, toks, step_threads=threads)
        exact, _ = run_steps(exact_model, None, ids, mask, toks)
        assert torch.equal(native_logits.to(torch.bfloat16).double(), native_logits), "values that are not bf16"
        if follows:
            assert_follows_bf16(native_logits, forward_logits, f"int8 {name}, {ids.shape[0]} rows")
            assert_cache_follows(native_cache, forward_cache, ids, mask)
        scale = float(exact.abs().max())
        native_error = float((native_logits - exact).abs().max())
        forward_error = float((forward_logits - exact).abs().max())
        assert native_error <= forward_error + 4 * BF16_STEP * scale, (native_error, forward_error, scale)


@needs_kernel
@pytest.mark.parametrize("loop", ["vector", "portable"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("rows", [1, 5, gpt2_modeling.NATIVE_MAX_ROWS, 10], ids=lambda r: f"{r}-rows")
def test_int8_rows_with_left_padding(tmp_path, monkeypatch, rows, dtype, loop):
    """Up to NATIVE_MAX_ROWS rows (and beyond, where the AVX-512 rows take inputs in groups of eight), each
    left-padded differently, on two threads: float32 against float64, bf16 against the bf16 int8 forward pass."""
    monkeypatch.setattr(quantization, "_BF16", quantization._bf16_cpu() and dtype == torch.bfloat16)
    torch.set_num_threads(1)
    model, exact_model = int8_pair(tmp_path, dtype)
    ids, mask = padded_batch(rows)
    tokens = torch.randint(2, VOCAB, (5, rows), generator=torch.Generator().manual_seed(6))
    native_logits, native_cache = run_steps(model, int8_step(loop), ids, mask, tokens, step_threads=2)
    torch.set_num_threads(1)
    if dtype == torch.float32:
        exact, exact_cache = run_steps(exact_model, None, ids, mask, tokens)
        assert_near_exact(native_logits, exact, f"{rows} rows, {loop}")
        assert_cache_near_exact(native_cache, exact_cache, ids, mask)
    else:
        forward_logits, forward_cache = run_steps(model, None, ids, mask, tokens)
        if not int8pack_everywhere({}):
            pytest.skip("the bf16 int8 forward pass rounds otherwise on a CPU without bf16 instructions")
        assert_follows_bf16(native_logits, forward_logits, f"int8, {rows} rows, {loop}")
        assert_cache_follows(native_cache, forward_cache, ids, mask)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_greedy_ids_are_the_int8_forward_passes(tmp_path, monkeypatch, seed, dtype):
    """32 greedy tokens for three left-padded prompts: through the kernel, then through the int8 forward pass
    (float32: its exact path, the maths the kernel computes; bf16: its CPU path, whose roundings the kernel
    follows)."""
    monkeypatch.setattr(quantization, "_BF16", quantization._bf16_cpu() and dtype == torch.bfloat16)
    torch.set_num_threads(1)
    make_gpt2(tmp_path, "causal-lm", seed=seed, scale=0.5)
    model = GPT2LMHeadModel.from_pretrained(tmp_path, dtype=dtype, quantization="int8")
    used = []
    original = GPT2LMHeadModel.decoding_step

    def spy(self, cache):
        step = original(self, cache)
        used.append(type(step))
        return step

    monkeypatch.setattr(GPT2LMHeadModel, "decoding_step", spy)
    batch = make_batch(seed=seed + 10)
    options = dict(max_new_tokens=32, do_sample=False, eos_token_id=[])
    through_kernel = model.generate(**batch, **options)
    monkeypatch.setattr(native, "available", lambda: False)
    through_forward = model.generate(**batch, **options)
    assert used == [GPT2NativeDecodingStep, type(None)]
    assert through_kernel.shape == (3, 9 + 32)
    assert torch.equal(through_kernel, through_forward)


@needs_kernel
def test_int8_decoding_step_is_the_native_one(tmp_path, monkeypatch):
    """An int8 GPT-2 decodes through the kernel's int8 path (float32 and bf16); where the kernel cannot run (no
    kernel, too many rows, float16) through forward: None, never the PyTorch step, which reads float weights."""
    model, _ = int8_pair(tmp_path)
    step = model.decoding_step(model.new_kv_cache(1, 4))
    assert type(step) is GPT2NativeDecodingStep and step.kernel.kind == "int8"
    bf16 = GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.bfloat16, quantization="int8")
    step = bf16.decoding_step(bf16.new_kv_cache(1, 4))
    assert type(step) is GPT2NativeDecodingStep and step.kernel.kind == "int8" and step.kernel.dtype == torch.bfloat16
    assert model.decoding_step(model.new_kv_cache(gpt2_modeling.NATIVE_MAX_ROWS + 1, 4)) is None
    half = copy.deepcopy(model).to(torch.float16)
    assert half.decoding_step(half.new_kv_cache(1, 4)) is None
    with pytest.raises(ValueError, match="GPT2DecodingStep reads float weights.*int8 projections"):
        GPT2DecodingStep(model, model.new_kv_cache(1, 4))
    monkeypatch.setattr(native, "available", lambda: False)
    assert model.decoding_step(model.new_kv_cache(1, 4)) is None  # no AttributeError over the int8 lm_head


@needs_kernel
def test_int8_tensors_the_kernel_cannot_read_are_refused(tmp_path):
    """Int8 and float projections mixed, an int8 weight without scales, an int8 weight in the float (in, out)
    layout, or scales of the wrong length: ValueErrors naming the tensor, before the kernel reads anything."""
    model, _ = int8_pair(tmp_path)
    body = model.transformer
    layers = [GPT2NativeDecodingStep.layer_weights(b) for b in body.h]
    common = dict(wte=body.wte.weight, wpe=body.wpe.weight, ln_f_weight=body.ln_f.weight, ln_f_bias=body.ln_f.bias,
                  head_weight=model.lm_head.weight_int8, head_weight_scale=model.lm_head.weight_scale,
                  heads=model.config.n_head, eps=1e-5, activation="gelu_new", cache=model.new_kv_cache(1, 4))
    assert native.NativeDecoder(layers=layers, **common).kind == "int8"

    def changed(**fields):
        return [layers[0], dataclasses.replace(layers[1], **fields)]

    with pytest.raises(ValueError, match=r"its projections are int8, but head_weight is torch.float32"):
        native.NativeDecoder(layers=layers, **{**common, "head_weight": body.wte.weight, "head_weight_scale": None})
    with pytest.raises(ValueError, match=r"layers\[1\]\.fc_weight is int8 without its scales"):
        native.NativeDecoder(layers=changed(fc_weight_scale=None), **common)
    with pytest.raises(ValueError, match=r"layers\[1\]\.attn_weight has shape \(32, 96\), expected \(96, 32\)"):
        native.NativeDecoder(layers=changed(attn_weight=layers[1].attn_weight.t().contiguous()), **common)
    with pytest.raises(ValueError, match=r"layers\[1\]\.mlp_weight_scale has shape \(5,\), expected \(32,\)"):
        native.NativeDecoder(layers=changed(mlp_weight_scale=torch.ones(5)), **common)
    float_layers = [GPT2NativeDecodingStep.layer_weights(b) for b in model_pair(tmp_path / "float")[0].transformer.h]
    with pytest.raises(ValueError, match=r"head_weight is torch.float32 but has scales"):
        native.NativeDecoder(layers=float_layers, **{**common, "head_weight": body.wte.weight})
