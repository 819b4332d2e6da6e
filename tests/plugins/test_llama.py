"""The Llama-family plugin (llama, mistral, qwen2, qwen3) against transformers on the very same files.

Each test writes a small random checkpoint with transformers (tests/plugins/llama_checkpoints.py: fixed seed, every
tensor re-drawn), loads it with both libraries and compares outputs on a left-padded batch: every head of every
family, and configs that exercise the unusual flags: GQA ratios 1, 2 and 8, every rope_type, head_dim other than
hidden / heads, tied and untied embeddings, attention / MLP biases (Llama), q/k/v biases (Qwen2), q/k norm (Qwen3),
sliding windows shorter than the prompt (Mistral; Qwen2 and Qwen3 with use_sliding_window and max_window_layers).
Logits agree within 1e-5 in float32; greedy and beam-search ids are equal.

None of these four transformers families applies ``partial_rotary_factor`` (their default rope ignores it and their
``apply_rotary_pos_emb`` rotates whole heads): one config here names a factor and checks zoo ignores it alike;
partial rotary itself is tested at the layer level (tests/layers/test_attention.py, tests/layers/test_rotary.py).
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors import safe_open

import zoo
from tests.checkpoints import assert_outputs_equal
from tests.plugins.llama_checkpoints import EOS, PAD, TINY, VOCAB, hf_class, load_hf, make_batch, make_llama
from zoo.errors import ConfigError
from zoo.plugins.llama import config as zoo_config
from zoo.plugins.llama import modeling as zoo_llama

ATOL = RTOL = 1e-5

HEADS = ("base", "causal-lm", "sequence-classification", "token-classification", "question-answering")
MAIN_KEYS = {
    "base": ["last_hidden_state", "hidden_states"],
    "causal-lm": ["logits", "hidden_states"],
    "sequence-classification": ["logits", "hidden_states"],
    "token-classification": ["logits", "hidden_states"],
    "question-answering": ["start_logits", "end_logits", "hidden_states"],
}
PREFIX = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
SUFFIX = {"base": "Model", "causal-lm": "ForCausalLM", "sequence-classification": "ForSequenceClassification",
          "token-classification": "ForTokenClassification", "question-answering": "ForQuestionAnswering"}


def zoo_class(model_type: str, head: str) -> type:
    return getattr(zoo_llama, PREFIX[model_type] + SUFFIX[head])


HALF = TINY["hidden_size"] // TINY["num_attention_heads"] // 2  # rotary frequencies of a head of 8
#: (model_type, config overrides): each differs from the others where the code could go wrong. The batch is 12
#: tokens, so every window here is shorter than the prompt.
CONFIGS = {
    "llama-gqa2": ("llama", {}),
    "llama-mha-biases-tied": ("llama", dict(num_key_value_heads=4, attention_bias=True, mlp_bias=True,
                                            tie_word_embeddings=True, hidden_act="gelu")),
    "llama-gqa8-head_dim16": ("llama", dict(num_attention_heads=8, num_key_value_heads=1, head_dim=16,
                                            num_hidden_layers=3, rms_norm_eps=1e-5)),
    "llama-rope-linear": ("llama", dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0})),
    # max_position_embeddings 8 < 12 tokens: the base grows with the prompt
    "llama-rope-dynamic": ("llama", dict(max_position_embeddings=8,
                                         rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4})),
    "llama-rope-llama3": ("llama", dict(rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8,
                                                         "rope_theta": 500.0})),
    "llama-rope-yarn": ("llama", dict(rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4,
                                                       "original_max_position_embeddings": 16})),
    # 12 tokens > original 8: the long factors
    "llama-rope-longrope": ("llama", dict(rope_parameters={
        "rope_type": "longrope", "rope_theta": 1e4, "original_max_position_embeddings": 8,
        "short_factor": [1.0 + i / 4 for i in range(HALF)], "long_factor": [2.0 + i for i in range(HALF)]})),
    # a config that names a partial factor: these families' plain RoPE still turns whole heads (as transformers')
    "llama-partial-factor-ignored": ("llama", dict(partial_rotary_factor=0.5)),
    "mistral-window4": ("mistral", dict(sliding_window=4)),
    "mistral-no-window-tied": ("mistral", dict(sliding_window=None, num_key_value_heads=4, tie_word_embeddings=True)),
    # layer 0 attends to everything, layers 1 and 2 through a window of 5
    "qwen2-window5-from-layer1": ("qwen2", dict(use_sliding_window=True, sliding_window=5, max_window_layers=1,
                                                num_hidden_layers=3, tie_word_embeddings=True)),
    "qwen2-gqa4": ("qwen2", dict(num_key_value_heads=1)),
    "qwen3-head_dim16-bias": ("qwen3", dict(head_dim=16, attention_bias=True)),
    "qwen3-window3-mqa": ("qwen3", dict(head_dim=8, num_key_value_heads=1, use_sliding_window=True, sliding_window=3,
                                        max_window_layers=0)),
}
#: one config per model_type, on which every head is compared
PER_TYPE = {"llama": "llama-gqa2", "mistral": "mistral-window4", "qwen2": "qwen2-window5-from-layer1",
            "qwen3": "qwen3-head_dim16-bias"}


def both(tmp_path, name: str, head: str = "causal-lm", **extra):
    model_type, overrides = CONFIGS[name]
    folder = make_llama(tmp_path, model_type, head, **{**overrides, **extra})
    hf = load_hf(folder, model_type, head)
    model, info = zoo_class(model_type, head).from_pretrained(folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}  # every key, by its own name
    return hf, model


# --- every head, every family; every config ------------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("model_type", list(PER_TYPE))
def test_every_head_of_every_family_matches_transformers(tmp_path, model_type, head):
    hf, model = both(tmp_path, PER_TYPE[model_type], head, num_labels=3)
    assert not model.training
    batch = make_batch()
    with torch.no_grad():
        expected = hf(**batch, output_hidden_states=True)
        got = model(**batch, output_hidden_states=True)
    assert_outputs_equal(got, expected, MAIN_KEYS[head])
    assert len(got.hidden_states) == hf.config.num_hidden_layers + 1


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("model_type", list(PER_TYPE))
def test_every_head_of_every_family_matches_transformers_in_bfloat16(tmp_path, model_type, head):
    """The bound and why: see test_bfloat16_matches_transformers (measured: bit-identical)."""
    model_type, overrides = CONFIGS[PER_TYPE[model_type]]
    folder = make_llama(tmp_path, model_type, head, num_labels=3, **overrides)
    hf = load_hf(folder, model_type, head, dtype=torch.bfloat16)
    model = zoo_class(model_type, head).from_pretrained(folder, dtype=torch.bfloat16)
    batch = make_batch()
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected, got = hf(**batch), model(**batch)
    for key in MAIN_KEYS[head][:-1]:  # the head's outputs (not hidden_states)
        ours, theirs = getattr(got, key), expected[key]
        assert ours.dtype == torch.bfloat16
        if head != "sequence-classification":  # per token: the real ones
            ours, theirs = ours[real], theirs[real]
        torch.testing.assert_close(ours.float(), theirs.float(), atol=2**-6, rtol=2**-8, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", CONFIGS)
def test_causal_lm_logits_match_transformers_for_every_config(tmp_path, name):
    hf, model = both(tmp_path, name)
    batch = make_batch()
    with torch.no_grad():
        assert_outputs_equal(model(**batch), hf(**batch), ["logits"])
        one = {k: v[:1] for k, v in batch.items()}  # no padding: SDPA's causal flag, no mask tensor
        assert_outputs_equal(model(**one), hf(**one), ["logits"])
    if hf.config.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    else:
        assert model.lm_head.weight is not model.model.embed_tokens.weight


@pytest.mark.parametrize("name", ["llama-gqa8-head_dim16", "mistral-window4", "qwen3-window3-mqa"])
def test_attention_weights_match_transformers_eager(tmp_path, name):
    model_type, overrides = CONFIGS[name]
    folder = make_llama(tmp_path, model_type, "base", **overrides)
    hf = load_hf(folder, model_type, "base", attn_implementation="eager")
    model = zoo_class(model_type, "base").from_pretrained(folder)
    batch = make_batch()
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected = hf(**batch, output_attentions=True)
        got = model(**batch, output_attentions=True)
    assert len(got.attentions) == len(expected.attentions) == hf.config.num_hidden_layers
    for ours, theirs in zip(got.attentions, expected.attentions):
        assert ours.shape == (3, hf.config.num_attention_heads, 12, 12)
        # rows of padding queries see nothing; eager spreads them evenly, as zoo's explicit path does
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(got.last_hidden_state[real], expected.last_hidden_state[real], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", CONFIGS)
def test_bfloat16_matches_transformers(tmp_path, name):
    """Both loaded in bfloat16. zoo runs transformers' ops in transformers' order and dtypes (RMSNorm statistics
    and softmax in float32, rotary tables in float32 then cast, the normalised vector cast before the weight
    multiplies it), and on CPU the logits come out bit-identical for every config here (measured). The bound is one
    bf16 step of logits of magnitude 2-4 (2^-6) plus one relative step (2^-8), room for a kernel that sums in another
    order elsewhere. For scale: the same models in float32 differ from their bf16 selves by 0.05-0.13, so a model
    that rounds in other places than transformers' drifts past the bound."""
    model_type, overrides = CONFIGS[name]
    folder = make_llama(tmp_path, model_type, "causal-lm", **overrides)
    hf = load_hf(folder, model_type, "causal-lm", dtype=torch.bfloat16)
    model = zoo_class(model_type, "causal-lm").from_pretrained(folder, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32  # as transformers keeps it
    batch = make_batch()
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected, got = hf(**batch).logits, model(**batch).logits
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got[real].float(), expected[real].float(), atol=2**-6, rtol=2**-8)


