"""Tokenizer idioms: concrete classes, settable special tokens and sides, added tokens and their round trips through
save_pretrained in both directions, pairs in every spelling, text_target, model_max_length, vocabulary accessors,
decoding, and AutoTokenizer on a folder without config.json (tokenizer_class resolution)."""

from __future__ import annotations

from tests.compat.idiom import idiom

BERT_TEXTS = ["hello world", "i love python bugs", "the café is naïve über 中国"]
GPT2_TEXTS = ["Hello world! The quick brown fox.", "What is the capital", "café naïve 😀 12345"]
LONG_BERT = " ".join(["hello world i love python"] * 30)


def _encode(tok, *args, **kwargs):
    return dict(tok(*args, **kwargs))


# --- concrete classes ------------------------------------------------------------------------------------------------


@idiom
def bert_tokenizer_class_from_pretrained(lib, ckpt):
    tok = lib.BertTokenizer.from_pretrained(ckpt.bert)
    return {"class": type(tok).__name__, "batch": _encode(tok, BERT_TEXTS), "tokens": tok.tokenize(BERT_TEXTS[2]),
            "len": len(tok), "lower": tok("HELLO World")["input_ids"]}


@idiom
def gpt2_tokenizer_class_on_both_file_layouts(lib, ckpt):
    files, single = lib.GPT2Tokenizer.from_pretrained(ckpt.gpt2), lib.GPT2Tokenizer.from_pretrained(ckpt.gpt2_json)
    return {"files": _encode(files, GPT2_TEXTS), "json": _encode(single, GPT2_TEXTS), "eos": files.eos_token_id,
            "len": [len(files), len(single)], "class": type(single).__name__}


@idiom
def roberta_tokenizer_class_from_pretrained(lib, ckpt):
    tok = lib.RobertaTokenizer.from_pretrained(ckpt.roberta)
    return {"class": type(tok).__name__, "batch": _encode(tok, GPT2_TEXTS, padding=True),
            "mask": [tok.mask_token, tok.mask_token_id], "masked": tok("The capital is <mask>.")["input_ids"]}


@idiom
def auto_tokenizer_without_config_json_resolves_tokenizer_class(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta_vocab_only)
    return {"class": type(tok).__name__, "ids": tok(GPT2_TEXTS)["input_ids"], "pair": _encode(tok, "Hello", "world"),
            "specials": [tok.bos_token, tok.eos_token, tok.pad_token, tok.mask_token, tok.cls_token, tok.sep_token],
            "max": tok.model_max_length}


