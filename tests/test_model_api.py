"""The everyday model API (zoo/model_api.py) against transformers on the very same checkpoints.

Every test writes a small random checkpoint with transformers (fixed seed, every tensor re-drawn so biases and
LayerNorms are not at their init), loads the folder with both libraries, does the same thing to both and compares:
embedding modules and their resizing (same torch seed -> the same new rows, tied storage kept), gradient
checkpointing (gradients equal to the plain backward pass and to transformers'), parameter counts, and the tuples
``return_dict=False`` gives, for BERT, RoBERTa, GPT-2 and DistilBERT and every head.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import transformers
from torch import nn
from zoo_distilbert import modeling as zoo_distilbert

from zoo.errors import ModelAPIError, UnsupportedModelOperationError
from zoo.plugins.bert import modeling as zoo_bert
from zoo.plugins.gpt2 import modeling as zoo_gpt2
from zoo.plugins.roberta import modeling as zoo_roberta

ATOL = RTOL = 1e-5
VOCAB = 64

#: arch -> (transformers config class, tiny config, {task: class name in both libraries}, zoo module)
ARCHS = {
    "bert": (transformers.BertConfig,
             dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  max_position_embeddings=32),
             {"base": "BertModel", "pretraining": "BertForPreTraining", "masked-lm": "BertForMaskedLM",
              "sequence-classification": "BertForSequenceClassification",
              "token-classification": "BertForTokenClassification", "question-answering": "BertForQuestionAnswering"},
             zoo_bert),
    "roberta": (transformers.RobertaConfig,
                dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2),
                {"base": "RobertaModel", "masked-lm": "RobertaForMaskedLM",
                 "sequence-classification": "RobertaForSequenceClassification",
                 "token-classification": "RobertaForTokenClassification",
                 "question-answering": "RobertaForQuestionAnswering"},
                zoo_roberta),
    "gpt2": (transformers.GPT2Config,
             dict(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=1,
                  pad_token_id=0),
             {"base": "GPT2Model", "causal-lm": "GPT2LMHeadModel",
              "sequence-classification": "GPT2ForSequenceClassification",
              "token-classification": "GPT2ForTokenClassification", "question-answering": "GPT2ForQuestionAnswering"},
             zoo_gpt2),
    "distilbert": (transformers.DistilBertConfig,
                   dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=32),
                   {"base": "DistilBertModel", "masked-lm": "DistilBertForMaskedLM",
                    "sequence-classification": "DistilBertForSequenceClassification",
                    "token-classification": "DistilBertForTokenClassification",
                    "question-answering": "DistilBertForQuestionAnswering"},
                   zoo_distilbert),
}
ALL_HEADS = [(arch, task) for arch, (_, _, classes, _) in ARCHS.items() for task in classes]
LM_HEADS = [("bert", "masked-lm"), ("bert", "pretraining"), ("roberta", "masked-lm"), ("gpt2", "causal-lm"),
            ("distilbert", "masked-lm")]
#: the config flag that turns each architecture's dropout off
NO_DROPOUT = {"bert": dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
              "roberta": dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
              "gpt2": dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
              "distilbert": dict(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, qa_dropout=0.0)}


def make(folder: Path, arch: str, task: str, seed: int = 0, **overrides) -> transformers.PreTrainedModel:
    """Save a transformers model with every tensor re-drawn (seeded); return transformers' reload of it (eval)."""
    config_class, tiny, classes, _ = ARCHS[arch]
    torch.manual_seed(seed)
    hf = getattr(transformers, classes[task])(config_class(**{**tiny, **overrides}))
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in hf.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * 0.2
            is_norm = "norm" in name.lower() or name.split(".")[-2].startswith("ln_")
            param.copy_(1 + noise if is_norm and name.endswith("weight") else noise)
    hf.save_pretrained(folder)
    return type(hf).from_pretrained(folder, attn_implementation="eager").eval()


def zoo_class(arch: str, task: str) -> type:
    _, _, classes, module = ARCHS[arch]
    return getattr(module, classes[task])


def load_both(folder: Path, arch: str, task: str, seed: int = 0, **overrides):
    hf = make(folder, arch, task, seed, **overrides)
    return hf, zoo_class(arch, task).from_pretrained(folder)