# --- positions, cache, windows ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama-rope-yarn", "mistral-window4", "qwen2-window5-from-layer1"])
def test_kv_cache_continuation_equals_one_forward_pass(tmp_path, name):
    """Chunks, single tokens and chunks again through one cache, past the window and past the capacity. (Not for
    dynamic rope: its frequencies follow the longest position seen, so keys cached earlier were rotated by others,
    in transformers too.)"""
    hf, model = both(tmp_path, name)
    ids = make_batch(batch=1, length=14)["input_ids"]
    with torch.no_grad():
        full = model(ids).logits
        first = model(ids[:, :4], use_cache=True)
        cache = first.past_key_values
        assert cache.length == 4 and cache.keys[0].shape[1] == hf.config.num_key_value_heads
        pieces = [first.logits]
        for start, end in ((4, 7), (7, 8), (8, 9), (9, 14)):
            pieces.append(model(ids[:, start:end], past_key_values=cache).logits)
        assert cache.length == 14
        torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=RTOL)
        assert_outputs_equal(model(ids), hf(ids), ["logits"])


def test_inputs_embeds_position_ids_and_logits_to_keep_match_transformers(tmp_path):
    hf, model = both(tmp_path, "qwen2-window5-from-layer1")
    batch = make_batch()
    embeds = torch.randn(3, 12, TINY["hidden_size"], generator=torch.Generator().manual_seed(3))
    positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        assert_outputs_equal(model(inputs_embeds=embeds), hf(inputs_embeds=embeds), ["logits"])
        assert_outputs_equal(model(**batch, position_ids=positions), hf(**batch, position_ids=positions), ["logits"])
        kept = model(**batch, logits_to_keep=2)
        assert kept.logits.shape == (3, 2, VOCAB)
        assert_outputs_equal(kept, hf(**batch, logits_to_keep=2), ["logits"])


