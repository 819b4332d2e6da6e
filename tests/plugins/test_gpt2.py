"""The GPT-2 plugin against transformers on the very same files.

Every test writes a small random checkpoint with transformers (fixed seed, configs that exercise the unusual
flags: activation functions, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, scale_attn_weights=False,
n_inner, untied embeddings), loads it with both libraries and compares every head's outputs on a left-padded
batch. Weights are re-drawn at a larger scale than transformers' init (biases and LayerNorm included), so a wrong
or unused tensor shows up in the outputs. The tokenizer is a small byte-level BPE trained here with ``tokenizers``
and saved both as vocab.json + merges.txt and as tokenizer.json, then read by both libraries.

``make_gpt2`` and ``write_tokenizer`` are also used by tests/test_generation.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open

import zoo
from zoo.errors import ConfigError
from zoo.plugins.gpt2 import modeling as zoo_gpt2
from zoo.plugins.gpt2.config import GPT2Config
from tests.checkpoints import assert_outputs_equal

ATOL = RTOL = 1e-5
VOCAB = 120
PAD, EOS = 0, 1

TINY_GPT2 = dict(vocab_size=VOCAB, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=EOS, eos_token_id=EOS)

#: Configs that differ where the code could go wrong.
CONFIGS = {
    "tiny-gelu_new": {},
    "relu-inverse-layer-idx-n_inner": dict(activation_function="relu", scale_attn_by_inverse_layer_idx=True,
                                           n_inner=40, n_layer=3, n_head=2),
    "gelu-reorder-unscaled-untied": dict(activation_function="gelu", reorder_and_upcast_attn=True,
                                         scale_attn_weights=False, tie_word_embeddings=False, n_embd=24, n_head=3,
                                         layer_norm_epsilon=1e-6),
}

HF_GPT2_CLASSES = {
    "base": "GPT2Model",
    "causal-lm": "GPT2LMHeadModel",
    "sequence-classification": "GPT2ForSequenceClassification",
    "token-classification": "GPT2ForTokenClassification",
    "question-answering": "GPT2ForQuestionAnswering",
}
ZOO_CLASSES = {task: getattr(zoo_gpt2, name) for task, name in HF_GPT2_CLASSES.items()}


def make_gpt2(folder: Path, task: str = "causal-lm", seed: int = 0, scale: float = 0.2, attn_implementation: str = "sdpa",
              **overrides) -> transformers.PreTrainedModel:
    """Save a transformers GPT-2 for ``task`` with every tensor re-drawn (seeded); return transformers' reload (eval)."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**{**TINY_GPT2, **overrides})
    hf = getattr(transformers, HF_GPT2_CLASSES[task])(config)
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in hf.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(1 + noise if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else noise)
    hf.save_pretrained(folder)
    return type(hf).from_pretrained(folder, attn_implementation=attn_implementation).eval()


