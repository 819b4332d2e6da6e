"""The RoBERTa plugin against transformers on the very same files.

Checkpoints: small random transformers models of several configs (sizes, activations, a distilroberta-like 6-layer
one, untied embeddings, another pad_token_id), every tensor re-drawn at a larger scale than transformers' init so a
wrong or unused tensor shows in the outputs. Batches are padded on the left and on the right, so position ids that
skip padding are exercised. Tokenizer files: a small byte-level BPE trained here with ``tokenizers`` on text with
whitespace runs, emoji, CJK and control characters, written as vocab.json + merges.txt and as tokenizer.json (the
layouts the Hub publishes), and compared with transformers' RobertaTokenizer on the same folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

import zoo
from zoo.errors import ConfigError, TokenizerError
from zoo.plugins.roberta import modeling as zoo_roberta
from zoo.plugins.roberta.config import RobertaConfig
from tests.checkpoints import assert_outputs_equal

ATOL = RTOL = 1e-5

# --- tokenizer files -----------------------------------------------------------------------------------------------------

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3 as in roberta-base; <mask> is the last id, as there
CORPUS = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "  multiple   spaces\tand\ttabs\n\nnew lines \r\n and trailing   ",
    "emoji 😀🎉👍🏽 👨‍👩‍👧 and CJK 中文字符 日本語のテキスト 한국어",
    "control \x00\x01\x07\x1b\x7f chars, café naïve über, it's don't we'll",
    "Paris is the <mask> of France. Numbers 12345 and 3.14159!",
]
EDGE_TEXTS = [
    "Hello world",
    " Hello   world  ",
    "tabs\tand\nnewlines\r\n\n  end",
    "emoji 😀🎉 👍🏽 👨‍👩‍👧!",
    "中文字符 日本語 한국어 混合 mixed",
    "control \x00\x01\x07\x1b\x7f chars",
    "café naïve über",
    "unseen Жизнь عربى 🦀",
    "Paris is the <mask> of France.",
    "a<mask>b  <mask>   c",
    "<s>literal specials</s><pad>",
    "",
    "   ",
]
PAIRS = [("How are you?", "Fine, thanks 😀"), ("  spaces  ", "中文"), ("", "only second"), ("<mask> x", "y <mask>")]


def _train_bpe() -> tuple[dict[str, int], list[str]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(CORPUS * 4, trainer)
    data = json.loads(backend.to_str())["model"]
    vocab = dict(data["vocab"])
    vocab["<mask>"] = len(vocab)
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    return vocab, merges


def _roberta_tokenizer_json(vocab: dict[str, int], merges: list[str]) -> str:
    """tokenizer.json laid out as roberta-base's: ByteLevel, RobertaProcessing, ``<mask>`` with lstrip."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    backend = Tokenizer(models.BPE(vocab, [tuple(m.split(" ")) for m in merges], continuing_subword_prefix="",
                                   end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    backend.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    return backend.to_str()