def test_left_padding_with_generate_positions_equals_the_prompt_alone(tmp_path):
    """With positions counting real tokens only (as generate gives them), a left-padded row equals its prompt alone,
    the sliding window included (it counts cache positions, so padding only delays it)."""
    _, model = both(tmp_path, "llama-gqa2")
    batch = make_batch()
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    n = int(mask[1].sum())
    with torch.no_grad():
        padded = model(**batch, position_ids=positions).logits
        alone = model(batch["input_ids"][1:2, -n:]).logits
    torch.testing.assert_close(padded[1, -n:], alone[0], atol=ATOL, rtol=RTOL)


# --- generate ----------------------------------------------------------------------------------------------------------


def hf_generate(hf, batch, **options):
    with torch.no_grad():
        return hf.generate(**batch, do_sample=False, **options)


@pytest.mark.parametrize("num_beams", [1, 3], ids=["greedy", "beam3"])
@pytest.mark.parametrize("name", ["llama-gqa8-head_dim16", "mistral-window4", "qwen2-window5-from-layer1",
                                  "qwen3-window3-mqa", "llama-rope-llama3"])
def test_generate_matches_transformers_batched_left_padded(tmp_path, name, num_beams):
    """Windows of 3-5 over prompts of 9 and 10 new tokens, so every step slides."""
    model_type, overrides = CONFIGS[name]
    folder = make_llama(tmp_path, model_type, "causal-lm", scale=0.5, **overrides)
    hf = load_hf(folder, model_type, "causal-lm")
    model = zoo_class(model_type, "causal-lm").from_pretrained(folder)
    batch = make_batch(length=9, real=(9, 6, 3))
    options = dict(max_new_tokens=10, num_beams=num_beams, pad_token_id=PAD, eos_token_id=EOS)
    expected = hf_generate(hf, batch, **options)
    got = model.generate(**batch, **options)
    assert torch.equal(got, expected), (got, expected)
    assert got.shape[1] > 9 + 5  # random weights rarely say EOS: the window is exercised well past the prompt
    alone = {k: v[:1] for k, v in batch.items()}  # no padding: no mask at all until the window needs one
    assert torch.equal(model.generate(**alone, **options), hf_generate(hf, alone, **options))