def batch(seed: int = 0, rows: int = 2, length: int = 7, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """Token ids away from the special ones (0-2), the second row right-padded (id 0 for GPT-2, masked out)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (rows, length), generator=generator)
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[1:, length - 2:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def gpt2_batch(seed: int = 0, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """GPT-2 classifies from the last token that is not padding: pad (id 0) the masked positions."""
    out = batch(seed, vocab=vocab)
    out["input_ids"] = out["input_ids"].masked_fill(out["attention_mask"] == 0, 0)
    return out


def inputs(arch: str, seed: int = 0, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    return gpt2_batch(seed, vocab) if arch == "gpt2" else batch(seed, vocab=vocab)


def assert_same_value(got, expected, where: str = "") -> None:
    """Tensors within 1e-5, tuples element by element; a cache is compared by what it holds."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, tuple) and len(got) == len(expected), f"{where}: {type(got)} vs {len(expected)} items"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL, msg=lambda m: f"{where}: {m}")
    else:  # transformers' DynamicCache against zoo's KVCache: the keys and values of every layer
        assert isinstance(got, zoo_gpt2.KVCache), f"{where}: {type(got).__name__} where transformers has {type(expected).__name__}"
        for layer, hf_layer in enumerate(expected.layers):
            torch.testing.assert_close(got.keys[layer][:, :, :got.length], hf_layer.keys, atol=ATOL, rtol=RTOL)
            torch.testing.assert_close(got.values[layer][:, :, :got.length], hf_layer.values, atol=ATOL, rtol=RTOL)


# --- embeddings ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "task"), ALL_HEADS)
def test_input_and_output_embeddings_are_the_modules_transformers_returns(tmp_path, arch, task):
    hf, model = load_both(tmp_path, arch, task)
    hf_in, ours_in = hf.get_input_embeddings(), model.get_input_embeddings()
    assert isinstance(ours_in, nn.Embedding) and ours_in.weight.shape == hf_in.weight.shape
    torch.testing.assert_close(ours_in.weight, hf_in.weight, atol=0, rtol=0)
    hf_out, ours_out = hf.get_output_embeddings(), model.get_output_embeddings()
    assert (ours_out is None) == (hf_out is None)
    if hf_out is not None:
        assert isinstance(ours_out, type(hf_out)) and ours_out.weight.shape == hf_out.weight.shape  # zoo.layers.Linear is an nn.Linear
        assert ours_out.weight is ours_in.weight  # tied: one Parameter


@pytest.mark.parametrize(("arch", "task"), [("bert", "sequence-classification"), ("gpt2", "causal-lm"),
                                            ("distilbert", "token-classification"), ("roberta", "masked-lm")])
def test_set_input_embeddings_is_used_by_forward_as_in_transformers(tmp_path, arch, task):
    hf, model = load_both(tmp_path, arch, task)
    dim = hf.get_input_embeddings().weight.shape[1]
    replacement = nn.Embedding(VOCAB, dim, padding_idx=hf.get_input_embeddings().padding_idx)
    with torch.no_grad():
        replacement.weight.normal_(generator=torch.Generator().manual_seed(5))
    hf.set_input_embeddings(replacement)
    model.set_input_embeddings(replacement)
    assert model.get_input_embeddings() is replacement
    with torch.no_grad():
        expected, got = hf(**inputs(arch)), model(**inputs(arch))
    assert_same_value(got[0], expected[0], "first output")


def test_models_without_token_embeddings_say_so():
    from zoo.plugins.cnn.config import ResNetConfig
    from zoo.plugins.cnn.resnet import ResNetForImageClassification

    model = ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], layer_type="basic"))
    with pytest.raises(UnsupportedModelOperationError, match="no token embeddings.*pixel_values") as raised:
        model.get_input_embeddings()
    assert isinstance(raised.value, NotImplementedError)  # what transformers raises, so except clauses keep working
    assert model.get_output_embeddings() is None
    with pytest.raises(UnsupportedModelOperationError, match="no token embeddings"):
        model.resize_token_embeddings(10)
    with pytest.raises(UnsupportedModelOperationError, match="does not support gradient checkpointing"):
        model.gradient_checkpointing_enable()
    assert not model.supports_gradient_checkpointing
    bare = zoo_bert.BertForSequenceClassification(zoo_bert.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                                                      num_attention_heads=2, intermediate_size=8))
    with pytest.raises(UnsupportedModelOperationError, match="no language-model head"):
        bare.set_output_embeddings(nn.Linear(8, 20))


# --- resize_token_embeddings -----------------------------------------------------------------------------------------------

