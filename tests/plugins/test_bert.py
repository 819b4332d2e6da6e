"""The BERT plugin against transformers on the very same files.

Every test writes a small random checkpoint with transformers (fixed seed, several configs), loads it with both
libraries and compares what they compute: every head's logits, pooler output, hidden states, attentions and the
losses, on batches with padding and token types. Weights are re-drawn at a larger scale than transformers' init
(biases and LayerNorm included), so a wrong or unused tensor shows up in the outputs instead of hiding in zeros.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from tests.checkpoints import HF_BERT_CLASSES, TINY_BERT, assert_outputs_equal, make_bert
from zoo.errors import ConfigError
from zoo.plugins.bert import modeling as zoo_bert
from zoo.plugins.bert.config import BertConfig

ATOL = RTOL = 1e-5

#: Configs that differ where the code could go wrong: sizes, heads, depth, activation, token types, tying, eps.
CONFIGS = {
    "tiny-gelu": {},
    "wide-gelu_new-3types": dict(hidden_size=48, num_attention_heads=6, num_hidden_layers=3, intermediate_size=64,
                                 hidden_act="gelu_new", type_vocab_size=3),
    "narrow-relu-1type-untied": dict(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=24,
                                     hidden_act="relu", type_vocab_size=1, tie_word_embeddings=False,
                                     layer_norm_eps=1e-5),
}

ZOO_CLASSES = {task: getattr(zoo_bert, name) for task, name in HF_BERT_CLASSES.items()}


def write_checkpoint(folder: Path, task: str, seed: int = 0, **overrides) -> transformers.PreTrainedModel:
    """A transformers checkpoint with every tensor re-drawn (seeded), and transformers' own reload of it (eval)."""
    hf = make_bert(folder, task, seed=seed, **overrides)
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in hf.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * 0.2
            param.copy_(1 + noise if name.endswith("LayerNorm.weight") else noise)
    hf.save_pretrained(folder)
    return type(hf).from_pretrained(folder, attn_implementation="eager").eval()


def make_batch(config: dict, seed: int = 0, batch: int = 3, length: int = 9) -> dict[str, torch.Tensor]:
    """input_ids with [CLS]/[SEP], right padding of different lengths, and random token types."""
    full = {**TINY_BERT, **config}
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, full["vocab_size"], (batch, length), generator=generator)
    lengths = [length, length - 3, 3][:batch]
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, 0], ids[row, n - 1] = 2, 3
    ids[mask == 0] = 0
    types = torch.randint(0, full["type_vocab_size"], (batch, length), generator=generator) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# --- every head, every config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("task", list(HF_BERT_CLASSES))
def test_every_head_matches_transformers(tmp_path, task, config_name):
    overrides = CONFIGS[config_name]
    hf = write_checkpoint(tmp_path, task, **overrides)
    model = ZOO_CLASSES[task].from_pretrained(tmp_path)
    assert not model.training
    batch = make_batch(overrides)
    with torch.no_grad():
        expected = hf(**batch, output_hidden_states=True, output_attentions=True)
        got = model(**batch, output_hidden_states=True, output_attentions=True)
        fast = model(**batch)  # the scaled_dot_product_attention path
    assert_outputs_equal(got, expected)
    assert len(got.hidden_states) == hf.config.num_hidden_layers + 1
    assert got.attentions[0].shape == (3, hf.config.num_attention_heads, 9, 9)
    main = [k for k in expected.keys() if k not in ("hidden_states", "attentions", "cross_attentions")]
    assert main, "every head returns at least one tensor"
    assert_outputs_equal(fast, expected, keys=main)
    assert fast.hidden_states is None and fast.attentions is None