# --- losses ------------------------------------------------------------------------------------------------------------


def test_causal_lm_loss_and_gradients_match(tmp_path):
    hf, model = both(tmp_path, "qwen3-head_dim16-bias")
    batch = make_batch()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    got, expected = model(**batch, labels=labels), hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, ["loss", "logits"])
    got.loss.backward()
    expected.loss.backward()
    for name in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_norm.weight",
                 "model.layers.1.self_attn.k_proj.bias", "model.layers.1.mlp.down_proj.weight", "lm_head.weight"):
        torch.testing.assert_close(model.get_parameter(name).grad, hf.get_parameter(name).grad, atol=ATOL, rtol=RTOL,
                                   msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize(("num_labels", "labels"), [
    (3, torch.tensor([0, 2, 1])),
    (1, torch.tensor([0.5, -1.0, 2.0])),
    (4, torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])),
], ids=["single-label", "regression", "multi-label"])
def test_sequence_classification_uses_last_real_token_and_loss(tmp_path, num_labels, labels):
    hf, model = both(tmp_path, "mistral-window4", "sequence-classification", num_labels=num_labels)
    batch = make_batch()
    right = {k: torch.stack([r.roll(-int((m == 0).sum())) for r, m in zip(v, batch["attention_mask"])])
             for k, v in batch.items()}  # the same rows, right-padded
    with torch.no_grad():
        for inputs in (batch, right):
            got, expected = model(**inputs, labels=labels), hf(**inputs, labels=labels)
            assert_outputs_equal(got, expected, ["loss", "logits"])
            assert got.logits.shape == (3, num_labels)


def test_sequence_classification_without_pad_token_takes_batches_of_one(tmp_path):
    hf, model = both(tmp_path, "llama-gqa2", "sequence-classification", pad_token_id=None)
    ids = make_batch()["input_ids"]
    with torch.no_grad():
        assert_outputs_equal(model(ids[:1]), hf(ids[:1]), ["logits"])
    with pytest.raises(ValueError, match="batch of 3 without config.pad_token_id.*set pad_token_id"):
        model(ids)