RESIZES = {  # name: (new_num_tokens, pad_to_multiple_of, mean_resizing)
    "grow": (VOCAB + 7, None, True),
    "grow-padded": (VOCAB + 3, 16, True),
    "grow-plain-init": (VOCAB + 5, None, False),
    "shrink": (VOCAB - 9, None, True),
    "pad-only": (None, 48, True),
}


def assert_state_equal(model, hf) -> None:
    ours, theirs = model.state_dict(), hf.state_dict()
    for key, expected in theirs.items():
        assert key in ours, f"transformers has {key}, zoo does not"
        if key == "lm_head.bias" and not hf.config.tie_word_embeddings and ours[key].shape != expected.shape:
            # RoBERTa untied, deliberately: transformers leaves this unused bias at the old vocabulary size (and then
            # refuses its own save); zoo makes it the new decoder's bias, so what it saves loads back
            assert model.lm_head.bias is model.lm_head.decoder.bias
            continue
        assert ours[key].shape == expected.shape, f"{key}: {tuple(ours[key].shape)} vs {tuple(expected.shape)}"
        torch.testing.assert_close(ours[key], expected, atol=0, rtol=0, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize(("arch", "task"), LM_HEADS + [("bert", "sequence-classification"), ("gpt2", "base")])
def test_resize_draws_the_rows_transformers_draws_and_keeps_ties(tmp_path, arch, task, tied, resize):
    new_num_tokens, multiple, mean_resizing = RESIZES[resize]
    hf, model = load_both(tmp_path, arch, task, tie_word_embeddings=tied)
    torch.manual_seed(11)
    hf_embeddings = hf.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple, mean_resizing=mean_resizing)
    after_hf = torch.rand(1)
    torch.manual_seed(11)
    embeddings = model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple, mean_resizing=mean_resizing)
    assert torch.equal(torch.rand(1), after_hf)  # the random stream was used exactly as much
    expected_rows = hf_embeddings.weight.shape[0]
    assert embeddings is model.get_input_embeddings() and embeddings.weight.shape[0] == expected_rows
    assert model.config.vocab_size == hf.config.vocab_size == expected_rows
    assert embeddings.num_embeddings == expected_rows and embeddings.padding_idx == hf_embeddings.padding_idx
    assert_state_equal(model, hf)
    head = model.get_output_embeddings()
    if head is not None:
        assert head.weight.shape[0] == expected_rows and head.out_features == expected_rows
        assert (head.weight is embeddings.weight) == tied  # tied: still one Parameter, the same storage
        if tied:
            assert head.weight.data_ptr() == embeddings.weight.data_ptr()
    with torch.no_grad():
        ids = inputs(arch, seed=2, vocab=min(expected_rows, VOCAB + 3))
        assert_same_value(model(**ids)[0], hf(**ids)[0], "first output after resizing")


@pytest.mark.parametrize(("arch", "task"), LM_HEADS)
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_resized_model_saves_what_both_libraries_load(tmp_path, arch, task, tied):
    hf, model = load_both(tmp_path / "orig", arch, task, tie_word_embeddings=tied)
    torch.manual_seed(3)
    model.resize_token_embeddings(VOCAB + 4)
    model.save_pretrained(tmp_path / "resized")
    reloaded = zoo_class(arch, task).from_pretrained(tmp_path / "resized")
    theirs = type(hf).from_pretrained(tmp_path / "resized", attn_implementation="eager").eval()
    assert reloaded.config.vocab_size == theirs.config.vocab_size == VOCAB + 4
    ids = inputs(arch, seed=4, vocab=VOCAB + 4)
    with torch.no_grad():
        expected = model.eval()(**ids)[0]
        assert_same_value(reloaded(**ids)[0], expected, "zoo reload")
        assert_same_value(theirs(**ids)[0], expected, "transformers reload")
    if tied:
        assert reloaded.get_output_embeddings().weight is reloaded.get_input_embeddings().weight


def test_resize_is_a_no_op_without_sizes_and_refuses_bad_ones(tmp_path):
    _, model = load_both(tmp_path, "bert", "masked-lm")
    before = model.get_input_embeddings().weight
    assert model.resize_token_embeddings() is model.get_input_embeddings()
    assert model.get_input_embeddings().weight is before and model.config.vocab_size == VOCAB
    for bad in (dict(new_num_tokens=0), dict(new_num_tokens=2.5), dict(new_num_tokens=True),
                dict(new_num_tokens=80, pad_to_multiple_of="8"), dict(pad_to_multiple_of=0)):
        with pytest.raises(ModelAPIError, match="must be an int >= 1"):
            model.resize_token_embeddings(**bad)
    with pytest.raises(ModelAPIError, match="more rows than any vocabulary"):
        model.resize_token_embeddings(2**40)
    assert model.config.vocab_size == VOCAB