def make_batch(seed: int = 0, batch: int = 3, length: int = 9, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """input_ids, left-padded with PAD to different lengths, and their attention_mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row, n in enumerate([length, length - 3, 2][:batch]):
        mask[row, : length - n] = 0
    ids[mask == 0] = PAD
    return {"input_ids": ids, "attention_mask": mask}


MAIN_KEYS = {
    "base": ["last_hidden_state", "hidden_states"],
    "causal-lm": ["logits", "hidden_states"],
    "sequence-classification": ["logits", "hidden_states"],
    "token-classification": ["logits", "hidden_states"],
    "question-answering": ["start_logits", "end_logits", "hidden_states"],
}


# --- every head, every config --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("task", list(HF_GPT2_CLASSES))
def test_every_head_matches_transformers(tmp_path, task, config_name):
    overrides = {**CONFIGS[config_name], "pad_token_id": PAD}
    hf = make_gpt2(tmp_path, task, **overrides)
    model = ZOO_CLASSES[task].from_pretrained(tmp_path)
    assert not model.training
    batch = make_batch()
    with torch.no_grad():
        expected = hf(**batch, output_hidden_states=True)
        got = model(**batch, output_hidden_states=True)
    assert_outputs_equal(got, expected, MAIN_KEYS[task])
    assert len(got.hidden_states) == hf.config.n_layer + 1


@pytest.mark.parametrize("config_name", CONFIGS)
def test_attention_weights_match_transformers_eager(tmp_path, config_name):
    """output_attentions spells the weights out (the reorder_and_upcast path included) as transformers' eager does."""
    hf = make_gpt2(tmp_path, "base", attn_implementation="eager", **CONFIGS[config_name])
    model = zoo_gpt2.GPT2Model.from_pretrained(tmp_path)
    ids = make_batch()["input_ids"][:1]
    with torch.no_grad():
        expected = hf(ids, output_attentions=True)
        got = model(ids, output_attentions=True)
    assert_outputs_equal(got, expected, ["last_hidden_state", "attentions"])
    assert got.attentions[0].shape == (1, hf.config.n_head, 9, 9)


def test_reorder_and_upcast_attn_in_bfloat16_matches_transformers_eager(tmp_path):
    """In half precision the flag computes scores and softmax in float32, as transformers' eager path does."""
    make_gpt2(tmp_path, "causal-lm", **CONFIGS["gelu-reorder-unscaled-untied"])
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager", dtype=torch.bfloat16).eval()
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    batch = make_batch()
    with torch.no_grad():
        expected, got = hf(**batch).logits, model(**batch).logits
    assert got.dtype == torch.bfloat16
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real].float(), expected[real].float(), atol=0.05, rtol=0.02)


def test_left_padding_does_not_change_the_real_tokens(tmp_path):
    """With generation's positions (counting real tokens only), a left-padded row equals the prompt alone."""
    make_gpt2(tmp_path, "causal-lm")
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path)
    batch = make_batch()
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    n = int(mask[1].sum())
    with torch.no_grad():
        padded = model(**batch, position_ids=positions).logits
        alone = model(batch["input_ids"][1:2, -n:]).logits
    torch.testing.assert_close(padded[1, -n:], alone[0], atol=ATOL, rtol=RTOL)


def test_kv_cache_continuation_equals_one_forward_pass(tmp_path):
    make_gpt2(tmp_path, "causal-lm", **CONFIGS["relu-inverse-layer-idx-n_inner"])
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path)
    ids = make_batch(batch=2, length=10)["input_ids"][:1]
    with torch.no_grad():
        full = model(ids).logits
        first = model(ids[:, :4], use_cache=True)
        cache = first.past_key_values
        assert cache.length == 4
        pieces = [first.logits]
        for start, end in ((4, 7), (7, 8), (8, 10)):  # a chunk, a single token, a chunk: the cache grows past capacity
            pieces.append(model(ids[:, start:end], past_key_values=cache, use_cache=True).logits)
    assert cache.length == 10
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=RTOL)


def test_inputs_embeds_token_type_ids_and_position_ids_match_transformers(tmp_path):
    hf = make_gpt2(tmp_path, "causal-lm")
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path)
    batch = make_batch()
    embeds = torch.randn(3, 9, 32, generator=torch.Generator().manual_seed(3))
    types = torch.randint(0, 3, (3, 9), generator=torch.Generator().manual_seed(4))
    positions = torch.arange(9).flip(0).expand(3, 9)
    with torch.no_grad():
        assert_outputs_equal(model(inputs_embeds=embeds), hf(inputs_embeds=embeds), ["logits"])
        assert_outputs_equal(model(**batch, token_type_ids=types), hf(**batch, token_type_ids=types), ["logits"])
        assert_outputs_equal(model(**batch, position_ids=positions), hf(**batch, position_ids=positions), ["logits"])
        assert_outputs_equal(model(**batch, logits_to_keep=2), hf(**batch, logits_to_keep=2), ["logits"])


