"""int8 weight-only quantization (zoo/quantization.py): the per-channel formula, every compute path of an int8
projection against the dequantized product, every text architecture's heads against transformers' float model on
small random checkpoints, generation, and what an int8 model refuses (training, saving, an unknown quantization).

Bounds: an int8 weight is off by at most half a step (scale / 2) per value, about 0.4% of a row's largest value on
average, and the fast paths round activations to bf16 (0.4% at most); through a few layers of the random test
models (two layers, weights drawn far wider than a trained model's) the outputs stay within :data:`REL_BOUND`:
relative L2 error of the whole output tensor, measured 0.01% (BERT's hidden states) to 5% (Mistral's two-label
classifier logits), of which the int8 weights alone (the exact float32 path) make 75-95%."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn

import zoo
from zoo import quantization
from zoo.errors import ConfigError, ZooError
from zoo.layers import Linear
from zoo.plugins.gpt2 import modeling as zoo_gpt2
from zoo.quantization import Int8Linear, int8_linear, quantize_int8, quantize_weight
from tests.checkpoints import make_bert
from tests.plugins.llama_checkpoints import load_hf, make_batch as llama_batch, make_llama
from tests.plugins.test_gpt2 import make_batch as gpt2_batch, make_gpt2
from tests.plugins.test_roberta import make_batch as roberta_batch, make_roberta

#: relative L2 error allowed between an int8 model's outputs and the float model's (see the module docstring)
REL_BOUND = 0.08


def rel_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).norm() / expected.float().norm())


def reference_int8(weight: torch.Tensor, scale_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-output-channel symmetric formula written out, row by row, in float64."""
    rows_q, scales = [], []
    for row in weight.double():
        scale = torch.tensor(float(row.abs().max()) / 127).to(scale_dtype)
        scale = scale if float(scale) > 0 else torch.tensor(1.0, dtype=scale_dtype)
        rows_q.append(torch.round(row / float(scale)).clamp(-127, 127).to(torch.int8))
        scales.append(scale)
    return torch.stack(rows_q), torch.stack(scales)


def projections(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, Int8Linear)}


# --- the formula -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantized_weights_follow_the_per_channel_formula(dtype):
    generator = torch.Generator().manual_seed(0)
    weight = (torch.randn(37, 50, generator=generator) * torch.rand(37, 1, generator=generator) * 3).to(dtype)
    weight[5] = 0  # a row of zeros: scale 1, all zeros
    q, scale = quantize_weight(weight)
    expected_q, expected_scale = reference_int8(weight, dtype)
    assert q.dtype == torch.int8 and scale.dtype == dtype
    torch.testing.assert_close(scale, expected_scale, atol=0, rtol=0)
    torch.testing.assert_close(q, expected_q, atol=0, rtol=0)
    assert int(q.abs().max()) == 127 and not q[5].any()
    # each value is within half a step of its weight (the clamp only ever trims bf16-rounded scales)
    step = scale.float()[:, None]
    assert bool(((q.float() * step - weight.float()).abs() <= step * 0.5 + 1e-6).all())


def test_rounding_is_half_to_even_and_clamped_to_127():
    halves = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5])
    weight = torch.cat([torch.tensor([127.0]), halves])[None]  # scale exactly 1
    q, scale = quantize_weight(weight)
    assert float(scale) == 1.0
    assert q[0].tolist() == [127, *(round(v) for v in halves.tolist())]  # Python's round() is half to even
    q, _ = quantize_weight(torch.tensor([[1.0, -1.0]]), dtype=torch.bfloat16)
    assert q.abs().max() <= 127


def test_chunked_quantization_equals_one_pass(monkeypatch):
    weight = torch.randn(70, 33, generator=torch.Generator().manual_seed(1))
    whole = quantize_weight(weight)
    monkeypatch.setattr(quantization, "_CHUNK_ELEMENTS", 100)  # three rows at a time
    parts = quantize_weight(weight)
    assert torch.equal(whole[0], parts[0]) and torch.equal(whole[1], parts[1])