def test_resize_below_the_padding_row_drops_padding_idx_as_transformers(tmp_path):
    hf, model = load_both(tmp_path, "roberta", "masked-lm")  # pad_token_id 1
    hf.resize_token_embeddings(1)
    model.resize_token_embeddings(1)
    assert model.get_input_embeddings().padding_idx is None is hf.get_input_embeddings().padding_idx


def test_tie_weights_reties_after_the_head_was_replaced(tmp_path):
    _, model = load_both(tmp_path, "gpt2", "causal-lm")
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone())
    assert model.lm_head.weight is not model.transformer.wte.weight
    model.tie_weights()
    assert model.lm_head.weight is model.transformer.wte.weight


# --- gradient checkpointing -------------------------------------------------------------------------------------------------


def _gradients(model, ids: dict[str, torch.Tensor], labels_key: str | None) -> dict[str, torch.Tensor]:
    model.zero_grad()
    out = model(**ids)
    loss = out.loss if labels_key else out[0].float().pow(2).mean()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize(("arch", "task"), [("bert", "masked-lm"), ("roberta", "sequence-classification"),
                                            ("gpt2", "causal-lm"), ("distilbert", "question-answering"),
                                            ("bert", "base")])
def test_checkpointed_gradients_equal_the_plain_backward_and_transformers(tmp_path, arch, task, reentrant):
    hf, model = load_both(tmp_path, arch, task, **NO_DROPOUT[arch])
    ids = inputs(arch)
    labels_key = None
    if task in ("masked-lm", "causal-lm"):
        ids["labels"], labels_key = ids["input_ids"].clone(), "labels"
    elif task == "sequence-classification":
        ids["labels"], labels_key = torch.tensor([1, 0]), "labels"
    elif task == "question-answering":
        ids["start_positions"], ids["end_positions"], labels_key = torch.tensor([1, 2]), torch.tensor([3, 4]), "start"
    model.train()
    hf.train()
    plain = _gradients(model, ids, labels_key)
    assert not model.is_gradient_checkpointing and model.supports_gradient_checkpointing
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    assert model.is_gradient_checkpointing and model.is_activation_checkpointing
    recomputed = []  # a block's first submodule runs again when the backward pass recomputes the block
    for layer in model._checkpointing_layers():
        next(layer.children()).register_forward_hook(lambda module, args, out: recomputed.append(module))
    checkpointed = _gradients(model, ids, labels_key)
    theirs = _gradients(hf, ids, labels_key)
    # the blocks ran again in the backward pass: checkpointing really happened
    assert len(recomputed) == 2 * len(model._checkpointing_layers())
    assert plain.keys() == checkpointed.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")
        torch.testing.assert_close(grad, theirs[name], atol=ATOL, rtol=RTOL, msg=lambda m: f"{name} vs transformers: {m}")
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing
    recomputed.clear()
    _gradients(model, ids, labels_key)
    assert len(recomputed) == len(model._checkpointing_layers())


