"""Model API idioms: concrete classes (with a new head after ``set_seed``), embeddings accessors, resizing (tied
storage, pad_to_multiple_of, the mean-resized new rows after ``torch.manual_seed``), gradient checkpointing's
gradients, num_parameters, ``return_dict=False`` tuples, and configs through to_json_string / save_pretrained /
AutoConfig of the other library.

A head a checkpoint lacks is drawn at random when loaded: its values are each library's own draw, so idioms compare
only what is deterministic about it (shapes, labels, the base model's hidden states feeding it).
"""

from __future__ import annotations

import json

import torch

from tests.compat.idiom import fields, grads, idiom

BERT_TEXTS = ["hello world", "i love python bugs", "the café is naïve"]
GPT2_TEXTS = ["Hello world! The quick brown fox.", "What is the capital", "I love"]


def _bert_batch(lib, ckpt):
    return lib.AutoTokenizer.from_pretrained(ckpt.bert)(BERT_TEXTS, padding=True, return_tensors="pt")


def _gpt2_batch(lib, folder):
    tok = lib.AutoTokenizer.from_pretrained(folder)
    tok.pad_token = tok.eos_token
    batch = tok(GPT2_TEXTS, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return tok, batch, labels


# --- concrete classes ------------------------------------------------------------------------------------------------


@idiom
def bert_for_sequence_classification_new_head_after_set_seed(lib, ckpt):
    lib.set_seed(0)
    model = lib.BertForSequenceClassification.from_pretrained(ckpt.bert, num_labels=2)
    with torch.no_grad():
        out = model(**_bert_batch(lib, ckpt), output_hidden_states=True)
    return {"logits_shape": tuple(out.logits.shape), "hidden_states": out.hidden_states, "training": model.training,
            "num_labels": model.config.num_labels, "id2label": model.config.id2label,
            "classifier_shape": tuple(model.classifier.weight.shape)}


@idiom
def bert_model_class_outputs(lib, ckpt):
    model = lib.BertModel.from_pretrained(ckpt.bert)
    with torch.no_grad():
        out = model(**_bert_batch(lib, ckpt))
    return fields(out, "last_hidden_state", "pooler_output")


@idiom
def auto_model_for_sequence_classification_with_labels(lib, ckpt):
    labels = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
    model = lib.AutoModelForSequenceClassification.from_pretrained(
        ckpt.bert, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    return {"class": type(model).__name__, "config": fields(model.config, "num_labels", "id2label", "label2id"),
            "head": tuple(model.classifier.weight.shape)}


@idiom
def gpt2_lm_head_model_logits_and_loss(lib, ckpt):
    model = lib.GPT2LMHeadModel.from_pretrained(ckpt.gpt2)
    _, batch, labels = _gpt2_batch(lib, ckpt.gpt2)
    with torch.no_grad():
        out = model(**batch, labels=labels)
    return fields(out, "loss", "logits")


@idiom
def roberta_masked_lm_logits_and_loss(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    model = lib.AutoModelForMaskedLM.from_pretrained(ckpt.roberta)
    batch = tok(["The capital of France is <mask>.", "Hello <mask>!"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"])
    return fields(out, "loss", "logits")


@idiom
def model_built_from_a_config_after_set_seed(lib, ckpt):
    config = lib.BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=24, max_position_embeddings=32)
    lib.set_seed(0)
    model = lib.BertForMaskedLM(config)
    return {"shapes": {name: tuple(p.shape) for name, p in model.named_parameters()},
            "count": model.num_parameters(), "training": model.training}


@idiom
def config_class_defaults(lib, ckpt):
    return {"gpt2": fields(lib.GPT2Config(), "vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
                           "activation_function", "layer_norm_epsilon", "bos_token_id", "eos_token_id",
                           "tie_word_embeddings"),
            "bert": fields(lib.BertConfig(), "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size",
                           "layer_norm_eps", "pad_token_id")}


@idiom
def model_save_pretrained_loads_in_the_other_library(lib, ckpt):
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    folder = ckpt.tmp()
    model.save_pretrained(folder)
    other = ckpt.other(lib).AutoModelForCausalLM.from_pretrained(folder)
    _, batch, _ = _gpt2_batch(lib, ckpt.gpt2)
    with torch.no_grad():
        return {"logits": other(**batch).logits, "tied": other.get_output_embeddings().weight.data_ptr()
                == other.get_input_embeddings().weight.data_ptr()}


@idiom
def classifier_saved_with_its_new_head_reloads_identically_in_the_other_library(lib, ckpt):
    model = lib.BertForSequenceClassification.from_pretrained(ckpt.bert, num_labels=2).eval()
    folder = ckpt.tmp()
    model.save_pretrained(folder)
    other = ckpt.other(lib).AutoModelForSequenceClassification.from_pretrained(folder)
    batch = _bert_batch(lib, ckpt)
    with torch.no_grad():
        mine, theirs = model(**batch).logits, other(**batch).logits
    return {"same_logits": bool(torch.allclose(mine, theirs, atol=1e-5)), "num_labels": other.config.num_labels}


# --- embeddings and resizing -----------------------------------------------------------------------------------------


@idiom
def get_input_and_output_embeddings(lib, ckpt):
    gpt2, bert = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2), lib.AutoModel.from_pretrained(ckpt.bert)
    return {"gpt2_in": gpt2.get_input_embeddings().weight, "gpt2_out": tuple(gpt2.get_output_embeddings().weight.shape),
            "gpt2_class": type(gpt2.get_input_embeddings()).__name__,
            "bert_in": tuple(bert.get_input_embeddings().weight.shape), "bert_out": bert.get_output_embeddings()}


def _resized(model):
    return {"in": tuple(model.get_input_embeddings().weight.shape),
            "out": tuple(model.get_output_embeddings().weight.shape), "vocab_size": model.config.vocab_size,
            "tied": model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()}


@idiom
def resize_token_embeddings_to_len_tokenizer_keeps_tied_storage(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2)
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.add_tokens(["newword", "zoo-hub"])
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    old = model.get_input_embeddings().weight.detach().clone()
    torch.manual_seed(0)
    returned = model.resize_token_embeddings(len(tok))
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        logits = model(**tok(["a newword<pad>"], return_tensors="pt")).logits
    return {**_resized(model), "returned": tuple(returned.weight.shape), "new_rows": weight[len(old):].detach(),
            "old_rows_kept": torch.equal(weight[:len(old)], old), "logits": logits}


@idiom
def resize_token_embeddings_pad_to_multiple_of(lib, ckpt):
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    torch.manual_seed(1)
    model.resize_token_embeddings(423, pad_to_multiple_of=16)
    return {**_resized(model), "tail": model.get_input_embeddings().weight[-20:].detach()}


@idiom
def resize_token_embeddings_shrinks(lib, ckpt):
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    model.resize_token_embeddings(300)
    return {**_resized(model), "weight": model.get_input_embeddings().weight.detach()}


@idiom
def resize_token_embeddings_on_roberta_masked_lm(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    tok.add_tokens(["<ent>", "</ent>"])
    model = lib.AutoModelForMaskedLM.from_pretrained(ckpt.roberta)
    torch.manual_seed(2)
    model.resize_token_embeddings(len(tok))
    batch = tok(["Paris <ent>is</ent> the <mask>."], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return {**_resized(model), "logits": logits, "new_rows": model.get_input_embeddings().weight[-2:].detach()}


@idiom
def set_input_embeddings_then_tie_weights(lib, ckpt):
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    old = model.get_input_embeddings()
    torch.manual_seed(3)
    new = torch.nn.Embedding(old.num_embeddings, old.embedding_dim)
    model.set_input_embeddings(new)
    model.tie_weights()
    return {"is_new": model.get_input_embeddings() is new,
            "tied": model.get_output_embeddings().weight.data_ptr() == new.weight.data_ptr()}


# --- training-side API -----------------------------------------------------------------------------------------------


def _checkpointed_gradients(model, batch, labels):
    model.train()
    loss = model(**batch, labels=labels).loss
    loss.backward()
    plain = grads(model)
    model.zero_grad()
    model.gradient_checkpointing_enable()
    checkpointed_loss = model(**batch, labels=labels).loss
    checkpointed_loss.backward()
    return {"loss": [loss.detach(), checkpointed_loss.detach()], "plain": plain, "checkpointed": grads(model),
            "flag": model.is_gradient_checkpointing}


@idiom
def gradient_checkpointing_enable_then_backward_gpt2(lib, ckpt):
    _, batch, labels = _gpt2_batch(lib, ckpt.gpt2)
    return _checkpointed_gradients(lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2), batch, labels)


@idiom
def gradient_checkpointing_enable_then_backward_roberta(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    batch = tok(["The capital of France is <mask>.", "Hello world!"], padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return _checkpointed_gradients(lib.AutoModelForMaskedLM.from_pretrained(ckpt.roberta), batch, labels)


@idiom
def gradient_checkpointing_disable(lib, ckpt):
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    model.gradient_checkpointing_enable()
    on = model.is_gradient_checkpointing
    model.gradient_checkpointing_disable()
    return [on, model.is_gradient_checkpointing]


@idiom
def num_parameters_variants(lib, ckpt):
    gpt2, bert = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2), lib.AutoModel.from_pretrained(ckpt.bert)
    out = {"gpt2": gpt2.num_parameters(), "gpt2_no_embeddings": gpt2.num_parameters(exclude_embeddings=True),
           "bert": bert.num_parameters(), "bert_no_embeddings": bert.num_parameters(exclude_embeddings=True)}
    gpt2.get_input_embeddings().weight.requires_grad_(False)
    out["gpt2_trainable"] = gpt2.num_parameters(only_trainable=True)
    out["gpt2_trainable_no_embeddings"] = gpt2.num_parameters(only_trainable=True, exclude_embeddings=True)
    return out


@idiom
def return_dict_false_tuples(lib, ckpt):
    bert, roberta = lib.AutoModel.from_pretrained(ckpt.bert), lib.AutoModelForMaskedLM.from_pretrained(ckpt.roberta)
    gpt2 = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    masked = tok(["The capital of France is <mask>."], return_tensors="pt")
    _, batch, labels = _gpt2_batch(lib, ckpt.gpt2)
    with torch.no_grad():
        outs = {"bert": bert(**_bert_batch(lib, ckpt), return_dict=False),
                "bert_hidden": bert(**_bert_batch(lib, ckpt), return_dict=False, output_hidden_states=True),
                "roberta_loss": roberta(**masked, labels=masked["input_ids"], return_dict=False),
                "gpt2_loss": gpt2(**batch, labels=labels, return_dict=False, use_cache=False)}
    return {name: {"type": type(out).__name__, "items": list(out)} for name, out in outs.items()}


# --- configs ---------------------------------------------------------------------------------------------------------


def _common(mine: dict, theirs: dict) -> dict:
    """``mine`` on the keys both libraries write (each may write keys the other does not; docs/migrating.md lists
    them)."""
    return {key: mine[key] for key in sorted(mine.keys() & theirs.keys())}


@idiom
def config_to_json_string_on_common_keys(lib, ckpt):
    out = {}
    for name in ("bert", "gpt2", "roberta"):
        folder = getattr(ckpt, name)
        mine = lib.AutoConfig.from_pretrained(folder)
        theirs = ckpt.other(lib).AutoConfig.from_pretrained(folder)
        for diff in (True, False):
            out[f"{name}-diff-{diff}"] = _common(json.loads(mine.to_json_string(use_diff=diff)),
                                                 json.loads(theirs.to_json_string(use_diff=diff)))
    return out


@idiom
def model_config_to_json_string_after_num_labels(lib, ckpt):
    model = lib.AutoModelForSequenceClassification.from_pretrained(ckpt.bert, num_labels=2)
    other = ckpt.other(lib).AutoConfig.from_pretrained(ckpt.bert, num_labels=2)
    return _common(json.loads(model.config.to_json_string()), json.loads(other.to_json_string()))


@idiom
def config_save_pretrained_then_auto_config_of_the_other_library(lib, ckpt):
    config = lib.AutoConfig.from_pretrained(ckpt.bert, num_labels=3, hidden_dropout_prob=0.25)
    folder = ckpt.tmp()
    config.save_pretrained(folder)
    back = ckpt.other(lib).AutoConfig.from_pretrained(folder)
    return {"class": type(back).__name__, "fields": fields(back, "model_type", "vocab_size", "hidden_size",
                                                           "num_hidden_layers", "num_labels", "id2label", "label2id",
                                                           "hidden_dropout_prob", "max_position_embeddings")}


@idiom
def config_to_dict_and_attribute_access(lib, ckpt):
    config = lib.AutoConfig.from_pretrained(ckpt.gpt2)
    as_dict = config.to_dict()
    keys = ("model_type", "vocab_size", "n_embd", "n_layer", "n_head", "n_positions", "bos_token_id", "eos_token_id")
    aliases = fields(config, "hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings")
    return {"dict": {key: as_dict[key] for key in keys}, "aliases": aliases}