def test_token_classification_and_question_answering_losses(tmp_path):
    batch = make_batch()
    hf, model = both(tmp_path / "tok", "qwen2-gqa4", "token-classification", num_labels=5)
    labels = torch.randint(0, 5, (3, 12), generator=torch.Generator().manual_seed(1))
    labels = labels.masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        assert_outputs_equal(model(**batch, labels=labels), hf(**batch, labels=labels), ["loss", "logits"])
    hf, model = both(tmp_path / "qa", "llama-gqa2", "question-answering")
    start, end = torch.tensor([3, 5, 50]), torch.tensor([4, 8, 60])
    with torch.no_grad():
        assert_outputs_equal(model(**batch, start_positions=start, end_positions=end),
                             hf(**batch, start_positions=start, end_positions=end),
                             ["loss", "start_logits", "end_logits"])


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tmp_path):
    _, model = both(tmp_path, "mistral-window4")
    batch = make_batch()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model.train()  # attention_dropout is 0: training changes nothing but the cache and the checkpointing
    plain = model(**batch, labels=labels)
    plain.loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    checkpointed = model(**batch, labels=labels)
    assert checkpointed.past_key_values is None  # no cache written twice
    checkpointed.loss.backward()
    torch.testing.assert_close(checkpointed.loss, plain.loss, atol=ATOL, rtol=RTOL)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")


# --- files -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama-mha-biases-tied", "qwen2-window5-from-layer1", "qwen3-window3-mqa"])
def test_auto_loading_and_save_pretrained_both_ways(tmp_path, name):
    model_type, overrides = CONFIGS[name]
    folder = make_llama(tmp_path / "hf", model_type, "causal-lm", **overrides)
    model, info = zoo.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert type(model) is zoo_class(model_type, "causal-lm")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    model.save_pretrained(tmp_path / "zoo")
    with safe_open(str(folder / "model.safetensors"), "pt") as theirs, \
            safe_open(str(tmp_path / "zoo" / "model.safetensors"), "pt") as ours:
        assert set(ours.keys()) == set(theirs.keys())  # a tied lm_head left out as transformers leaves it out
        for key in theirs.keys():
            torch.testing.assert_close(ours.get_tensor(key), theirs.get_tensor(key), atol=0, rtol=0)
    again = load_hf(tmp_path / "zoo", model_type)
    batch = make_batch()
    with torch.no_grad():
        assert_outputs_equal(model(**batch), again(**batch), ["logits"])
    assert zoo_class(model_type, "causal-lm").from_pretrained(tmp_path / "zoo").config == model.config


def test_sharded_checkpoints_load_both_ways(tmp_path):
    folder = make_llama(tmp_path / "hf", "mistral", "causal-lm", max_shard_size="20KB", sliding_window=4)
    assert (folder / "model.safetensors.index.json").exists()
    hf = load_hf(folder, "mistral")
    model, info = zoo.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    model.save_pretrained(tmp_path / "zoo", max_shard_size="20KB")
    assert len(list((tmp_path / "zoo").glob("model-*-of-*.safetensors"))) > 1
    again = load_hf(tmp_path / "zoo", "mistral")
    batch = make_batch()
    with torch.no_grad():
        assert_outputs_equal(model(**batch), hf(**batch), ["logits"])
        assert_outputs_equal(again(**batch), hf(**batch), ["logits"])


def test_a_base_checkpoint_loads_under_every_head(tmp_path):
    """A bare-model checkpoint under a head: the body's keys found under the head's prefix (``model.`` or, for
    question answering, ``transformer.``); only the new head is reported missing."""
    folder = make_llama(tmp_path, "qwen3", "base", head_dim=16)
    for head, new in (("causal-lm", ["lm_head.weight"]), ("sequence-classification", ["score.weight"]),
                      ("question-answering", ["qa_outputs.weight", "qa_outputs.bias"])):
        _, info = zoo_class("qwen3", head).from_pretrained(folder, output_loading_info=True)
        assert sorted(info["missing_keys"]) == sorted(new) and not info["unexpected_keys"], (head, info)