def test_checkpointing_replays_dropout_so_gradients_still_match(tmp_path):
    """With dropout on, the recomputation sees the same masks (torch restores the RNG state)."""
    _, model = load_both(tmp_path, "bert", "masked-lm", hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
    ids = {**batch(), "labels": batch()["input_ids"]}
    model.train()
    torch.manual_seed(9)
    plain = _gradients(model, ids, "labels")
    model.gradient_checkpointing_enable()
    torch.manual_seed(9)
    checkpointed = _gradients(model, ids, "labels")
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")


def test_checkpointing_only_acts_in_training_with_gradients(tmp_path):
    _, model = load_both(tmp_path, "distilbert", "base", **NO_DROPOUT["distilbert"])
    model.gradient_checkpointing_enable(every_n_layers=2)
    assert [layer.gradient_checkpointing for layer in model._checkpointing_layers()] == [True, False]
    with torch.no_grad():
        eval_out = model(**batch()).last_hidden_state
        model.train()
        train_out = model(**batch()).last_hidden_state
    torch.testing.assert_close(train_out, eval_out, atol=0, rtol=0)
    with pytest.raises(ModelAPIError, match="every_n_layers"):
        model.gradient_checkpointing_enable(every_n_layers=0)


def test_gpt2_cache_is_turned_off_under_checkpointing_in_training_as_in_transformers(tmp_path, caplog, monkeypatch):
    from zoo import model_api

    monkeypatch.setattr(model_api, "_warned", set())  # warned once per process: make this test's call the first
    hf, model = load_both(tmp_path, "gpt2", "causal-lm", **NO_DROPOUT["gpt2"])
    ids = gpt2_batch()
    with torch.no_grad():
        assert_same_value(model(**ids).past_key_values, hf(**ids).past_key_values, "eval cache")
    model.train()
    hf.train()
    assert model(**ids, use_cache=True).past_key_values is not None  # training without checkpointing keeps it
    model.gradient_checkpointing_enable()
    hf.gradient_checkpointing_enable()
    caplog.set_level(logging.WARNING)
    out, expected = model(**ids, use_cache=True), hf(**ids, use_cache=True)
    assert out.past_key_values is None and out.keys() == list(expected.keys()) == ["logits"]
    assert any("use_cache=True is incompatible with gradient checkpointing" in r.getMessage() for r in caplog.records)
    with torch.no_grad():  # no gradients: nothing is replayed, the cache is kept
        assert model(**ids, use_cache=True).past_key_values is not None


def test_checkpointing_adds_and_removes_the_input_grad_hook(tmp_path):
    """With frozen embeddings and reentrant checkpointing, gradients still reach the blocks (transformers' hook)."""
    _, model = load_both(tmp_path, "bert", "base", **NO_DROPOUT["bert"])
    model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model(**batch()).last_hidden_state.sum().backward()
    assert model.encoder.layer[0].attention.self.query.weight.grad is not None
    assert model.get_input_embeddings()._forward_hooks
    model.gradient_checkpointing_disable()
    assert not model.get_input_embeddings()._forward_hooks


# --- num_parameters ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "task"), ALL_HEADS)
def test_num_parameters_matches_transformers(tmp_path, arch, task):
    hf, model = load_both(tmp_path, arch, task)
    for frozen in (False, True):
        if frozen:  # freeze the same parameters in both
            for m in (hf, model):
                for name, p in m.named_parameters():
                    if "layer.0" in name or ".h.0." in name or "embeddings" in name:
                        p.requires_grad_(False)
        for only_trainable in (False, True):
            for exclude_embeddings in (False, True):
                assert (model.num_parameters(only_trainable=only_trainable, exclude_embeddings=exclude_embeddings)
                        == hf.num_parameters(only_trainable=only_trainable, exclude_embeddings=exclude_embeddings))
    assert model.num_parameters(exclude_embeddings=True) < model.num_parameters()


# --- return_dict=False ------------------------------------------------------------------------------------------------------


def _labels(task: str, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if task in ("masked-lm", "causal-lm", "token-classification"):
        return {"labels": ids["input_ids"] % 2 if task == "token-classification" else ids["input_ids"]}
    if task == "sequence-classification":
        return {"labels": torch.tensor([1, 0])}
    if task == "question-answering":
        return {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 4])}
    if task == "pretraining":
        return {"labels": ids["input_ids"], "next_sentence_label": torch.tensor([0, 1])}
    return {}


CALLS = {
    "plain": {},
    "labels": {"labels": True},
    "everything": {"labels": True, "output_hidden_states": True, "output_attentions": True},
    "attentions": {"output_attentions": True},
    "no-cache": {"use_cache": False, "output_hidden_states": True},
}


@pytest.mark.parametrize(("arch", "task", "call"), [
    (arch, task, call) for arch, task in ALL_HEADS for call in CALLS
    if "use_cache" not in CALLS[call] or (arch == "gpt2" and task != "question-answering")])  # what takes use_cache
def test_return_dict_false_gives_transformers_tuple(tmp_path, arch, task, call):
    options = dict(CALLS[call])
    hf, model = load_both(tmp_path, arch, task)
    ids = inputs(arch)
    if options.pop("labels", False):
        ids.update(_labels(task, ids))
    with torch.no_grad():
        expected = hf(**ids, **options, return_dict=False)
        got = model(**ids, **options, return_dict=False)
        as_dict = model(**ids, **options)
    assert isinstance(got, tuple) and isinstance(expected, tuple)
    assert len(got) == len(expected), f"zoo returns {as_dict.keys()}, transformers {hf(**ids, **options).keys()}"
    assert_same_value(got, expected, "tuple")
    assert as_dict.keys() == [k if k != "cache" else "past_key_values" for k in hf(**ids, **options).keys()]
    assert as_dict.to_tuple()[0] is as_dict[0]