# --- the product -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bf16_cpu", [True, False])  # False: a CPU without bf16 instructions, the exact path
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 5, 16, 17, 130])
@pytest.mark.parametrize("inner", [64, 40])  # 40: not a multiple of 16, which the int8 GEMV kernel cannot take
def test_every_path_computes_the_dequantized_product(monkeypatch, bf16_cpu, dtype, rows, inner):
    if bf16_cpu and not quantization._bf16_cpu():
        pytest.skip("this CPU has no bf16 instructions: only the exact path runs here")
    monkeypatch.setattr(quantization, "_BF16", bf16_cpu)
    generator = torch.Generator().manual_seed(rows)
    weight = torch.randn(48, inner, generator=generator)
    q, scale = quantize_weight(weight)
    bias = torch.randn(48, generator=generator)
    x = torch.randn(rows, inner, generator=generator)
    expected = F.linear(x, q.float() * scale[:, None], bias)  # float32 throughout
    with torch.no_grad():
        got = int8_linear(x.to(dtype), q, scale.to(dtype), bias.to(dtype))
    assert got.dtype == dtype and got.shape == (rows, 48)
    exact = dtype == torch.float32 and not bf16_cpu
    # the fast paths round activations and products to bf16 (2^-9); the exact path is float32 maths
    assert rel_error(got, expected) < (1e-5 if exact else 1e-2)


def test_the_portable_path_is_what_an_input_needing_a_gradient_takes_and_is_differentiable():
    generator = torch.Generator().manual_seed(0)
    q, scale = quantize_weight(torch.randn(24, 32, generator=generator))
    x = torch.randn(3, 32, generator=generator, requires_grad=True)
    y = int8_linear(x, q, scale)
    y.sum().backward()
    dequantized = q.float() * scale[:, None]
    torch.testing.assert_close(y, x.detach() @ dequantized.T, atol=1e-5, rtol=1e-5)  # exact float32 maths here
    torch.testing.assert_close(x.grad, dequantized.sum(0).expand(3, -1), atol=1e-5, rtol=1e-5)


def test_int8_linear_module_takes_zoo_linears_arguments():
    torch.manual_seed(0)
    linear = Linear(32, 48)
    module = Int8Linear.from_float(linear)
    x = torch.randn(2, 5, 32)
    residual = torch.randn(2, 5, 48)
    with torch.no_grad():
        plain = F.linear(x, module.weight_int8.float() * module.weight_scale[:, None], linear.bias)
        assert rel_error(module(x), plain) < 1e-2
        assert rel_error(module(x, activation="gelu"), F.gelu(plain)) < 1e-2
        assert rel_error(module(x, add=residual), plain + residual) < 1e-2
    with pytest.raises(ValueError, match="not both"):
        module(x, activation="gelu", add=residual)
    assert module.in_features == 32 and module.out_features == 48 and module.bias is not None


# --- models: every text architecture against transformers' float model ---------------------------------------------


def _compare(zoo_model, hf_model, batch, keys):
    assert zoo_model.quantization == "int8" and projections(zoo_model)
    with torch.no_grad():
        got, expected = zoo_model(**batch), hf_model(**batch)
    errors = {key: rel_error(getattr(got, key), expected[key]) for key in keys}
    assert all(e < REL_BOUND for e in errors.values()), errors
    return errors


@pytest.mark.parametrize("task,keys", [("base", ["last_hidden_state", "pooler_output"]),
                                       ("masked-lm", ["logits"]), ("sequence-classification", ["logits"])])
def test_bert_heads_stay_close_to_the_float_model(tmp_path, task, keys):
    hf = make_bert(tmp_path, task)
    auto = {"base": zoo.AutoModel, "masked-lm": zoo.AutoModelForMaskedLM,
            "sequence-classification": zoo.AutoModelForSequenceClassification}[task]
    model = auto.from_pretrained(tmp_path, quantization="int8")
    ids = torch.randint(5, hf.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0))
    _compare(model, hf, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, keys)
    if task == "masked-lm":  # the tied decoder gets its own int8 copy; the word embeddings stay float
        assert_tied_head_is_its_own_int8_copy(model.cls.predictions.decoder, model.bert.embeddings.word_embeddings)