def test_attention_runs_through_scaled_dot_product_attention(tmp_path, monkeypatch):
    write_checkpoint(tmp_path, "base")
    model = zoo_bert.BertModel.from_pretrained(tmp_path)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    monkeypatch.setattr(zoo_bert.F, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        model(**make_batch({}))
    assert len(calls) == model.config.num_hidden_layers
    assert all(mask is not None and mask.dtype == torch.bool for mask in calls)


def test_padding_does_not_change_the_real_tokens(tmp_path):
    """A padded row gives, on its real tokens, what the same sentence gives alone (the mask really masks)."""
    write_checkpoint(tmp_path, "base")
    model = zoo_bert.BertModel.from_pretrained(tmp_path)
    batch = make_batch({})
    n = int(batch["attention_mask"][1].sum())
    with torch.no_grad():
        padded = model(**batch)
        alone = model(**{k: v[1:2, :n] for k, v in batch.items()})
    torch.testing.assert_close(padded.last_hidden_state[1, :n], alone.last_hidden_state[0], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(padded.pooler_output[1], alone.pooler_output[0], atol=ATOL, rtol=RTOL)


def test_token_type_ids_left_out_means_type_zero(tmp_path):
    hf = write_checkpoint(tmp_path, "base")
    model = zoo_bert.BertModel.from_pretrained(tmp_path)
    batch = make_batch({})
    batch.pop("token_type_ids")
    with torch.no_grad():
        got = model(**batch)
        zeros = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"]))
        expected = hf(**batch)
    torch.testing.assert_close(got.last_hidden_state, zeros.last_hidden_state)
    assert_outputs_equal(got, expected, keys=["last_hidden_state", "pooler_output"])


def test_inputs_embeds_and_position_ids_match_transformers(tmp_path):
    hf = write_checkpoint(tmp_path, "masked-lm")
    model = zoo_bert.BertForMaskedLM.from_pretrained(tmp_path)
    batch = make_batch({})
    embeds = torch.randn(3, 9, hf.config.hidden_size, generator=torch.Generator().manual_seed(3))
    positions = torch.arange(9).flip(0).expand(3, 9)
    rest = {"attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"]}
    with torch.no_grad():
        assert_outputs_equal(model(inputs_embeds=embeds, **rest), hf(inputs_embeds=embeds, **rest))
        assert_outputs_equal(model(**batch, position_ids=positions), hf(**batch, position_ids=positions))


# --- losses --------------------------------------------------------------------------------------------------------------


def _labels_for(problem: str, num_labels: int, batch: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    if problem == "regression":
        values = torch.randn(batch, num_labels, generator=generator)
        return values.squeeze(-1) if num_labels == 1 else values  # (B,) for one label, as transformers' examples pass
    if problem == "single_label_classification":
        return torch.randint(0, num_labels, (batch,), generator=generator)
    return torch.randint(0, 2, (batch, num_labels), generator=generator).float()


@pytest.mark.parametrize(
    ("num_labels", "problem_type", "labels_kind"),
    [
        (1, "regression", "regression"),
        (3, "regression", "regression"),
        (3, "single_label_classification", "single_label_classification"),
        (5, "multi_label_classification", "multi_label_classification"),
        (1, None, "regression"),  # inferred: one label is regression
        (3, None, "single_label_classification"),  # inferred from integer labels
        (5, None, "multi_label_classification"),  # inferred from float labels
    ],
)
def test_sequence_classification_loss_follows_problem_type(tmp_path, num_labels, problem_type, labels_kind):
    hf = write_checkpoint(tmp_path, "sequence-classification", num_labels=num_labels, problem_type=problem_type)
    model = zoo_bert.BertForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.num_labels == num_labels and model.config.problem_type == problem_type
    batch = make_batch({})
    labels = _labels_for(labels_kind, num_labels)
    got = model(**batch, labels=labels)
    expected = hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, keys=["loss", "logits"])
    assert got.logits.shape == (3, num_labels)
    assert model.config.problem_type == hf.config.problem_type == labels_kind  # an unset one is inferred, as there
    got.loss.backward()
    expected.loss.backward()
    torch.testing.assert_close(model.classifier.weight.grad, hf.classifier.weight.grad, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight.grad,
                               hf.bert.embeddings.word_embeddings.weight.grad, atol=ATOL, rtol=RTOL)


def test_unknown_problem_type_is_a_clear_error(tmp_path):
    write_checkpoint(tmp_path, "sequence-classification", num_labels=3)
    with pytest.raises(ConfigError, match=r"from_pretrained\(\.\.\., problem_type='ordinal'\): BertConfig field "
                                          r"'problem_type' is 'ordinal'; allowed: one of 'regression'"):
        zoo_bert.BertForSequenceClassification.from_pretrained(tmp_path, problem_type="ordinal")
    model = zoo_bert.BertForSequenceClassification.from_pretrained(tmp_path)
    model.config.problem_type = "ordinal"  # set after validation: the loss still refuses it
    with pytest.raises(ValueError, match="problem_type 'ordinal'.*regression"):
        model(**make_batch({}), labels=torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("config_name", ["tiny-gelu", "narrow-relu-1type-untied"])
def test_masked_lm_loss_ignores_minus_100_and_gradients_match(tmp_path, config_name):
    overrides = CONFIGS[config_name]
    hf = write_checkpoint(tmp_path, "masked-lm", **overrides)
    model = zoo_bert.BertForMaskedLM.from_pretrained(tmp_path)
    batch = make_batch(overrides)
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 2], labels[1, 4], labels[2, 1] = 7, 30, 11
    got = model(**batch, labels=labels)
    expected = hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, keys=["loss", "logits"])
    got.loss.backward()
    expected.loss.backward()
    for name in ("bert.embeddings.word_embeddings.weight", "cls.predictions.bias", "cls.predictions.decoder.weight"):
        torch.testing.assert_close(model.get_parameter(name).grad, hf.get_parameter(name).grad, atol=ATOL, rtol=RTOL,
                                   msg=lambda m: f"{name}: {m}")