def test_from_config_initialises_like_transformers():
    config = zoo.Qwen3Config(**{**TINY, "head_dim": 16, "initializer_range": 0.05})
    model = zoo.Qwen3ForCausalLM.from_config(config)
    layer = model.model.layers[0]
    assert abs(float(layer.mlp.up_proj.weight.detach().std()) - 0.05) < 0.01
    assert torch.equal(layer.self_attn.q_norm.weight.detach(), torch.ones(16))
    assert torch.equal(model.model.embed_tokens.weight[PAD].detach(), torch.zeros(TINY["hidden_size"]))
    theirs = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**{**TINY, "head_dim": 16}))
    torch.testing.assert_close(model.model.rotary_emb.inv_freq, theirs.model.rotary_emb.inv_freq, atol=0, rtol=0)


# --- configs -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", list(PER_TYPE))
def test_config_defaults_match_transformers(model_type):
    ours = getattr(zoo_config, f"{PREFIX[model_type]}Config")()
    theirs = getattr(transformers, f"{PREFIX[model_type]}Config")()
    for key in type(ours).fields():
        if key not in ("id2label", "label2id", "architectures") and not (key == "head_dim" and model_type == "qwen2"):
            assert getattr(ours, key) == getattr(theirs, key), key
    # Qwen2's modeling reads head_dim where set, else hidden_size // heads: zoo derives (and writes) it
    assert ours.head_dim == getattr(theirs, "head_dim", theirs.hidden_size // theirs.num_attention_heads)
    # transformers writes its own bookkeeping and always the labels; zoo writes the labels only when set
    expected = {k for k in theirs.to_dict() if k not in ("transformers_version", "_name_or_path", "dtype",
                                                         "chunk_size_feed_forward", "is_encoder_decoder", "id2label",
                                                         "label2id")}
    assert set(ours.to_dict()) - {"head_dim"} == expected - {"head_dim"}  # Qwen2's head_dim is derived and written


@pytest.mark.parametrize("name", ["llama-rope-llama3", "qwen2-window5-from-layer1", "qwen3-window3-mqa",
                                  "mistral-no-window-tied"])
def test_config_round_trips_with_transformers(tmp_path, name):
    model_type, overrides = CONFIGS[name]
    theirs = getattr(transformers, f"{PREFIX[model_type]}Config")(**{**TINY, **overrides}, num_labels=4)
    theirs.save_pretrained(tmp_path / "hf")
    config = zoo.AutoConfig.from_pretrained(tmp_path / "hf")
    assert type(config).__name__ == f"{PREFIX[model_type]}Config"
    for key, value in theirs.to_diff_dict().items():
        if key not in ("transformers_version", "id2label", "label2id"):
            assert getattr(config, key) == value, key
    # which layers slide, as transformers' modeling reads it: Mistral every layer, Qwen by layer_types
    if model_type == "mistral":
        expected_windows = [theirs.sliding_window] * theirs.num_hidden_layers
    elif model_type == "llama":
        expected_windows = [None] * theirs.num_hidden_layers
    else:
        expected_windows = [theirs.sliding_window if kind == "sliding_attention" else None
                            for kind in theirs.layer_types]
    assert config.layer_windows == expected_windows
    config.save_pretrained(tmp_path / "zoo")
    again = type(theirs).from_pretrained(tmp_path / "zoo")
    for key, value in theirs.to_diff_dict().items():
        if key != "transformers_version":
            assert again.to_diff_dict().get(key) == value, key


def test_legacy_rope_theta_and_rope_scaling_are_read_like_transformers(tmp_path):
    """A transformers 4 config.json: rope_theta and rope_scaling at the top level, with the old key ``type``."""
    make_llama(tmp_path, "llama", "causal-lm")
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    del data["rope_parameters"]
    data.update(rope_theta=500.0, rope_scaling={"type": "linear", "factor": 3.0})
    path.write_text(json.dumps(data))
    config = zoo.AutoConfig.from_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert config.rope_parameters == theirs.rope_parameters
    assert config.rope_parameters["rope_type"] == "linear" and config.rope_theta == 500.0
    hf = load_hf(tmp_path)
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    with torch.no_grad():
        assert_outputs_equal(model(**make_batch()), hf(**make_batch()), ["logits"])
    config.save_pretrained(tmp_path / "zoo")
    written = json.loads((tmp_path / "zoo" / "config.json").read_text())
    assert "rope_theta" not in written and "rope_scaling" not in written
    assert written["rope_parameters"]["rope_theta"] == 500.0


def test_eos_token_id_may_be_a_list():
    config = zoo.LlamaConfig(eos_token_id=[2, 7])
    model = zoo.LlamaForCausalLM.from_config(zoo.LlamaConfig(**{**TINY, "eos_token_id": [2, 7]}))
    assert config.eos_token_id == [2, 7] and model.generation_config.eos_token_id == [2, 7]


@pytest.mark.parametrize(("cls", "fields", "message"), [
    ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=3), r"not a multiple of num_key_value_heads \(3\)"),
    ("LlamaConfig", dict(hidden_size=30, num_attention_heads=4), r"not a multiple of num_attention_heads \(4\)"),
    ("MistralConfig", dict(num_attention_heads=4, num_key_value_heads=8), r"num_key_value_heads.*<= num_attention"),
    ("LlamaConfig", dict(rope_parameters={"rope_type": "ntk-by-parts"}),
     "rope_type 'ntk-by-parts' in config.rope_parameters is not supported"),
    ("LlamaConfig", dict(rope_parameters={"rope_type": "llama3", "factor": 8.0}), "needs low_freq_factor"),
    ("Qwen2Config", dict(num_hidden_layers=2, layer_types=["full_attention"]), "layer_types has 1 entries"),
    ("Qwen3Config", dict(num_hidden_layers=1, layer_types=["chunked_attention"]), "layer_types"),
    ("Qwen3Config", dict(head_dim=7), "head_dim is 7"),
    ("LlamaConfig", dict(hidden_act="swiglu"), "hidden_act"),
    ("Qwen2Config", dict(vocab_size=100, pad_token_id=100), "pad_token_id is 100, outside the vocabulary of 100"),
])
def test_configs_refuse_what_the_model_cannot_build(cls, fields, message):
    with pytest.raises(ConfigError, match=message):
        getattr(zoo_config, cls)(**fields)