@pytest.mark.parametrize("task", ["masked-lm", "sequence-classification"])
def test_roberta_heads_stay_close_to_the_float_model(tmp_path, task):
    hf = make_roberta(tmp_path, task)
    auto = zoo.AutoModelForMaskedLM if task == "masked-lm" else zoo.AutoModelForSequenceClassification
    model = auto.from_pretrained(tmp_path, quantization="int8")
    _compare(model, hf, roberta_batch({}), ["logits"])
    if task == "masked-lm":
        assert_tied_head_is_its_own_int8_copy(model.lm_head.decoder, model.roberta.embeddings.word_embeddings)


@pytest.mark.parametrize("task", ["causal-lm", "sequence-classification", "token-classification"])
def test_gpt2_heads_stay_close_to_the_float_model(tmp_path, task):
    hf = make_gpt2(tmp_path, task, pad_token_id=0)
    model = getattr(zoo_gpt2, type(hf).__name__).from_pretrained(tmp_path, quantization="int8")
    _compare(model, hf, gpt2_batch(), ["logits"])
    names = set(projections(model))
    assert {"transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj"} <= names
    if task == "causal-lm":  # tied to wte: its own int8 copy, wte float
        assert "lm_head" in names and model.get_output_embeddings() is model.lm_head
        assert_tied_head_is_its_own_int8_copy(model.lm_head, model.transformer.wte)


def assert_tied_head_is_its_own_int8_copy(head, embeddings):
    """A tied output projection, quantized: an Int8Linear holding the embedding matrix's int8 form, while the
    embeddings stay a float matrix (the tie broken: no float `weight` left on the head)."""
    assert isinstance(head, Int8Linear) and not hasattr(head, "weight")
    assert embeddings.weight.is_floating_point()
    expected_q, expected_scale = quantize_weight(embeddings.weight.detach())
    assert torch.equal(head.weight_int8, expected_q) and torch.equal(head.weight_scale, expected_scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpt2_tied_lm_head_is_int8_and_its_logits_within_the_int8_bound(tmp_path, dtype):
    """The lm_head int8, wte float and unchanged; the logits against the float model within int8's bound, and equal
    to those of the float model's hidden states times the dequantized wte."""
    hf = make_gpt2(tmp_path)
    float_model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=dtype)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=dtype, quantization="int8")
    assert torch.equal(model.transformer.wte.weight, float_model.transformer.wte.weight)
    assert_tied_head_is_its_own_int8_copy(model.lm_head, model.transformer.wte)
    batch = gpt2_batch()
    with torch.no_grad():
        logits, expected = model(**batch).logits, hf(**batch).logits
        assert rel_error(logits, expected) < REL_BOUND
        h = model.transformer(**batch).last_hidden_state  # (B, T, C)
        dequantized = model.lm_head.weight_int8.double() * model.lm_head.weight_scale.double()[:, None]
        head_only = (h.double() @ dequantized.T)  # the head's product, exactly
    assert rel_error(logits, head_only) < (1e-5 if dtype == torch.float32 and not quantization._bf16_cpu() else 1e-2)