def test_pretraining_loss_with_next_sentence_label(tmp_path):
    overrides = CONFIGS["wide-gelu_new-3types"]
    hf = write_checkpoint(tmp_path, "pretraining", **overrides)
    model = zoo_bert.BertForPreTraining.from_pretrained(tmp_path)
    batch = make_batch(overrides)
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 1] = torch.tensor([9, 40, 12])
    nsp = torch.tensor([0, 1, 1])
    with torch.no_grad():
        got = model(**batch, labels=labels, next_sentence_label=nsp)
        expected = hf(**batch, labels=labels, next_sentence_label=nsp)
        assert_outputs_equal(got, expected, keys=["loss", "prediction_logits", "seq_relationship_logits"])
        assert model(**batch, labels=labels).loss is None  # transformers needs both labels for a loss, so do we
        assert hf(**batch, labels=labels).loss is None


def test_token_classification_loss(tmp_path):
    hf = write_checkpoint(tmp_path, "token-classification", num_labels=5)
    model = zoo_bert.BertForTokenClassification.from_pretrained(tmp_path)
    batch = make_batch({})
    labels = torch.randint(0, 5, batch["input_ids"].shape, generator=torch.Generator().manual_seed(1))
    labels[batch["attention_mask"] == 0] = -100
    with torch.no_grad():
        got = model(**batch, labels=labels)
        expected = hf(**batch, labels=labels)
    assert got.logits.shape == (3, 9, 5)
    assert_outputs_equal(got, expected, keys=["loss", "logits"])


@pytest.mark.parametrize(
    ("start", "end"),
    [([1, 2, 0], [3, 4, 2]), ([1, 50, -3], [3, 80, 2])],  # in range; beyond the input (ignored) and below zero
    ids=["in-range", "out-of-range"],
)
def test_question_answering_loss(tmp_path, start, end):
    hf = write_checkpoint(tmp_path, "question-answering")
    model = zoo_bert.BertForQuestionAnswering.from_pretrained(tmp_path)
    batch = make_batch({})
    start_positions, end_positions = torch.tensor(start), torch.tensor(end)
    with torch.no_grad():
        got = model(**batch, start_positions=start_positions, end_positions=end_positions)
        expected = hf(**batch, start_positions=start_positions, end_positions=end_positions)
    assert torch.isfinite(got.loss)
    assert_outputs_equal(got, expected, keys=["loss", "start_logits", "end_logits"])


# --- inputs the model refuses ----------------------------------------------------------------------------------------------


def test_too_long_input_and_ambiguous_inputs_are_refused(tmp_path):
    write_checkpoint(tmp_path, "base")
    model = zoo_bert.BertModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="65 tokens.*at most 64.*truncat"):
        model(torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(torch.ones(1, 4, dtype=torch.long), inputs_embeds=torch.zeros(1, 4, 32))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()


# --- config ----------------------------------------------------------------------------------------------------------------


def test_config_reads_transformers_json_and_writes_json_transformers_reads(tmp_path):
    hf_config = transformers.BertConfig(hidden_size=48, num_attention_heads=6, hidden_act="gelu_new", type_vocab_size=3,
                                        num_labels=4, problem_type="multi_label_classification", classifier_dropout=0.3)
    hf_config.save_pretrained(tmp_path / "hf")
    config = BertConfig.from_pretrained(tmp_path / "hf")
    for key in ("hidden_size", "num_attention_heads", "hidden_act", "type_vocab_size", "num_labels", "problem_type",
                "classifier_dropout", "layer_norm_eps", "vocab_size", "id2label", "label2id"):
        assert getattr(config, key) == getattr(hf_config, key), key
    config.save_pretrained(tmp_path / "zoo")
    again = transformers.BertConfig.from_pretrained(tmp_path / "zoo")
    written = again.to_diff_dict()
    for key, value in hf_config.to_diff_dict().items():
        assert written.get(key) == value, key


def test_config_defaults_equal_transformers():
    ours, theirs = BertConfig(), transformers.BertConfig()
    assert ours.num_labels == theirs.num_labels
    for key in BertConfig.fields():
        if hasattr(theirs, key) and key not in ("id2label", "label2id"):  # zoo leaves them unset until asked
            assert getattr(ours, key) == getattr(theirs, key), key


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(hidden_size=30, num_attention_heads=4), r"'hidden_size' is 30, which is not a multiple of num_attention_heads \(4\)"),
        (dict(position_embedding_type="relative_key"), "'position_embedding_type' is 'relative_key'; allowed: one of 'absolute'; zoo's BERT uses absolute"),
        (dict(is_decoder=True), "decoder"),
        (dict(hidden_size="32"), "hidden_size"),
        (dict(num_labels=0), "'num_labels' is 0; allowed: an int >= 1"),
    ],
)
def test_config_refuses_what_the_model_cannot_build(fields, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**fields)


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="activation 'gelu_42' is not supported.*hidden_act"):
        zoo_bert.BertModel(BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1, hidden_act="gelu_42"))