# --- the top level -----------------------------------------------------------------------------------------------------


def test_classes_resolve_from_the_top_level_and_the_auto_classes(tmp_path):
    for model_type, prefix in PREFIX.items():
        assert getattr(zoo, f"{prefix}Config") is getattr(zoo_config, f"{prefix}Config")
        for head in HEADS:
            assert getattr(zoo, prefix + SUFFIX[head]) is zoo_class(model_type, head)
    assert zoo.LlamaPreTrainedModel is zoo_llama.LlamaPreTrainedModel
    from zoo.plugins.llama import tokenization

    assert zoo.LlamaTokenizer is zoo.LlamaTokenizerFast is tokenization.LlamaTokenizer
    assert zoo.Qwen2Tokenizer is zoo.Qwen2TokenizerFast is tokenization.Qwen2Tokenizer
    folder = make_llama(tmp_path, "qwen2", "causal-lm")
    for auto, head in ((zoo.AutoModel, "base"), (zoo.AutoModelForCausalLM, "causal-lm"),
                       (zoo.AutoModelForSequenceClassification, "sequence-classification"),
                       (zoo.AutoModelForTokenClassification, "token-classification"),
                       (zoo.AutoModelForQuestionAnswering, "question-answering")):
        assert type(auto.from_pretrained(folder)) is zoo_class("qwen2", head)
    assert hf_class("qwen2", "base").__name__ == "Qwen2Model"