@pytest.fixture(scope="session")
def bpe_files(tmp_path_factory) -> dict[str, Path]:
    """Folders of one vocabulary in the layouts RoBERTa repos use (each with a config.json of model_type roberta)."""
    vocab, merges = _train_bpe()
    root = tmp_path_factory.mktemp("roberta-tokenizers")
    config = json.dumps({"model_type": "roberta", "vocab_size": len(vocab)})
    mask_lstrip = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    layouts = {
        "vocab-files": {"tokenizer_config.json": {"tokenizer_class": "RobertaTokenizer", "model_max_length": 24}},
        "vocab-files-prefix-space": {"tokenizer_config.json": {"tokenizer_class": "RobertaTokenizer", "add_prefix_space": True}},
        "vocab-files-mask-lstrip": {"tokenizer_config.json": {"tokenizer_class": "RobertaTokenizer",
                                                              "added_tokens_decoder": {str(vocab["<mask>"]): mask_lstrip}}},
        "vocab-files-special-map": {"special_tokens_map.json": {"mask_token": mask_lstrip}},
        "tokenizer-json": {"tokenizer.json": None},
        "tokenizer-json-prefix-space": {"tokenizer.json": None, "tokenizer_config.json": {"add_prefix_space": True}},
    }
    folders = {}
    for name, files in layouts.items():
        folder = root / name
        folder.mkdir()
        (folder / "config.json").write_text(config)
        if "tokenizer.json" in files:
            (folder / "tokenizer.json").write_text(_roberta_tokenizer_json(vocab, merges), encoding="utf-8")
        else:
            (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        for file, content in files.items():
            if content is not None:
                (folder / file).write_text(json.dumps(content))
        folders[name] = folder
    return folders


VOCAB_SIZE = 361  # what _train_bpe gives (360 + <mask>); checked in test_tokenizer_files_are_what_the_tests_assume


def load_both(folder: Path, **kwargs):
    return zoo.AutoTokenizer.from_pretrained(folder, **kwargs), transformers.AutoTokenizer.from_pretrained(folder, **kwargs)


def assert_encodings_equal(got, expected, keys=("input_ids", "attention_mask", "offset_mapping", "special_tokens_mask")) -> None:
    for key in keys:
        if key in expected:
            value, reference = got[key], expected[key]
            if hasattr(reference, "tolist"):
                value, reference = value.tolist(), reference.tolist()
            assert value == reference, key
    assert set(got) == set(expected)


# --- tokenizer ---------------------------------------------------------------------------------------------------------------


def test_tokenizer_files_are_what_the_tests_assume(bpe_files):
    zoo_tok, hf_tok = load_both(bpe_files["vocab-files"])
    assert type(hf_tok).__name__ == "RobertaTokenizer"
    assert len(zoo_tok) == len(hf_tok) == VOCAB_SIZE
    assert (zoo_tok.bos_token_id, zoo_tok.pad_token_id, zoo_tok.eos_token_id, zoo_tok.mask_token_id) == (0, 1, 2, VOCAB_SIZE - 1)
    assert zoo_tok.cls_token == "<s>" and zoo_tok.sep_token == "</s>" and zoo_tok.unk_token == "<unk>"
    assert zoo_tok.model_input_names == ("input_ids", "attention_mask")


@pytest.mark.parametrize("layout", ["vocab-files", "vocab-files-prefix-space", "vocab-files-mask-lstrip",
                                    "vocab-files-special-map", "tokenizer-json", "tokenizer-json-prefix-space"])
def test_tokenizer_matches_transformers_on_byte_level_edge_cases(bpe_files, layout):
    zoo_tok, hf_tok = load_both(bpe_files[layout])
    options = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for text in EDGE_TEXTS:
        got, expected = zoo_tok(text, **options), hf_tok(text, **options)
        assert_encodings_equal(got, expected)
        assert zoo_tok.tokenize(text) == hf_tok.tokenize(text), text
        for skip in (False, True):
            assert zoo_tok.decode(got["input_ids"], skip_special_tokens=skip) == hf_tok.decode(expected["input_ids"], skip_special_tokens=skip)
    for a, b in PAIRS:
        got = zoo_tok(a, b, return_token_type_ids=True, **options)
        assert_encodings_equal(got, hf_tok(a, b, return_token_type_ids=True, **options),
                               keys=("input_ids", "attention_mask", "offset_mapping", "special_tokens_mask", "token_type_ids"))


@pytest.mark.parametrize("layout", ["vocab-files", "tokenizer-json"])
def test_decode_round_trips_byte_level_text(bpe_files, layout):
    """Byte-level BPE loses nothing: every text comes back byte for byte (specials only framed around it)."""
    zoo_tok, _ = load_both(bpe_files[layout])
    for text in [t for t in EDGE_TEXTS if "<" not in t] + ["\x00\x01\x02\x1f", "\u200b\u2028\ufeff", "🏳️‍🌈 e\u0301"]:
        ids = zoo_tok.encode(text)
        assert ids[0] == zoo_tok.cls_token_id and ids[-1] == zoo_tok.sep_token_id
        assert zoo_tok.decode(ids, skip_special_tokens=True) == text
        assert zoo_tok.decode(ids) == f"<s>{text}</s>"


def test_mask_token_strips_the_space_before_it_when_the_files_say_so(bpe_files):
    mask_id = VOCAB_SIZE - 1
    for layout, strips in [("vocab-files", False), ("vocab-files-mask-lstrip", True), ("vocab-files-special-map", True),
                           ("tokenizer-json", True)]:
        zoo_tok, hf_tok = load_both(bpe_files[layout])
        ids = zoo_tok("Paris is the <mask> of France.")["input_ids"]
        assert ids == hf_tok("Paris is the <mask> of France.")["input_ids"]
        before = zoo_tok.convert_ids_to_tokens(ids[ids.index(mask_id) - 1])
        assert before.endswith("Ġ") != strips, layout  # "Ġ" is the byte-level space


@pytest.mark.parametrize("layout", ["vocab-files", "tokenizer-json"])
def test_batches_padding_and_truncation_match_transformers(bpe_files, layout):
    zoo_tok, hf_tok = load_both(bpe_files[layout])
    texts = EDGE_TEXTS[:7]
    cases = [
        dict(padding=True),
        dict(padding=True, padding_side="left"),
        dict(padding="max_length", max_length=40, truncation=True),
        dict(truncation=True, max_length=8),
        dict(padding=True, pad_to_multiple_of=8, return_tensors="pt"),
    ]
    for options in cases:
        assert_encodings_equal(zoo_tok(texts, **options), hf_tok(texts, **options))
    firsts, seconds = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    for options in [dict(padding=True), dict(truncation="only_second", max_length=18, padding=True),
                    dict(truncation="longest_first", max_length=7)]:
        assert_encodings_equal(zoo_tok(firsts, seconds, **options), hf_tok(firsts, seconds, **options))
    long = " ".join(EDGE_TEXTS)
    options = dict(truncation=True, max_length=12, stride=3, return_overflowing_tokens=True)
    got, expected = zoo_tok(long, **options), hf_tok(long, **options)
    assert got["input_ids"] == expected["input_ids"]
    assert got["overflow_to_sample_mapping"] == expected["overflow_to_sample_mapping"]


def test_add_prefix_space_keyword_and_split_words_match_transformers(bpe_files):
    words = [["Hello", "world", "😀"], ["中文", "  spaced", "x"]]
    for layout in ("vocab-files", "tokenizer-json"):
        zoo_tok, hf_tok = load_both(bpe_files[layout], add_prefix_space=True)
        for text in EDGE_TEXTS[:4]:
            assert zoo_tok(text, return_offsets_mapping=True) == hf_tok(text, return_offsets_mapping=True).data
        got = zoo_tok(words, is_split_into_words=True, padding=True)
        expected = hf_tok(words, is_split_into_words=True, padding=True)
        assert_encodings_equal(got, expected)
        assert [got.word_ids(i) for i in range(2)] == [expected.word_ids(i) for i in range(2)]


def test_saved_tokenizer_loads_in_transformers_and_zoo(bpe_files, tmp_path):
    for layout in ("vocab-files-prefix-space", "vocab-files-mask-lstrip"):
        zoo_tok, hf_tok = load_both(bpe_files[layout])
        out = tmp_path / layout
        zoo_tok.save_pretrained(out)
        shutil.copy(bpe_files[layout] / "config.json", out / "config.json")
        zoo_again, hf_again = load_both(out)
        for text in EDGE_TEXTS:
            expected = hf_tok(text)["input_ids"]
            assert zoo_again(text)["input_ids"] == hf_again(text)["input_ids"] == expected, (layout, text)


def test_missing_or_broken_tokenizer_files_are_clear_errors(bpe_files, tmp_path):
    folder = tmp_path / "no-merges"
    folder.mkdir()
    shutil.copy(bpe_files["vocab-files"] / "config.json", folder)
    shutil.copy(bpe_files["vocab-files"] / "vocab.json", folder)
    with pytest.raises(TokenizerError, match="merges.txt"):
        zoo.AutoTokenizer.from_pretrained(folder)
    (folder / "merges.txt").write_text("#version: 0.2\nnot-a-merge-line\n")
    with pytest.raises(TokenizerError, match="byte-level BPE"):
        zoo.AutoTokenizer.from_pretrained(folder)
    with pytest.raises(TokenizerError, match="cls_token=None"):
        zoo.AutoTokenizer.from_pretrained(bpe_files["tokenizer-json"], cls_token=None)


# --- model checkpoints -------------------------------------------------------------------------------------------------------

TINY_ROBERTA = dict(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    max_position_embeddings=40, type_vocab_size=1, layer_norm_eps=1e-5)

#: Configs that differ where the code could go wrong: sizes, depth, activation, token types, tying, padding index.
CONFIGS = {
    "tiny-gelu": {},
    "wide-gelu_new-2types": dict(hidden_size=48, num_attention_heads=6, num_hidden_layers=3, intermediate_size=64,
                                 hidden_act="gelu_new", type_vocab_size=2, layer_norm_eps=1e-12),
    "distilroberta-like-6-layers": dict(hidden_size=24, num_attention_heads=3, num_hidden_layers=6, intermediate_size=40),
    "narrow-relu-untied-pad0": dict(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=24,
                                    hidden_act="relu", tie_word_embeddings=False, pad_token_id=0, bos_token_id=3,
                                    classifier_dropout=0.3),
}

HF_CLASSES = {
    "base": "RobertaModel",
    "masked-lm": "RobertaForMaskedLM",
    "sequence-classification": "RobertaForSequenceClassification",
    "token-classification": "RobertaForTokenClassification",
    "question-answering": "RobertaForQuestionAnswering",
}
ZOO_CLASSES = {task: getattr(zoo_roberta, name) for task, name in HF_CLASSES.items()}
AUTO_CLASSES = {
    "base": zoo.AutoModel,
    "masked-lm": zoo.AutoModelForMaskedLM,
    "sequence-classification": zoo.AutoModelForSequenceClassification,
    "token-classification": zoo.AutoModelForTokenClassification,
    "question-answering": zoo.AutoModelForQuestionAnswering,
}


def make_roberta(folder: Path, task: str = "base", seed: int = 0, **overrides) -> transformers.PreTrainedModel:
    """Save a transformers RoBERTa for ``task`` with every tensor re-drawn (seeded); return transformers' reload (eval)."""
    torch.manual_seed(seed)
    config = transformers.RobertaConfig(**{**TINY_ROBERTA, **overrides})
    hf = getattr(transformers, HF_CLASSES[task])(config).eval()
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in hf.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * 0.2
            param.copy_(1 + noise if name.endswith(("LayerNorm.weight", "layer_norm.weight")) else noise)
    hf.save_pretrained(folder)
    return type(hf).from_pretrained(folder, attn_implementation="eager").eval()


def make_batch(config: dict, side: str = "right", seed: int = 0, batch: int = 3, length: int = 9) -> dict[str, torch.Tensor]:
    """input_ids framed by bos/eos, padded with pad_token_id on one side to different lengths."""
    full = {**TINY_ROBERTA, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, **config}
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, full["vocab_size"], (batch, length), generator=generator)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate([length, length - 3, 3][:batch]):
        real = slice(0, n) if side == "right" else slice(length - n, length)
        mask[row, real] = 1
        ids[row, real.start], ids[row, real.stop - 1] = full["bos_token_id"], full["eos_token_id"]
    ids[mask == 0] = full["pad_token_id"]
    out = {"input_ids": ids, "attention_mask": mask}
    if full["type_vocab_size"] > 1:
        out["token_type_ids"] = torch.randint(0, full["type_vocab_size"], (batch, length), generator=generator) * mask
    return out