@idiom
def auto_tokenizer_batch_with_padding_truncation_tensors(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    return dict(tok(BERT_TEXTS, padding=True, truncation=True, max_length=6, return_tensors="pt"))


@idiom
def padding_to_max_length_and_numpy_tensors(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    return dict(tok(BERT_TEXTS[:2], padding="max_length", max_length=10, return_tensors="np"))


# --- special tokens and sides people set -----------------------------------------------------------------------------


@idiom
def pad_token_set_to_eos_token_then_padded_batch(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2)
    before = tok.pad_token
    tok.pad_token = tok.eos_token
    return {"before": before, "pad": [tok.pad_token, tok.pad_token_id],
            "batch": dict(tok(GPT2_TEXTS, padding=True, return_tensors="pt"))}


@idiom
def padding_side_left_for_generation(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2_json)
    tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return {"side": tok.padding_side, "batch": dict(tok(GPT2_TEXTS, padding=True, return_tensors="pt"))}


@idiom
def padding_side_as_from_pretrained_option(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert, padding_side="left")
    return {"side": tok.padding_side, "batch": _encode(tok, BERT_TEXTS, padding=True)}


@idiom
def truncation_side_left(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    tok.truncation_side = "left"
    return {"side": tok.truncation_side, "batch": _encode(tok, BERT_TEXTS, truncation=True, max_length=5),
            "pair": _encode(tok, BERT_TEXTS[1], BERT_TEXTS[2], truncation="only_second", max_length=9)}


@idiom
def special_token_ids_settable(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2_json)
    tok.pad_token_id = tok.convert_tokens_to_ids("Ġthe")
    tok.bos_token = "Hello"
    return {"pad": [tok.pad_token, tok.pad_token_id], "bos": [tok.bos_token, tok.bos_token_id],
            "batch": _encode(tok, GPT2_TEXTS[:2], padding=True)}


@idiom
def every_special_token_and_id_settable(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    tok.sep_token = "[MASK]"
    tok.cls_token_id = tok.convert_tokens_to_ids("the")
    tok.unk_token = "the"
    tok.mask_token = "[NEWMASK]"
    tok.eos_token = "[SEP]"
    return {"pair": tok("hello café", "world")["input_ids"],
            "tokens": [tok.sep_token, tok.cls_token, tok.unk_token, tok.mask_token, tok.eos_token],
            "ids": [tok.sep_token_id, tok.cls_token_id, tok.unk_token_id, tok.mask_token_id, tok.eos_token_id],
            "len": len(tok), "specials": tok.all_special_tokens}


@idiom
def model_max_length_drives_truncation_true(lib, ckpt):
    bert = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    roberta = lib.AutoTokenizer.from_pretrained(ckpt.roberta_vocab_only)
    long_gpt2 = " ".join(GPT2_TEXTS * 8)
    return {"max": [bert.model_max_length, roberta.model_max_length],
            "bert": bert(LONG_BERT, truncation=True)["input_ids"],
            "roberta": roberta(long_gpt2, truncation=True)["input_ids"],
            "untruncated": len(bert(LONG_BERT)["input_ids"])}


# --- added tokens ----------------------------------------------------------------------------------------------------


@idiom
def add_tokens_counts_and_splits_on_them(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2)
    added = tok.add_tokens(["newword", "zoo-hub", "Hello"])  # "Hello" is in the vocab: not added again
    text = "a newword here, zoo-hub and Hello world"
    return {"added": added, "len": len(tok), "vocab_size": tok.vocab_size, "ids": tok(text)["input_ids"],
            "tokens": tok.tokenize(text), "decoded": tok.decode(tok(text)["input_ids"])}


@idiom
def add_tokens_as_special_tokens(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    added = tok.add_tokens(["[NEW1]", "[NEW2]"], special_tokens=True)
    ids = tok("hello [NEW1] world[NEW2]")["input_ids"]
    return {"added": added, "len": len(tok), "ids": ids, "skip": tok.decode(ids, skip_special_tokens=True),
            "keep": tok.decode(ids)}


@idiom
def add_special_tokens_pad_and_additional(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2)
    added = tok.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": ["<x1>", "<x2>"]})
    ids = tok("Hello<x1> world <x2>")["input_ids"]
    return {"added": added, "len": len(tok), "pad": [tok.pad_token, tok.pad_token_id], "ids": ids,
            "specials": tok.all_special_tokens, "special_ids": tok.all_special_ids,
            "skip": tok.decode(ids, skip_special_tokens=True),
            "padded": dict(tok(GPT2_TEXTS, padding=True, return_tensors="pt"))}


@idiom
def added_tokens_survive_save_pretrained_in_both_directions(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2_json)
    tok.add_tokens(["newword", "zoo-hub"])
    tok.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": ["<x1>"]})
    folder = ckpt.tmp()
    tok.save_pretrained(folder)
    text = "a newword<x1> zoo-hub<pad>"
    same, other = lib.AutoTokenizer.from_pretrained(folder), ckpt.other(lib).AutoTokenizer.from_pretrained(folder)
    return {"len": [len(tok), len(same), len(other)], "ids": [tok(text)["input_ids"], same(text)["input_ids"],
            other(text)["input_ids"]], "pad": [same.pad_token_id, other.pad_token_id],
            "specials": [same.all_special_tokens, other.all_special_tokens]}


@idiom
def added_special_token_on_bert_survives_round_trip(lib, ckpt):
    tok = lib.BertTokenizer.from_pretrained(ckpt.bert)
    tok.add_special_tokens({"additional_special_tokens": ["[ENT]"]})
    tok.add_tokens(["pythonic"])
    folder = ckpt.tmp()
    tok.save_pretrained(folder)
    text = "i love [ENT] pythonic bugs"
    other = ckpt.other(lib).AutoTokenizer.from_pretrained(folder)
    return {"ids": [tok(text)["input_ids"], other(text)["input_ids"]], "len": [len(tok), len(other)],
            "lower": other("PYTHONIC")["input_ids"]}


# --- pairs, targets --------------------------------------------------------------------------------------------------


@idiom
def pair_as_text_and_text_pair(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    return {"positional": _encode(tok, BERT_TEXTS[0], BERT_TEXTS[1]),
            "keyword": _encode(tok, text=BERT_TEXTS[0], text_pair=BERT_TEXTS[1]),
            "lists": _encode(tok, BERT_TEXTS[:2], BERT_TEXTS[1:], padding=True)}


@idiom
def pairs_as_a_list_of_tuples(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    pairs = [(BERT_TEXTS[0], BERT_TEXTS[1]), (BERT_TEXTS[2], "the bugs")]
    return dict(tok(pairs, padding=True, truncation=True, max_length=9, return_tensors="pt"))


@idiom
def pairs_as_a_list_of_lists(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    pairs = [[GPT2_TEXTS[0], GPT2_TEXTS[1]], [GPT2_TEXTS[2], "Paris"]]
    return _encode(tok, pairs, padding=True)


@idiom
def text_target_returns_labels(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.bert)
    single = tok(BERT_TEXTS[0], text_target=BERT_TEXTS[1])
    batch = tok(BERT_TEXTS[:2], text_target=BERT_TEXTS[1:], padding=True, truncation=True, max_length=8)
    only = tok(text_target=BERT_TEXTS[2])
    return {"single": dict(single), "batch": dict(batch), "only_target": dict(only)}


# --- vocabulary and decoding -----------------------------------------------------------------------------------------


@idiom
def get_vocab_vocab_size_and_len(lib, ckpt):
    out = {}
    for name in ("bert", "gpt2", "roberta_vocab_only"):
        tok = lib.AutoTokenizer.from_pretrained(getattr(ckpt, name))
        out[name] = {"vocab": tok.get_vocab(), "vocab_size": tok.vocab_size, "len": len(tok)}
    return out


@idiom
def all_special_tokens_and_ids(lib, ckpt):
    out = {}
    for name in ("bert", "gpt2", "roberta"):
        tok = lib.AutoTokenizer.from_pretrained(getattr(ckpt, name))
        out[name] = {"tokens": tok.all_special_tokens, "ids": tok.all_special_ids, "map": tok.special_tokens_map}
    return out


@idiom
def convert_tokens_to_string_and_ids(lib, ckpt):
    out = {}
    for name, text in (("bert", BERT_TEXTS[2]), ("gpt2", GPT2_TEXTS[2]), ("roberta", GPT2_TEXTS[0])):
        tok = lib.AutoTokenizer.from_pretrained(getattr(ckpt, name))
        tokens = tok.tokenize(text)
        ids = tok.convert_tokens_to_ids(tokens)
        out[name] = {"string": tok.convert_tokens_to_string(tokens), "ids": ids,
                     "back": tok.convert_ids_to_tokens(ids), "one": tok.convert_tokens_to_ids(tokens[0])}
    return out


@idiom
def decode_and_batch_decode_with_skip_special_tokens(lib, ckpt):
    out = {}
    for name, texts in (("bert", BERT_TEXTS), ("roberta", GPT2_TEXTS)):
        tok = lib.AutoTokenizer.from_pretrained(getattr(ckpt, name))
        batch = tok(texts, padding=True, return_tensors="pt")["input_ids"]
        out[name] = {"keep": tok.batch_decode(batch), "skip": tok.batch_decode(batch, skip_special_tokens=True),
                     "one": tok.decode(batch[0], skip_special_tokens=True), "list": tok.decode(batch[1].tolist())}
    return out


@idiom
def encode_without_special_tokens_and_offsets(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.roberta)
    encoded = tok(GPT2_TEXTS[0], return_offsets_mapping=True, return_special_tokens_mask=True)
    return {"encode": tok.encode(GPT2_TEXTS[0], add_special_tokens=False), "with": tok.encode(GPT2_TEXTS[1]),
            "offsets": encoded["offset_mapping"], "special": encoded["special_tokens_mask"]}