def test_a_quantized_model_is_never_tied_again(tmp_path):
    """tie_weights keeps the int8 head (re-quantized from the embeddings if they changed, a deep copy's included);
    a matrix of another shape set as its weight, a float weight set on another int8 projection, or
    resize_token_embeddings is a ZooError; post_init an AttributeError that says why (GPT-2 initialises Conv1D
    weights, which an int8 model lacks)."""
    make_gpt2(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8")
    head, wte = model.lm_head, model.transformer.wte
    q = head.weight_int8
    model.tie_weights()
    assert model.lm_head is head and head.weight_int8 is q and "lm_head.weight" not in dict(model.named_parameters())
    with torch.no_grad():
        wte.weight.mul_(2)
    model.tie_weights()  # the embeddings changed: the head follows them, still int8
    assert_tied_head_is_its_own_int8_copy(head, wte)
    copied = copy.deepcopy(model)
    copied.tie_weights()
    assert_tied_head_is_its_own_int8_copy(copied.lm_head, copied.transformer.wte)
    head.weight = nn.Parameter(torch.zeros(head.out_features, head.in_features))  # what tying does: quantized
    assert not head.weight_int8.any() and not hasattr(head, "weight")
    with pytest.raises(ZooError, match="cannot set the float weight of an int8 projection"):
        head.weight = nn.Parameter(torch.zeros(3, head.in_features))
    with pytest.raises(ZooError, match="cannot set the float weight"):  # not a tied head
        model.transformer.h[0].attn.c_attn.weight = nn.Parameter(torch.zeros(3))
    vocab = model.config.vocab_size
    with pytest.raises(ZooError, match=r"resize_token_embeddings\(130\).*int8.*resize the float model"):
        model.resize_token_embeddings(130)
    assert model.config.vocab_size == vocab and wte.weight.shape[0] == vocab and head.out_features == vocab
    with pytest.raises(AttributeError, match="Int8Linear .* has no float `weight`.*load it without quantization"):
        model.post_init()  # GPT-2's _init_weights draws its Conv1D weights: there are none


def test_post_init_of_an_int8_masked_lm_reties_the_int8_decoder_to_the_new_embeddings(tmp_path):
    make_bert(tmp_path, "masked-lm")
    model = zoo.AutoModelForMaskedLM.from_pretrained(tmp_path, quantization="int8")
    decoder, embeddings = model.cls.predictions.decoder, model.bert.embeddings.word_embeddings
    before = embeddings.weight.detach().clone()
    model.post_init()  # re-initialises the float tensors (as on a fresh model), then ties: the int8 decoder follows
    assert not torch.equal(embeddings.weight, before) and model.cls.predictions.decoder is decoder
    assert_tied_head_is_its_own_int8_copy(decoder, embeddings)
    assert decoder.bias is model.cls.predictions.bias  # the tied bias is tied as before


def test_a_tied_llama_lm_head_is_int8_too(tmp_path):
    make_llama(tmp_path, tie_word_embeddings=True)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8")
    assert_tied_head_is_its_own_int8_copy(model.lm_head, model.model.embed_tokens)


def test_gpt2_conv1d_weights_are_stored_out_in(tmp_path):
    make_gpt2(tmp_path)
    float_model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    model = quantize_int8(copy.deepcopy(float_model))
    conv = float_model.transformer.h[0].mlp.c_fc  # weight (in, out)
    q = model.transformer.h[0].mlp.c_fc
    expected_q, expected_scale = reference_int8(conv.weight.detach().t())
    assert q.weight_int8.shape == (conv.weight.shape[1], conv.weight.shape[0])
    assert torch.equal(q.weight_int8, expected_q) and torch.equal(q.weight_scale, expected_scale)
    assert q.bias is not None and torch.equal(q.bias, conv.bias)


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3"])
@pytest.mark.parametrize("head", ["causal-lm", "sequence-classification"])
def test_llama_family_heads_stay_close_to_the_float_model(tmp_path, model_type, head):
    make_llama(tmp_path, model_type, head, attention_bias=model_type == "llama")
    hf = load_hf(tmp_path, model_type, head)
    auto = zoo.AutoModelForCausalLM if head == "causal-lm" else zoo.AutoModelForSequenceClassification
    model = auto.from_pretrained(tmp_path, quantization="int8")
    _compare(model, hf, llama_batch(), ["logits"])
    if head == "causal-lm":  # untied (the family's default): the output projection is int8 too
        assert "lm_head" in projections(model)


def test_a_bf16_model_quantizes_with_bf16_scales_and_stays_close(tmp_path):
    hf = make_gpt2(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype="bf16", quantization="int8")
    conv = model.transformer.h[0].attn.c_attn
    assert conv.weight_int8.dtype == torch.int8 and conv.weight_scale.dtype == torch.bfloat16
    batch = gpt2_batch()
    with torch.no_grad():
        logits, expected = model(**batch).logits, hf(**batch).logits
    assert logits.dtype == torch.bfloat16
    assert rel_error(logits, expected) < REL_BOUND
    model.to(torch.float32)  # a cast moves the scales, never the int8 weights
    assert conv.weight_int8.dtype == torch.int8 and conv.weight_scale.dtype == torch.float32


# --- generation ------------------------------------------------------------------------------------------------------


def _greedy_agreement(float_model, model, prompt, new_tokens):
    """Greedy ids of the int8 model, and the share of generated positions where the float model chose the same."""
    with torch.no_grad():
        expected = float_model.generate(**prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        got = model.generate(**prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    start = prompt["input_ids"].shape[1]
    assert got.shape == expected.shape and torch.equal(got[:, :start], prompt["input_ids"])
    return got, float((got[:, start:] == expected[:, start:]).float().mean())


def _assert_each_token_is_the_int8_forward_argmax(model, ids, prompt_length, mask=None):
    """What generate chose is what the int8 forward pass ranks first (or ties within bf16 rounding)."""
    with torch.no_grad():
        full_mask = None if mask is None else torch.cat(
            [mask, torch.ones(mask.shape[0], ids.shape[1] - mask.shape[1], dtype=mask.dtype)], dim=1)
        logits = model(input_ids=ids, attention_mask=full_mask).logits.float()  # (B, T, V)
    eos = model.generation_config.eos_token_id
    logits[..., [eos] if isinstance(eos, int) else list(eos or [])] = float("-inf")  # min_new_tokens forbade it
    for t in range(prompt_length, ids.shape[1]):
        scores = logits[:, t - 1]
        chosen = scores.gather(1, ids[:, t:t + 1])[:, 0]
        assert bool((scores.max(dim=1).values - chosen <= 0.02 * scores.abs().max(dim=1).values + 1e-3).all()), t


@pytest.mark.parametrize("kernel", [True, False], ids=["native-step", "forward"])
@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_int8_generates(tmp_path, monkeypatch, tied, kernel):
    """Through the native kernel's int8 step where it is built, else through the forward pass (never through the
    PyTorch step, which reads float weights); each token is what the int8 forward pass ranks first."""
    from zoo import native

    if kernel and not native.available():
        pytest.skip(f"native kernels not in use: {native.status()}")
    make_gpt2(tmp_path, tie_word_embeddings=tied)
    float_model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8")
    assert "lm_head" in projections(model)
    if not kernel:
        monkeypatch.setattr(native, "available", lambda: False)
    steps = []
    original = type(model).decoding_step
    monkeypatch.setattr(type(model), "decoding_step",
                        lambda self, cache: steps.append(original(self, cache)) or steps[-1])
    prompt = {"input_ids": gpt2_batch(batch=1, length=6)["input_ids"]}
    ids, agreement = _greedy_agreement(float_model, model, prompt, 24)
    assert [type(s) for s in steps][-1] is (zoo_gpt2.GPT2NativeDecodingStep if kernel else type(None))
    print(f"gpt2 (tied={tied}) int8 greedy ids agree with float32 on {agreement:.0%} of 24 steps")
    _assert_each_token_is_the_int8_forward_argmax(model, ids, 6)


def test_llama_int8_generates_through_the_forward_pass(tmp_path):
    make_llama(tmp_path)
    float_model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8")
    from zoo.plugins.llama.decoding import native_decoding_step

    assert native_decoding_step(model, model.new_kv_cache(1, 8)) is None  # the kernel reads float weights
    batch = llama_batch(batch=2, length=8, real=(8, 5))
    ids, agreement = _greedy_agreement(float_model, model, batch, 24)
    print(f"llama int8 greedy ids agree with float32 on {agreement:.0%} of 2 x 24 steps")
    _assert_each_token_is_the_int8_forward_argmax(model, ids, 8, batch["attention_mask"])


# --- what an int8 model refuses --------------------------------------------------------------------------------------


def test_save_pretrained_refuses_and_writes_nothing(tmp_path):
    make_gpt2(tmp_path / "float")
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path / "float", quantization="int8")
    with pytest.raises(ZooError, match="save the float model"):
        model.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("value", ["int4", "INT8", 8, True, "fp8"])
def test_an_unknown_quantization_is_refused_before_any_file_is_read(tmp_path, value):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="quantization=.*'int8'.*None"):
        zoo.AutoModelForCausalLM.from_pretrained(missing, quantization=value)
    from zoo.plugins.gpt2.modeling import GPT2LMHeadModel

    with pytest.raises(ConfigError, match="quantization="):
        GPT2LMHeadModel.from_pretrained(missing, quantization=value)


def test_quantization_none_loads_the_float_model(tmp_path):
    make_gpt2(tmp_path)
    model, info = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization=None, output_loading_info=True)
    assert model.quantization is None and not projections(model) and set(info) >= {"missing_keys"}
    model, info = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8", output_loading_info=True)
    assert model.quantization == "int8" and projections(model) and info["missing_keys"] == []
    assert "quantization" not in model.config.to_dict()