# --- every head, every config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("task", list(HF_CLASSES))
def test_every_head_matches_transformers(tmp_path, task, config_name):
    overrides = CONFIGS[config_name]
    hf = make_roberta(tmp_path, task, **overrides)
    model = AUTO_CLASSES[task].from_pretrained(tmp_path)
    assert type(model) is ZOO_CLASSES[task] and not model.training
    for side in ("right", "left"):
        batch = make_batch(overrides, side)
        with torch.no_grad():
            expected = hf(**batch, output_hidden_states=True, output_attentions=True)
            got = model(**batch, output_hidden_states=True, output_attentions=True)
            fast = model(**batch)  # the scaled_dot_product_attention path
        assert_outputs_equal(got, expected)
        assert len(got.hidden_states) == overrides.get("num_hidden_layers", 2) + 1
        main = [k for k in expected.keys() if k not in ("hidden_states", "attentions", "cross_attentions")]
        assert_outputs_equal(fast, expected, keys=main)


def test_parameter_names_are_transformers_checkpoint_keys(tmp_path):
    for task in HF_CLASSES:
        hf = make_roberta(tmp_path / task, task)
        model = ZOO_CLASSES[task].from_pretrained(tmp_path / task)
        assert set(model.state_dict()) == set(hf.state_dict()) - {"roberta.embeddings.position_ids",
                                                                  "roberta.embeddings.token_type_ids",
                                                                  "embeddings.position_ids", "embeddings.token_type_ids"}