# --- losses --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", ["tiny-gelu_new", "gelu-reorder-unscaled-untied"])
def test_causal_lm_loss_and_gradients_match(tmp_path, config_name):
    hf = make_gpt2(tmp_path, "causal-lm", **CONFIGS[config_name])
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path)
    batch = make_batch()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    got = model(**batch, labels=labels)
    expected = hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, ["loss", "logits"])
    got.loss.backward()
    expected.loss.backward()
    for name in ("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.bias",
                 "lm_head.weight"):
        torch.testing.assert_close(model.get_parameter(name).grad, hf.get_parameter(name).grad, atol=ATOL, rtol=RTOL,
                                   msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize(("num_labels", "labels"), [
    (3, torch.tensor([0, 2, 1])),
    (1, torch.tensor([0.5, -1.0, 2.0])),
    (4, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])),
], ids=["single-label", "regression", "multi-label"])
def test_sequence_classification_uses_last_real_token_and_loss(tmp_path, num_labels, labels):
    hf = make_gpt2(tmp_path, "sequence-classification", num_labels=num_labels, pad_token_id=PAD)
    model = zoo_gpt2.GPT2ForSequenceClassification.from_pretrained(tmp_path)
    batch = make_batch()
    right = {k: torch.stack([r.roll(-int((m == 0).sum())) for r, m in zip(v, batch["attention_mask"])])
             for k, v in batch.items()}  # the same rows, right-padded
    with torch.no_grad():
        for inputs in (batch, right):
            got = model(**inputs, labels=labels)
            expected = hf(**inputs, labels=labels)
            assert_outputs_equal(got, expected, ["loss", "logits"])
            assert got.logits.shape == (3, num_labels)


def test_sequence_classification_without_pad_token_takes_batches_of_one(tmp_path):
    hf = make_gpt2(tmp_path, "sequence-classification", num_labels=2)
    model = zoo_gpt2.GPT2ForSequenceClassification.from_pretrained(tmp_path)
    ids = make_batch()["input_ids"]
    with torch.no_grad():
        assert_outputs_equal(model(ids[:1]), hf(ids[:1]), ["logits"])
    with pytest.raises(ValueError, match="batch of 3 without config.pad_token_id.*set pad_token_id"):
        model(ids)


def test_token_classification_and_question_answering_losses(tmp_path):
    batch = make_batch()
    hf = make_gpt2(tmp_path / "tok", "token-classification", num_labels=5)
    model = zoo_gpt2.GPT2ForTokenClassification.from_pretrained(tmp_path / "tok")
    labels = torch.randint(0, 5, (3, 9), generator=torch.Generator().manual_seed(1))
    labels = labels.masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        assert_outputs_equal(model(**batch, labels=labels), hf(**batch, labels=labels), ["loss", "logits"])
    hf = make_gpt2(tmp_path / "qa", "question-answering")
    model = zoo_gpt2.GPT2ForQuestionAnswering.from_pretrained(tmp_path / "qa")
    start, end = torch.tensor([3, 5, 50]), torch.tensor([4, 8, 60])
    with torch.no_grad():
        assert_outputs_equal(model(**batch, start_positions=start, end_positions=end),
                             hf(**batch, start_positions=start, end_positions=end), ["loss", "start_logits", "end_logits"])


