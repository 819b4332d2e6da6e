"""The T5 plugin (zoo/plugins/t5/) against transformers on small random T5, mT5 and umT5 checkpoints: every head,
each feed_forward_proj, tied and untied embeddings, more decoder than encoder layers, padded encoder batches, the
decoder cache, the Auto classes and save_pretrained round trips."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.plugins.t5_checkpoints import EOS, PAD, load_hf, make_batch, make_t5
from zoo.errors import ConfigError
from zoo.plugins.t5.config import MT5Config, T5Config, UMT5Config
from zoo.plugins.t5.modeling import T5Cache

#: (model_type, feed_forward_proj, untied)
CASES = [("t5", "relu", False), ("t5", "gated-gelu", True), ("t5", "gated-silu", False),
         ("mt5", "gated-gelu", True), ("mt5", "relu", False), ("umt5", "gated-gelu", True), ("umt5", "gated-silu", False)]
TOL = dict(rtol=1e-5, atol=1e-5)


def labels_batch() -> torch.Tensor:
    labels = make_batch(seed=1, length=7)["input_ids"]
    labels[1, 5:] = -100  # ignored positions
    return labels


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {case: make_t5(tmp_path_factory.mktemp("-".join(map(str, case))), case[0], feed_forward_proj=case[1],
                          untied=case[2]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_logits_loss_and_encoder_output_match_transformers(folders, case):
    model_type = case[0]
    ours = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[case])
    theirs = load_hf(folders[case], model_type)
    assert type(ours).__name__ == type(theirs).__name__
    assert (ours.lm_head.weight is ours.shared.weight) == (not case[2])
    batch, labels = make_batch(), labels_batch()
    with torch.no_grad():
        a, b = ours(**batch, labels=labels), theirs(**batch, labels=labels)
    torch.testing.assert_close(a.encoder_last_hidden_state, b.encoder_last_hidden_state, **TOL)
    torch.testing.assert_close(a.logits, b.logits, **TOL)
    torch.testing.assert_close(a.loss, b.loss, **TOL)


@pytest.mark.parametrize("model_type", ["t5", "mt5", "umt5"])
@pytest.mark.parametrize("head", ["base", "text-encoding", "sequence-classification", "question-answering"])
def test_every_head_matches_transformers(tmp_path, model_type, head):
    folder = make_t5(tmp_path, model_type, head, seed=3, feed_forward_proj="gated-gelu")
    theirs = load_hf(folder, model_type, head)
    auto = {"base": zoo.AutoModel, "text-encoding": zoo.AutoModelForTextEncoding,
            "sequence-classification": zoo.AutoModelForSequenceClassification,
            "question-answering": zoo.AutoModelForQuestionAnswering}[head]
    ours = auto.from_pretrained(folder)
    assert type(ours).__name__ == type(theirs).__name__
    batch = make_batch(seed=4)
    kwargs = dict(batch)
    if head == "base":
        kwargs["decoder_input_ids"] = make_batch(seed=5, length=6)["input_ids"]
    if head == "sequence-classification":
        kwargs["labels"] = torch.tensor([0, 1, 1])
    if head == "question-answering":
        kwargs.update(start_positions=torch.tensor([1, 2, 30]), end_positions=torch.tensor([3, 4, 5]))
    with torch.no_grad():
        a, b = ours(**kwargs), theirs(**kwargs)
    names = {"base": ["last_hidden_state", "encoder_last_hidden_state"], "text-encoding": ["last_hidden_state"],
             "sequence-classification": ["logits", "loss"],
             "question-answering": ["start_logits", "end_logits", "loss"]}[head]
    for name in names:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), **TOL)


def test_sequence_classification_refuses_rows_with_different_eos_counts(tmp_path):
    model = zoo.AutoModelForSequenceClassification.from_pretrained(make_t5(tmp_path, "t5", "sequence-classification"))
    batch = make_batch()
    batch["input_ids"][0, 2] = EOS
    with pytest.raises(ValueError, match="same number of </s>"):
        model(**batch)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]], ids=lambda c: c[0])
def test_decoding_step_by_step_with_the_cache_equals_the_full_forward(folders, case):
    model = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[case])
    batch = make_batch(seed=7)
    decoder_ids = make_batch(seed=8, length=6)["input_ids"]
    decoder_ids[:, 0] = PAD  # decoder_start_token_id
    with torch.no_grad():
        full = model(**batch, decoder_input_ids=decoder_ids, use_cache=False).logits  # (B, 6, V)
        encoder_outputs = model.get_encoder()(batch["input_ids"], batch["attention_mask"])
        cache = model.new_kv_cache(3, 2)  # smaller than needed: the buffers grow
        steps, calls = [], []
        for t in range(decoder_ids.shape[1]):
            out = model(encoder_outputs=(encoder_outputs,), attention_mask=batch["attention_mask"],
                        decoder_input_ids=decoder_ids[:, t:t + 1], past_key_values=cache)
            assert out.past_key_values is cache and cache.length == t + 1
            steps.append(out.logits)
            calls.append([k.data_ptr() for k, _ in cache.cross])
    assert isinstance(cache, T5Cache) and len(cache.cross) == model.config.num_decoder_layers
    assert all(c == calls[0] for c in calls)  # cross-attention keys/values computed once, then reused
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TOL)


def test_a_prompt_then_steps_and_reorder_match_the_full_forward(folders):
    model = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[CASES[1]])
    batch = make_batch(seed=9)
    decoder_ids = make_batch(seed=10, length=5)["input_ids"]
    with torch.no_grad():
        first = model(**batch, decoder_input_ids=decoder_ids[:, :3], use_cache=True)
        cache = first.past_key_values
        order = torch.tensor([2, 0, 1])
        cache.reorder(order)  # beam search's reordering moves the cross-attention rows too
        mask = batch["attention_mask"][order]
        rest = model(input_ids=None, encoder_outputs=first.encoder_last_hidden_state[order], attention_mask=mask,
                     decoder_input_ids=decoder_ids[order, 3:], past_key_values=cache).logits
        full = model(**{k: v[order] for k, v in batch.items()}, decoder_input_ids=decoder_ids[order]).logits
    torch.testing.assert_close(rest, full[:, 3:], **TOL)


def test_a_beam_step_reorders_only_the_self_attention_rows(folders):
    """Rows of one input share its encoder output, so reorder_self_attention (what generate's beam steps call)
    leaves the cross-attention tensors in place and the next step's logits equal a full reorder's."""
    model = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[CASES[1]])
    batch = make_batch(seed=9)
    one = {k: v[:1].expand(3, -1) for k, v in batch.items()}  # three beams of one input
    decoder_ids = make_batch(seed=10, length=5)["input_ids"]
    order = torch.tensor([2, 2, 0])
    results, kept = [], None
    with torch.no_grad():
        for self_only in (False, True):
            first = model(**one, decoder_input_ids=decoder_ids[:, :3], use_cache=True)
            cache = first.past_key_values
            cross = list(cache.cross)
            if self_only:
                cache.reorder_self_attention(order)
                kept = all(a is b for a, b in zip(cache.cross, cross))
            else:
                cache.reorder(order)
            results.append(model(encoder_outputs=first.encoder_last_hidden_state, attention_mask=one["attention_mask"],
                                 decoder_input_ids=decoder_ids[order, 3:], past_key_values=cache).logits)
    assert kept
    assert torch.equal(results[0], results[1])


def test_the_cache_must_be_a_t5_cache(folders):
    model = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[CASES[0]])
    with pytest.raises(TypeError, match="T5Cache"):
        model(**make_batch(), decoder_input_ids=torch.zeros(3, 1, dtype=torch.long), past_key_values=object())


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]], ids=lambda c: c[0])
def test_save_pretrained_round_trip_loads_in_transformers(folders, case, tmp_path):
    ours = zoo.AutoModelForSeq2SeqLM.from_pretrained(folders[case])
    ours.save_pretrained(tmp_path)
    theirs = load_hf(tmp_path, case[0])
    again = zoo.AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    batch, labels = make_batch(), labels_batch()
    with torch.no_grad():
        a, b, c = ours(**batch, labels=labels), theirs(**batch, labels=labels), again(**batch, labels=labels)
    torch.testing.assert_close(a.logits, b.logits, **TOL)
    torch.testing.assert_close(a.logits, c.logits, rtol=0, atol=0)


def test_auto_classes_and_top_level_names_resolve(folders):
    folder = folders[CASES[0]]
    assert type(zoo.AutoConfig.from_pretrained(folder)) is T5Config
    assert type(zoo.AutoModelForSeq2SeqLM.from_pretrained(folder)) is zoo.T5ForConditionalGeneration
    encoder = zoo.AutoModelForTextEncoding.from_pretrained(folder)  # a full checkpoint, decoder keys ignored
    assert type(encoder) is zoo.T5EncoderModel and not hasattr(encoder, "decoder")
    assert type(zoo.AutoModel.from_pretrained(folder)) is zoo.T5Model
    assert zoo.UMT5ForConditionalGeneration.config_class is UMT5Config and zoo.MT5Config is MT5Config
    model = zoo.AutoModelForSeq2SeqLM.from_config(zoo.AutoConfig.for_model("umt5", vocab_size=50, d_model=16, d_kv=4,
                                                                           d_ff=24, num_layers=1, num_heads=2))
    assert type(model) is zoo.UMT5ForConditionalGeneration and model.lm_head.weight is not model.shared.weight
    out = model(input_ids=torch.tensor([[3, 4, EOS]]), labels=torch.tensor([[5, EOS]]))
    assert out.logits.shape == (1, 2, 50) and torch.isfinite(out.loss)


def test_config_reads_every_hub_field_as_transformers_does():
    config = T5Config(feed_forward_proj="gated-gelu", num_layers=3,
                      task_specific_params={"summarization": {"prefix": "summarize: "}})
    assert (config.dense_act_fn, config.is_gated_act, config.num_decoder_layers) == ("gelu_new", True, 3)
    assert config.hidden_size == config.d_model and config.num_attention_heads == config.num_heads
    assert T5Config(feed_forward_proj="gated-silu").dense_act_fn == "silu"
    assert (T5Config().scale_decoder_outputs, T5Config(tie_word_embeddings=False).scale_decoder_outputs) == (True, False)
    assert MT5Config().tie_word_embeddings is False and UMT5Config().tie_word_embeddings is False
    again = T5Config.from_dict(config.to_dict())
    assert again == config and again.task_specific_params["summarization"]["prefix"] == "summarize: "
    for bad in ("gelu-gated", "gated-gelu-x", "gated-nope"):
        with pytest.raises(ConfigError, match="feed_forward_proj"):
            T5Config(feed_forward_proj=bad)