def test_positions_skip_padding_so_left_and_right_padding_agree(tmp_path):
    make_roberta(tmp_path, "base")
    model = zoo_roberta.RobertaModel.from_pretrained(tmp_path)
    right = make_batch({}, "right")
    # The same rows moved to the right end: left padding.
    lengths = right["attention_mask"].sum(dim=1)
    left = {k: torch.stack([row.roll(int(9 - n)) for row, n in zip(v, lengths)]) for k, v in right.items()}
    assert left["attention_mask"][2].tolist() == [0] * 6 + [1] * 3
    assert zoo_roberta.create_position_ids(left["input_ids"], 1)[2].tolist() == [1] * 6 + [2, 3, 4]
    assert zoo_roberta.create_position_ids(right["input_ids"], 1)[2].tolist() == [2, 3, 4] + [1] * 6
    with torch.no_grad():
        a, b = model(**right).last_hidden_state, model(**left).last_hidden_state
        alone = model(right["input_ids"][1:2, :6]).last_hidden_state
    torch.testing.assert_close(a[1, :6], b[1, 3:], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(a[1, :6], alone[0], atol=ATOL, rtol=RTOL)


def test_inputs_embeds_and_explicit_position_ids_match_transformers(tmp_path):
    hf = make_roberta(tmp_path, "masked-lm")
    model = zoo_roberta.RobertaForMaskedLM.from_pretrained(tmp_path)
    batch = make_batch({}, "left")
    embeds = torch.randn(3, 9, 32, generator=torch.Generator().manual_seed(3))
    positions = torch.arange(2, 11).flip(0).expand(3, 9)
    with torch.no_grad():
        assert_outputs_equal(model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]),
                             hf(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))
        assert_outputs_equal(model(**batch, position_ids=positions), hf(**batch, position_ids=positions))
        # The same tokens as ids or as their embeddings: equal without padding (embeddings cannot show padding).
        ids = batch["input_ids"][:1]
        via_ids = model(ids).logits
        via_embeds = model(inputs_embeds=model.roberta.embeddings.word_embeddings(ids)).logits
    torch.testing.assert_close(via_ids, via_embeds, atol=ATOL, rtol=RTOL)