@pytest.mark.parametrize("task", ["base", "image-classification"])
def test_image_models_return_transformers_tuples_and_counts(tmp_path, task):
    from tests.image_checkpoints import make_resnet
    from zoo.plugins.cnn.resnet import ResNetForImageClassification, ResNetModel

    hf = make_resnet(tmp_path, "basic").eval()
    model = (ResNetModel if task == "base" else ResNetForImageClassification).from_pretrained(tmp_path)
    if task == "base":
        hf = hf.resnet
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    options = {"output_hidden_states": True} | ({"labels": torch.tensor([1, 2])} if task != "base" else {})
    with torch.no_grad():
        assert_same_value(model(pixels, return_dict=False, **options), hf(pixels, return_dict=False, **options), "tuple")
        assert_same_value(model(pixels, return_dict=False), hf(pixels, return_dict=False), "plain tuple")
    for exclude_embeddings in (False, True):
        assert model.num_parameters(exclude_embeddings=exclude_embeddings) == hf.num_parameters(exclude_embeddings=exclude_embeddings)


@pytest.mark.parametrize(("arch", "task"), [("bert", "sequence-classification"), ("gpt2", "causal-lm"),
                                            ("distilbert", "masked-lm"), ("roberta", "question-answering")])
def test_config_return_dict_false_makes_tuples_and_heads_still_work(tmp_path, arch, task):
    """A head calls its base model with return_dict=True, so config.return_dict=False changes only what the caller
    gets. (transformers' own GPT-2 heads break on such a config, so the reference is a return_dict=False call.)"""
    hf = make(tmp_path, arch, task)
    model = zoo_class(arch, task).from_pretrained(tmp_path, return_dict=False)
    assert model.config.return_dict is False and model.config.use_return_dict is False
    ids = inputs(arch)
    with torch.no_grad():
        got, expected = model(**ids), hf(**ids, return_dict=False)
        assert isinstance(got, tuple) and isinstance(expected, tuple)
        assert_same_value(got, expected, "tuple")
        assert model(**ids, return_dict=True).keys()  # an explicit return_dict wins over the config


# --- the config's JSON ------------------------------------------------------------------------------------------------------

CONFIG_VARIANTS = {
    "defaults": {},
    "labels-and-flags": dict(num_labels=3, problem_type="multi_label_classification", output_hidden_states=True,
                             return_dict=False, tie_word_embeddings=False),
}


@pytest.mark.parametrize("variant", CONFIG_VARIANTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_config_json_is_what_transformers_writes_and_reads_both_ways(tmp_path, arch, variant):
    import json

    task = "sequence-classification"
    hf = make(tmp_path / "hf", arch, task, **CONFIG_VARIANTS[variant])
    theirs = json.loads((tmp_path / "hf" / "config.json").read_text())
    model = zoo_class(arch, task).from_pretrained(tmp_path / "hf")
    ours = json.loads(model.config.to_json_string())
    assert model.config.to_dict() == json.loads(model.config.to_json_string(use_diff=False))
    for key, value in theirs.items():
        if key != "transformers_version":
            assert key in ours and ours[key] == value, f"{key}: transformers writes {value!r}, zoo {ours.get(key)!r}"
    # the only keys zoo adds are fields of its own that transformers 5 no longer has
    assert set(ours) - set(theirs) <= {"position_embedding_type"}
    model.config.save_pretrained(tmp_path / "zoo")
    assert (tmp_path / "zoo" / "config.json").read_text() == model.config.to_json_string()
    back = transformers.AutoConfig.from_pretrained(tmp_path / "zoo")
    assert type(back) is type(hf.config)
    expected = {k: v for k, v in hf.config.to_dict().items() if k not in ("transformers_version", "_name_or_path")}
    assert {k: v for k, v in back.to_dict().items() if k in expected} == expected
    assert back.return_dict == hf.config.return_dict and back.num_labels == hf.config.num_labels
    again = type(model.config).from_pretrained(tmp_path / "zoo")
    assert again == model.config and again.return_dict == hf.config.return_dict