@pytest.mark.parametrize("entry", ["auto", "class"])
def test_tensorflow_weights_are_quantized_once_loaded(tmp_path, monkeypatch, entry):
    """from_tf=True goes through zoo/convert/loader.py, which never sees the option: the loaded model is quantized."""
    from zoo.convert import loader
    from zoo.plugins.gpt2.modeling import GPT2LMHeadModel

    make_gpt2(tmp_path)
    seen = {}

    def load_tf_model(cls, identifier, **kwargs):  # stands in for reading tf_model.h5: the same float model
        seen.update(kwargs)
        return GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=kwargs.get("output_loading_info", False))

    monkeypatch.setattr(loader, "load_tf_model", load_tf_model)
    if entry == "auto":
        model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, from_tf=True, quantization="int8")
    else:
        model, _ = GPT2LMHeadModel.from_pretrained(tmp_path, from_tf=True, quantization="int8", output_loading_info=True)
    assert "quantization" not in seen and model.quantization == "int8" and projections(model)


def test_training_is_refused_and_leaves_the_model_in_eval_mode(tmp_path):
    make_bert(tmp_path, "sequence-classification")
    model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path, quantization="int8")
    with pytest.raises(ZooError, match="inference only.*load the float model"):
        model.train()
    assert not any(m.training for m in model.modules())
    model.eval()  # eval stays allowed
    module = next(iter(projections(model).values()))
    with pytest.raises(ZooError, match="inference only"):
        module.train()