# --- files: the published layout, both ways ------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", ["tiny-gelu_new", "gelu-reorder-unscaled-untied"])
def test_save_pretrained_writes_what_transformers_writes_and_reads(tmp_path, config_name):
    hf = make_gpt2(tmp_path / "hf", "causal-lm", **CONFIGS[config_name])
    model = zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "zoo")
    with safe_open(str(tmp_path / "hf" / "model.safetensors"), "pt") as theirs, \
            safe_open(str(tmp_path / "zoo" / "model.safetensors"), "pt") as ours:
        assert set(ours.keys()) == set(theirs.keys())
        for key in theirs.keys():  # Conv1D weights stay (in, out), the tied lm_head is left out like transformers does
            torch.testing.assert_close(ours.get_tensor(key), theirs.get_tensor(key), atol=0, rtol=0)
    assert model.transformer.h[0].attn.c_attn.weight.shape == (hf.config.n_embd, 3 * hf.config.n_embd)
    again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "zoo").eval()
    batch = make_batch()
    with torch.no_grad():
        assert_outputs_equal(model(**batch), again(**batch), ["logits"])
    assert zoo_gpt2.GPT2LMHeadModel.from_pretrained(tmp_path / "zoo").config == model.config


def test_openai_style_checkpoint_without_prefix_and_with_mask_buffers_loads_quietly(tmp_path, caplog_warnings):
    """The OpenAI repos publish the bare model's keys (``h.0.attn.c_attn.weight``) plus the old causal-mask buffers
    ``h.N.attn.bias`` / ``masked_bias``; loading them under the LM head ties lm_head to wte and warns about nothing."""
    from safetensors.torch import save_file

    hf = make_gpt2(tmp_path / "lm", "causal-lm")
    state = {k.removeprefix("transformer."): v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    for i in range(hf.config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.ones(1, 1, 48, 48).tril()
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    folder = tmp_path / "openai"
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    hf.config.save_pretrained(folder)
    model = zoo.AutoModelForCausalLM.from_pretrained(folder)
    assert not [r for r in caplog_warnings.records if r.name.startswith("zoo")], caplog_warnings.text
    assert model.lm_head.weight is model.transformer.wte.weight
    batch = make_batch()
    with torch.no_grad():
        assert_outputs_equal(model(**batch), hf(**batch), ["logits"])


def test_from_config_initialises_like_transformers():
    config = GPT2Config(**{**TINY_GPT2, "n_layer": 8})
    model = zoo_gpt2.GPT2LMHeadModel.from_config(config)
    assert model.lm_head.weight is model.transformer.wte.weight
    c_proj, c_fc = model.transformer.h[0].attn.c_proj, model.transformer.h[0].mlp.c_fc
    assert abs(float(c_fc.weight.detach().std()) - 0.02) < 0.003
    assert abs(float(c_proj.weight.detach().std()) - 0.02 / 4) < 0.001  # residual projections: 0.02 / sqrt(2 * n_layer)
    assert float(c_proj.bias.detach().abs().max()) == 0.0


# --- config --------------------------------------------------------------------------------------------------------------


def test_config_round_trips_with_transformers(tmp_path):
    hf_config = transformers.GPT2Config(n_embd=48, n_head=6, n_inner=100, activation_function="relu",
                                        scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True,
                                        scale_attn_weights=False, tie_word_embeddings=False, pad_token_id=3, num_labels=4)
    hf_config.save_pretrained(tmp_path / "hf")
    config = zoo.AutoConfig.from_pretrained(tmp_path / "hf")
    assert isinstance(config, GPT2Config)
    for key in ("n_embd", "n_head", "n_inner", "activation_function", "scale_attn_by_inverse_layer_idx",
                "reorder_and_upcast_attn", "scale_attn_weights", "tie_word_embeddings", "pad_token_id", "num_labels",
                "hidden_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings"):
        assert getattr(config, key) == getattr(hf_config, key), key
    config.save_pretrained(tmp_path / "zoo")
    written = json.loads((tmp_path / "zoo" / "config.json").read_text())
    assert "hidden_size" not in written and written["n_embd"] == 48  # aliases are never written
    again = transformers.GPT2Config.from_pretrained(tmp_path / "zoo")
    for key, value in hf_config.to_diff_dict().items():
        if key != "transformers_version":
            assert again.to_diff_dict().get(key) == value, key


def test_config_defaults_and_aliases():
    ours, theirs = GPT2Config(), transformers.GPT2Config()
    for key in GPT2Config.fields():
        if hasattr(theirs, key) and key not in ("id2label", "label2id"):
            assert getattr(ours, key) == getattr(theirs, key), key
    config = GPT2Config(hidden_size=64, num_attention_heads=8, num_hidden_layers=3, max_position_embeddings=128)
    assert (config.n_embd, config.n_head, config.n_layer, config.n_positions) == (64, 8, 3, 128)
    config.hidden_size = 96
    assert config.n_embd == 96 and config.inner_size == 384


@pytest.mark.parametrize(("fields", "message"), [
    (dict(n_embd=30, n_head=4), r"'n_embd' is 30, which is not a multiple of n_head \(4\)"),
    (dict(activation_function="gelu_42"), "'activation_function' is 'gelu_42'; allowed: one of 'gelu'"),
    (dict(add_cross_attention=True), "cross-attention"),
    (dict(n_layer="2"), "n_layer"),
    (dict(hidden_size=64, n_embd=32), "both hidden_size=64 and n_embd=32"),
])
def test_config_refuses_what_the_model_cannot_build(fields, message):
    with pytest.raises(ConfigError, match=message):
        GPT2Config(**fields)


def test_auto_classes_resolve_gpt2(tmp_path):
    make_gpt2(tmp_path, "causal-lm")
    for auto, cls in ((zoo.AutoModel, zoo_gpt2.GPT2Model), (zoo.AutoModelForCausalLM, zoo_gpt2.GPT2LMHeadModel),
                      (zoo.AutoModelForSequenceClassification, zoo_gpt2.GPT2ForSequenceClassification),
                      (zoo.AutoModelForTokenClassification, zoo_gpt2.GPT2ForTokenClassification),
                      (zoo.AutoModelForQuestionAnswering, zoo_gpt2.GPT2ForQuestionAnswering)):
        assert type(auto.from_pretrained(tmp_path)) is cls


# --- tokenizer -----------------------------------------------------------------------------------------------------------

#: Byte-level edge cases: whitespace runs, emoji (with modifiers and ZWJ), CJK, accents, control characters,
#: the special token inside text, empty text.
TRICKY_TEXTS = [
    "Hello world! Hello, world.",
    "  leading and trailing spaces   ",
    "tabs\t\tand\nnew\n\nlines\r\n and   runs     of spaces",
    "emoji 😀 👍🏽 👩‍💻 ❤️ done",
    "中文字符和日本語のテキスト、한국어",
    "café naïve über ﬁ résumé",
    "control \x00\x01\x07\x1b[0m\x7f chars \u200b zero-width",
    "special <|endoftext|> in the middle<|endoftext|>",
    "numbers 1234567 and 3.14159, symbols @#$%^&*()_+{}|:\"<>?",
    "",
]

CORPUS = TRICKY_TEXTS[:-1] * 3 + [
    "The quick brown fox jumps over the lazy dog.",
    "GPT-2 is a byte-level BPE model: every byte sequence can be encoded.",
    "你好，世界！这是一个测试。", "😀😀😀 🎉🎉", "def f(x):\n    return x * 2\n",
]


def write_tokenizer(folder: Path, as_json: bool, **config: object) -> None:
    """A byte-level BPE trained on CORPUS: vocab.json + merges.txt, or tokenizer.json; plus a gpt2 config.json."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    folder.mkdir(parents=True, exist_ok=True)
    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(CORPUS, trainer)
    if as_json:
        backend.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer", **config}))
    else:
        backend.model.save(str(folder))
        if config:
            (folder / "tokenizer_config.json").write_text(json.dumps(config))
    eos = backend.token_to_id("<|endoftext|>")
    transformers.GPT2Config(vocab_size=backend.get_vocab_size(), bos_token_id=eos, eos_token_id=eos).save_pretrained(folder)


@pytest.fixture(scope="module", params=["vocab-merges", "tokenizer-json"])
def tokenizer_dir(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    write_tokenizer(folder, as_json=request.param == "tokenizer-json")
    return folder


def hf_tokenizer(folder: Path, **kwargs):
    if (folder / "tokenizer.json").exists():
        return transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
    return transformers.GPT2Tokenizer.from_pretrained(folder, **kwargs)


def test_tokenizer_ids_offsets_and_decode_match_transformers(tokenizer_dir):
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tokenizer_dir), hf_tokenizer(tokenizer_dir)
    assert ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.eos_token == theirs.eos_token == "<|endoftext|>" and ours.eos_token_id == theirs.eos_token_id
    for text in TRICKY_TEXTS:
        got, expected = ours(text, return_offsets_mapping=True), theirs(text, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"], text
        assert got["offset_mapping"] == [tuple(o) for o in expected["offset_mapping"]], text
        assert set(got) == {"input_ids", "attention_mask", "offset_mapping"}
        assert ours.tokenize(text) == theirs.tokenize(text), text
        for skip in (False, True):
            assert ours.decode(got["input_ids"], skip_special_tokens=skip) == theirs.decode(
                expected["input_ids"], skip_special_tokens=skip), text
        if "<|endoftext|>" not in text:
            assert ours.decode(got["input_ids"]) == text  # byte-level BPE is lossless


def test_tokenizer_decodes_partial_characters_like_transformers(tokenizer_dir):
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tokenizer_dir), hf_tokenizer(tokenizer_dir)
    ids = ours.encode("😀中")
    for cut in range(1, len(ids)):
        assert ours.decode(ids[:cut]) == theirs.decode(ids[:cut])  # split UTF-8 sequences become U+FFFD in both


def test_tokenizer_left_padding_for_generation(tokenizer_dir):
    options = dict(pad_token="<|endoftext|>", padding_side="left")
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tokenizer_dir, **options), hf_tokenizer(tokenizer_dir, **options)
    texts = ["a short one", "and a somewhat longer prompt with 😀", "中文"]
    got, expected = ours(texts, padding=True, return_tensors="pt"), theirs(texts, padding=True, return_tensors="pt")
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(got[key], expected[key]), key
    assert got["attention_mask"][:, -1].all() and not got["attention_mask"][:, 0].all()  # padding on the left
    assert ours.batch_decode(got["input_ids"], skip_special_tokens=True) == texts


@pytest.mark.parametrize("options", [{"add_prefix_space": True}, {"add_bos_token": True}],
                         ids=["add_prefix_space", "add_bos_token"])
def test_tokenizer_options_match_transformers(tokenizer_dir, options):
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tokenizer_dir, **options), hf_tokenizer(tokenizer_dir, **options)
    for text in TRICKY_TEXTS[:4]:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text


def test_tokenizer_options_from_tokenizer_config(tmp_path):
    write_tokenizer(tmp_path, as_json=False, add_bos_token=True, add_prefix_space=True)
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tmp_path), hf_tokenizer(tmp_path)
    assert ours("Hello world")["input_ids"] == theirs("Hello world")["input_ids"]
    assert ours("Hello world")["input_ids"][0] == ours.bos_token_id


def test_tokenizer_save_pretrained_is_read_by_transformers(tokenizer_dir, tmp_path):
    ours = zoo.AutoTokenizer.from_pretrained(tokenizer_dir)
    ours.save_pretrained(tmp_path)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for text in TRICKY_TEXTS:
        assert theirs(text)["input_ids"] == ours(text)["input_ids"], text


def test_tokenizer_without_files_is_a_clear_error(tmp_path):
    transformers.GPT2Config().save_pretrained(tmp_path)
    with pytest.raises(zoo.errors.TokenizerError, match="neither tokenizer.json nor vocab.json \\+ merges.txt"):
        zoo.AutoTokenizer.from_pretrained(tmp_path)