def test_longest_input_is_max_positions_minus_padding_idx_minus_one(tmp_path):
    make_roberta(tmp_path, "base")  # max_position_embeddings 40, pad 1: 38 tokens fit
    model = zoo_roberta.RobertaModel.from_pretrained(tmp_path)
    with torch.no_grad():
        assert model(torch.full((1, 38), 5)).last_hidden_state.shape == (1, 38, 32)
        assert model(torch.cat([torch.full((1, 2), 1), torch.full((1, 38), 5)], dim=1)).last_hidden_state.shape == (1, 40, 32)
        with pytest.raises(ValueError, match="39 tokens.*pad_token_id 1.*at most 38.*truncat"):
            model(torch.full((1, 39), 5))
        with pytest.raises(ValueError, match="at most 38"):
            model(inputs_embeds=torch.zeros(1, 39, 32))


# --- losses --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", ["tiny-gelu", "narrow-relu-untied-pad0"])
def test_masked_lm_loss_and_gradients_match(tmp_path, config_name):
    overrides = CONFIGS[config_name]
    hf = make_roberta(tmp_path, "masked-lm", **overrides)
    model = zoo_roberta.RobertaForMaskedLM.from_pretrained(tmp_path)
    tied = overrides.get("tie_word_embeddings", True)
    assert (model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight) == tied
    assert (model.lm_head.decoder.bias is model.lm_head.bias) == tied
    batch = make_batch(overrides, "left")
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 2], labels[1, 4], labels[2, 7] = 7, 30, 11
    got, expected = model(**batch, labels=labels), hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, keys=["loss", "logits"])
    got.loss.backward()
    expected.loss.backward()
    for name in ("roberta.embeddings.word_embeddings.weight", "roberta.embeddings.position_embeddings.weight",
                 "lm_head.dense.weight", "lm_head.decoder.bias"):
        torch.testing.assert_close(model.get_parameter(name).grad, hf.get_parameter(name).grad, atol=ATOL, rtol=RTOL,
                                   msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize(("num_labels", "problem_type"), [(1, None), (3, None), (4, "multi_label_classification")])
def test_sequence_classification_loss_matches(tmp_path, num_labels, problem_type):
    hf = make_roberta(tmp_path, "sequence-classification", num_labels=num_labels, problem_type=problem_type)
    model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    batch = make_batch({})
    generator = torch.Generator().manual_seed(7)
    labels = {1: torch.randn(3, generator=generator), 3: torch.tensor([0, 2, 1]),
              4: torch.randint(0, 2, (3, 4), generator=generator).float()}[num_labels]
    with torch.no_grad():
        got, expected = model(**batch, labels=labels), hf(**batch, labels=labels)
    assert_outputs_equal(got, expected, keys=["loss", "logits"])
    assert model.config.problem_type == hf.config.problem_type


def test_token_classification_and_question_answering_losses_match(tmp_path):
    hf = make_roberta(tmp_path / "tok", "token-classification", num_labels=5)
    model = zoo_roberta.RobertaForTokenClassification.from_pretrained(tmp_path / "tok")
    batch = make_batch({}, "left")
    labels = torch.randint(0, 5, batch["input_ids"].shape, generator=torch.Generator().manual_seed(1))
    labels[batch["attention_mask"] == 0] = -100
    with torch.no_grad():
        assert_outputs_equal(model(**batch, labels=labels), hf(**batch, labels=labels), keys=["loss", "logits"])
    hf = make_roberta(tmp_path / "qa", "question-answering")
    model = zoo_roberta.RobertaForQuestionAnswering.from_pretrained(tmp_path / "qa")
    spans = dict(start_positions=torch.tensor([1, 50, 0]), end_positions=torch.tensor([3, 4, -2]))
    with torch.no_grad():
        assert_outputs_equal(model(**batch, **spans), hf(**batch, **spans), keys=["loss", "start_logits", "end_logits"])


# --- saving, loading, Auto -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", ["tiny-gelu", "narrow-relu-untied-pad0"])
def test_zoo_saves_what_transformers_loads(tmp_path, config_name):
    overrides = CONFIGS[config_name]
    config = RobertaConfig(**{**TINY_ROBERTA, **overrides})
    for task in ("masked-lm", "sequence-classification"):
        torch.manual_seed(0)
        model = zoo.AutoModelForMaskedLM.from_config(config) if task == "masked-lm" else \
            zoo.AutoModelForSequenceClassification.from_config(config)
        model.eval().save_pretrained(tmp_path / task)
        hf, info = getattr(transformers, HF_CLASSES[task]).from_pretrained(tmp_path / task, output_loading_info=True)
        assert not any(info.values()), info
        batch = make_batch(overrides, "left")
        with torch.no_grad():
            assert_outputs_equal(model(**batch), hf.eval()(**batch), keys=["logits"])
        again = ZOO_CLASSES[task].from_pretrained(tmp_path / task)
        assert again.config == model.config


def test_fresh_model_is_initialised_like_transformers():
    model = zoo_roberta.RobertaForMaskedLM.from_config(RobertaConfig(**TINY_ROBERTA))
    assert torch.count_nonzero(model.roberta.embeddings.position_embeddings.weight[1]) == 0  # the padding row
    assert torch.count_nonzero(model.roberta.embeddings.word_embeddings.weight[1]) == 0
    assert torch.count_nonzero(model.lm_head.bias) == 0


def test_base_checkpoint_under_a_head_and_head_checkpoint_under_the_base(tmp_path, caplog_warnings):
    make_roberta(tmp_path / "base", "base")
    model, info = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=3, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(f"classifier.{p}.{w}" for p in ("dense", "out_proj") for w in ("weight", "bias"))
    assert sorted(info["unexpected_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    hf = make_roberta(tmp_path / "mlm", "masked-lm")
    base, info = zoo.AutoModel.from_pretrained(tmp_path / "mlm", output_loading_info=True)
    assert info["missing_keys"] == ["pooler.dense.weight", "pooler.dense.bias"]
    batch = make_batch({})
    with torch.no_grad():
        torch.testing.assert_close(base(**batch).last_hidden_state, hf.roberta(**batch).last_hidden_state, atol=ATOL, rtol=RTOL)


def test_tokenizer_and_model_end_to_end_match_transformers(bpe_files, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(bpe_files["tokenizer-json"], folder)
    hf = make_roberta(folder, "masked-lm")
    zoo_tok, hf_tok = load_both(folder)
    model = zoo.AutoModelForMaskedLM.from_pretrained(folder)
    texts = ["Paris is the <mask> of France.", "emoji 😀 and 中文 <mask>", "x"]
    for side in ("left", "right"):
        got = zoo_tok(texts, padding=True, padding_side=side, return_tensors="pt")
        expected = hf_tok(texts, padding=True, padding_side=side, return_tensors="pt")
        assert torch.equal(got["input_ids"], expected["input_ids"])
        with torch.no_grad():
            assert_outputs_equal(model(**got), hf(**expected), keys=["logits"])


def test_registry_and_auto_resolution():
    arch = zoo.registry.get_registry().architecture("roberta")
    assert arch.plugin == "zoo.plugins.roberta"
    assert {"vocab.json", "merges.txt", "tokenizer.json"} <= set(arch.tokenizer_files)
    for task, cls in ZOO_CLASSES.items():
        assert arch.model_class(task) is cls
    config = zoo.AutoConfig.for_model("roberta", num_hidden_layers=6)
    assert isinstance(config, RobertaConfig) and config.num_hidden_layers == 6


# --- config ----------------------------------------------------------------------------------------------------------------


def test_config_defaults_equal_transformers():
    ours, theirs = RobertaConfig(), transformers.RobertaConfig()
    checked = [key for key in RobertaConfig.fields() if hasattr(theirs, key) and key not in ("id2label", "label2id")]
    assert {"pad_token_id", "bos_token_id", "eos_token_id", "vocab_size", "max_position_embeddings", "layer_norm_eps"} <= set(checked)
    for key in checked:
        assert getattr(ours, key) == getattr(theirs, key), key


def test_distilroberta_style_config_round_trips_with_transformers(tmp_path):
    """distilroberta-base's config.json fields (model_type roberta, 6 layers, 514 positions, one token type)."""
    hf_config = transformers.RobertaConfig(num_hidden_layers=6, max_position_embeddings=514, type_vocab_size=1,
                                           layer_norm_eps=1e-5, architectures=["RobertaForMaskedLM"])
    hf_config.save_pretrained(tmp_path / "hf")
    config = zoo.AutoConfig.from_pretrained(tmp_path / "hf")
    assert isinstance(config, RobertaConfig)
    for key in ("num_hidden_layers", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id", "vocab_size"):
        assert getattr(config, key) == getattr(hf_config, key), key
    config.save_pretrained(tmp_path / "zoo")
    again = transformers.AutoConfig.from_pretrained(tmp_path / "zoo")
    assert type(again).__name__ == "RobertaConfig"
    assert again.to_diff_dict().items() >= {k: v for k, v in hf_config.to_diff_dict().items() if k != "transformers_version"}.items()


def test_config_refuses_what_the_model_cannot_build():
    with pytest.raises(ConfigError, match="pad_token_id"):
        RobertaConfig(pad_token_id=None)
    with pytest.raises(ConfigError, match="says 'bert'"):
        RobertaConfig.from_dict({"model_type": "bert"})