def test_gradients_with_respect_to_the_input_still_flow(tmp_path):
    make_gpt2(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, quantization="int8")
    ids = gpt2_batch(batch=1)["input_ids"]
    embeds = model.transformer.wte(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds).logits
    logits[0, -1].max().backward()
    assert embeds.grad is not None and bool(embeds.grad.abs().sum() > 0)
    with torch.no_grad():
        assert rel_error(logits.detach(), model(inputs_embeds=embeds).logits) < 1e-2  # the two paths agree


# --- memory ----------------------------------------------------------------------------------------------------------


def _tensor_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def test_int8_projections_take_a_quarter_of_their_float32_bytes(tmp_path):
    make_gpt2(tmp_path, n_embd=64, n_head=4)
    float_model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    before = {name: _tensor_bytes(float_model.get_submodule(name)) for name in
              [n for n, m in float_model.named_modules() if type(m).__name__ == "GPT2Conv1D"]}
    weights = [weakref.ref(float_model.get_submodule(n).weight) for n in before]
    total_before = _tensor_bytes(float_model)
    model = quantize_int8(float_model)
    gc.collect()
    assert all(w() is None for w in weights)  # each float weight was freed as its int8 copy was made
    after = {name: _tensor_bytes(model.get_submodule(name)) for name in before}
    for name in before:  # int8 weight + float32 scale and bias per output
        module = model.get_submodule(name)
        assert after[name] == module.in_features * module.out_features + 2 * 4 * module.out_features
    ratio = sum(after.values()) / sum(before.values())
    assert 0.25 < ratio < 0.3, ratio
    # the tied lm_head adds its own int8 copy of wte (one byte a value) and a float32 scale a row; wte stays
    head = model.lm_head
    head_bytes = head.in_features * head.out_features + 4 * head.out_features
    assert _tensor_bytes(head) == head_bytes
    assert total_before - _tensor_bytes(model) == sum(before.values()) - sum(after.values()) - head_bytes


def test_quantize_int8_is_idempotent_and_refuses_a_model_without_projections():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    quantize_int8(model)
    first = model[0]
    assert isinstance(first, Int8Linear) and quantize_int8(model)[0] is first
    with pytest.raises(ZooError, match="no projection"):
        quantize_int8(nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4)))


def test_a_module_used_twice_becomes_one_int8_module():
    shared = nn.Linear(16, 16)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    quantize_int8(model)
    assert isinstance(model[0], Int8Linear) and model[0] is model[2]
