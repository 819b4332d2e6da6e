"""The Llama-family tokenizers (zoo/plugins/llama/tokenization.py) against transformers' AutoTokenizer on the same
folders.

Every folder is written here with ``tokenizers``: a byte-level BPE in Llama 3's and Qwen2's layouts (their split
regexes, ``<|...|>`` special tokens) and a SentencePiece-derived BPE in Llama 2's two layouts (the legacy
Prepend/Replace normalizer, and the Metaspace pre-tokenizer), with byte fallback and ``<s>`` / ``</s>`` / ``<unk>``,
beside a tokenizer_config.json (tokenizer_class, special tokens, a chat template) and a config.json naming the
model_type. The cases are the combinations transformers resolves differently: LlamaTokenizer rebuilding the
pipeline (legacy or not), a Llama 3 file declared as LlamaTokenizer (kept as saved), Mistral (kept as saved),
Qwen2Tokenizer rebuilding NFC + its regex, Qwen3 with a generic class (kept as saved).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import transformers

import zoo
from tests.test_tokenization import assert_same
from zoo.errors import TokenizerError
from zoo.tokenization import Tokenizer

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
LLAMA3_REGEX = QWEN2_REGEX.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

CORPUS = [
    "Hello world! The quick brown fox jumps over the lazy dog in Berlin.",
    "My name is Wolfgang and I live in Berlin, where the café is naïve.",
    "Paris is the capital of France. Numbers 12345 and 3.14159 are here!",
    "I love Python and I hate bugs; lovely pythons, hateful bugs.",
    "def f(x):\n    return x * 2\n",
    "You are a helpful assistant. What is the capital of France? Answer in one word.",
    "user assistant system",
] * 4

#: Unicode (composed and decomposed accents, CJK and emoji the vocabulary lacks: byte fallback), runs of spaces,
#: tabs and newlines, special tokens inside text, the empty string.
TEXTS = [
    "Hello world! Hello, world.",
    "  leading and trailing spaces   ",
    "tabs\t\tand\nnew\n\nlines\r\n and   runs     of spaces",
    "café naïve e\u0301 ﬁ Ｆｕｌｌ",
    "中文字符 😀 👍🏽 emoji",
    "special <s> and</s>x <unk> [INST] hi [/INST]",
    "chat <|im_start|>user\nHi<|im_end|>\n<|endoftext|> <|begin_of_text|><|eot_id|>",
    "numbers 1234567 and 3.14159, symbols @#$%^&*()_+{}|:\"<>?",
    "",
]

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3_CHAT = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
               "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
INST = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
        "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
        "eos_token }}{% endif %}{% endfor %}")

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi 😀"},
     {"role": "assistant", "content": "Hello! café"}, {"role": "user", "content": "  two  spaces\nand a line "}],
]


def byte_level_bpe(layout: str):
    """A byte-level BPE trained on CORPUS in Qwen2's ("qwen": NFC, ByteLevel post-processor) or Llama 3's
    ("llama3": no normalizer, a template adding <|begin_of_text|>) tokenizer.json layout."""
    from tokenizers import AddedToken, Regex, Tokenizer as Backend, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX if layout == "qwen" else LLAMA3_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trained = Backend(models.BPE())
    trained.pre_tokenizer = pre
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=500, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(trained.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    backend = Backend(models.BPE(dict(model["vocab"]), merges, continuing_subword_prefix="", end_of_word_suffix="",
                                 fuse_unk=False, byte_fallback=False, ignore_merges=layout == "llama3"))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.ByteLevel()
    specials = QWEN_SPECIALS if layout == "qwen" else LLAMA3_SPECIALS
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if layout == "qwen":
        backend.normalizer = normalizers.NFC()
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        bos = (LLAMA3_SPECIALS[0], backend.token_to_id(LLAMA3_SPECIALS[0]))
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos[0]} $A", pair=f"{bos[0]} $A {bos[0]}:1 $B:1", special_tokens=[bos])])
    return backend


def sentencepiece_bpe(layout: str):
    """A SentencePiece-derived BPE trained on CORPUS: <unk> <s> </s>, the 256 byte pieces, then "▁" pieces; in Llama
    2's original layout ("legacy": Prepend/Replace normalizer, no pre-tokenizer) or the Metaspace one."""
    from tokenizers import AddedToken, Tokenizer as Backend, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    trained = Backend(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, show_progress=False))
    model = json.loads(trained.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    backend = Backend(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if layout == "legacy":
        backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 1)])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return backend


LLAMA2_TOKENS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")
#: name -> (tokenizer.json layout, model_type, tokenizer_config.json, zoo's class, transformers' class)
CASES = {
    "qwen2": ("qwen", "qwen2", dict(tokenizer_class="Qwen2Tokenizer", bos_token=None, eos_token="<|im_end|>",
                                    pad_token="<|endoftext|>", errors="replace", chat_template=CHATML),
              "Qwen2Tokenizer", "Qwen2Tokenizer"),
    "qwen3-generic": ("qwen", "qwen3", dict(tokenizer_class="PreTrainedTokenizerFast", eos_token="<|im_end|>",
                                            chat_template=CHATML), "Tokenizer", "TokenizersBackend"),
    "qwen3-no-class": ("qwen", "qwen3", dict(eos_token="<|im_end|>", add_prefix_space=True, chat_template=CHATML),
                       "Qwen2Tokenizer", "Qwen2Tokenizer"),
    "llama3": ("llama3", "llama", dict(tokenizer_class="PreTrainedTokenizerFast", bos_token="<|begin_of_text|>",
                                       eos_token="<|eot_id|>", chat_template=LLAMA3_CHAT), "Tokenizer", "TokenizersBackend"),
    "llama3-declared-llama2": ("llama3", "llama", dict(tokenizer_class="LlamaTokenizerFast", bos_token="<|begin_of_text|>",
                                                       eos_token="<|eot_id|>", chat_template=LLAMA3_CHAT),
                               "Tokenizer", "TokenizersBackend"),
    "llama2": ("legacy", "llama", dict(tokenizer_class="LlamaTokenizer", add_bos_token=True, add_eos_token=False,
                                       legacy=False, pad_token=None, chat_template=INST, **LLAMA2_TOKENS),
               "LlamaTokenizer", "LlamaTokenizer"),
    "llama2-legacy": ("legacy", "llama", dict(tokenizer_class="LlamaTokenizer", legacy=True, chat_template=INST),
                      "LlamaTokenizer", "LlamaTokenizer"),
    "llama2-defaults": ("metaspace", "llama", dict(tokenizer_class="LlamaTokenizer", chat_template=INST),
                        "LlamaTokenizer", "LlamaTokenizer"),
    "llama2-no-prefix-space": ("metaspace", "llama", dict(tokenizer_class="LlamaTokenizerFast", add_prefix_space=False,
                                                          chat_template=INST, **LLAMA2_TOKENS),
                               "LlamaTokenizer", "LlamaTokenizer"),
    # add_eos_token in the config is ignored next to a tokenizer.json, in both libraries
    "mistral": ("metaspace", "mistral", dict(tokenizer_class="LlamaTokenizer", add_bos_token=True, add_eos_token=True,
                                             legacy=True, chat_template=INST, **LLAMA2_TOKENS), "Tokenizer", "TokenizersBackend"),
}
_BACKENDS: dict[str, str] = {}


def write_folder(folder: Path, case: str) -> Path:
    """The tokenizer files (and a config.json) of CASES[case] in ``folder``."""
    layout, model_type, config, *_ = CASES[case]
    if layout not in _BACKENDS:
        backend = byte_level_bpe(layout) if layout in ("qwen", "llama3") else sentencepiece_bpe(layout)
        _BACKENDS[layout] = backend.to_str()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(_BACKENDS[layout], encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    vocab_size = json.loads(_BACKENDS[layout])["model"]["vocab"].__len__() + 8
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "vocab_size": vocab_size}))
    return folder


def hf_tokenizer(folder: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llama-tokenizers")
    return {case: write_folder(root / case, case) for case in CASES}


@pytest.fixture(params=list(CASES))
def pair(request, folders):
    folder = folders[request.param]
    return request.param, zoo.AutoTokenizer.from_pretrained(folder), hf_tokenizer(folder)


# --- which tokenizer -------------------------------------------------------------------------------------------------


def test_the_pipeline_is_the_one_transformers_builds(pair):
    case, ours, theirs = pair
    assert (type(ours).__name__, type(theirs).__name__) == CASES[case][3:]
    assert isinstance(ours, Tokenizer)
    for part in ("normalizer", "pre_tokenizer", "decoder", "post_processor"):
        got, expected = (json.loads(t.backend_tokenizer.to_str())[part] for t in (ours, theirs))
        assert got == expected, (case, part)
    assert ours.padding_side == theirs.padding_side and list(ours.model_input_names) == list(theirs.model_input_names)
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_tokens == theirs.all_special_tokens and ours.all_special_ids == theirs.all_special_ids
    assert ours.get_vocab() == theirs.get_vocab() and len(ours) == len(theirs) and ours.vocab_size == theirs.vocab_size
    assert ours.clean_up_tokenization_spaces == theirs.clean_up_tokenization_spaces is False


def test_the_cases_tokenize_differently(folders):
    """The rebuilt pipelines change the ids (legacy or not, prefix space or not, Metaspace over the normalizer), so
    the comparisons are not vacuous."""
    text = "special <s> and</s>x tail"
    ids = {case: zoo.AutoTokenizer.from_pretrained(folders[case])(text)["input_ids"]
           for case in ("llama2", "llama2-legacy", "llama2-no-prefix-space")}
    assert len({json.dumps(v) for v in ids.values()}) == 3
    from tokenizers import Tokenizer as Backend

    as_saved = Backend.from_file(str(folders["llama2"] / "tokenizer.json"))  # the legacy normalizer's "▁" after </s>
    assert as_saved.encode(text).ids != ids["llama2"]


# --- encoding and decoding ---------------------------------------------------------------------------------------------


def test_single_texts_with_and_without_special_tokens(pair):
    case, ours, theirs = pair
    for text in TEXTS:
        for add in (True, False):
            assert_same(ours, theirs, text, add_special_tokens=add, return_offsets_mapping=True)
        assert ours.tokenize(text) == theirs.tokenize(text), (case, text)
        assert ours.encode(text) == theirs.encode(text), (case, text)
    assert ours.convert_ids_to_tokens(ours.encode(TEXTS[4])) == theirs.convert_ids_to_tokens(theirs.encode(TEXTS[4]))


def test_pairs_and_batches(pair, folders):
    case, ours, theirs = pair
    assert_same(ours, theirs, TEXTS[0], TEXTS[3], return_token_type_ids=True)
    assert_same(ours, theirs, TEXTS, return_special_tokens_mask=True)
    assert_same(ours, theirs, TEXTS, TEXTS[::-1], add_special_tokens=False)
    assert_same(ours, theirs, [(a, b) for a, b in zip(TEXTS, TEXTS[1:])], truncation=True, max_length=12)
    if theirs.pad_token is not None:
        assert_same(ours, theirs, TEXTS, padding=True, return_tensors="pt")
    options = dict(pad_token=ours.eos_token, padding_side="left")  # as for batched generation
    ours, theirs = zoo.AutoTokenizer.from_pretrained(folders[case], **options), hf_tokenizer(folders[case], **options)
    assert_same(ours, theirs, TEXTS, padding=True, return_tensors="pt")


def test_decoding_with_and_without_special_tokens(pair):
    case, ours, theirs = pair
    ids = theirs(TEXTS)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == theirs.batch_decode(ids, skip_special_tokens=skip)
        for row in ids:
            assert ours.decode(row, skip_special_tokens=skip) == theirs.decode(row, skip_special_tokens=skip), case
    emoji = theirs.encode("😀中", add_special_tokens=False)
    for cut in range(1, len(emoji)):  # a character cut inside its bytes (byte fallback, byte-level)
        assert ours.decode(emoji[:cut]) == theirs.decode(emoji[:cut]), (case, cut)


# --- chat templates ------------------------------------------------------------------------------------------------------


def test_chat_template_prompts_and_ids(pair):
    case, ours, theirs = pair
    for chat in CHATS:
        for add in (False, True):
            options = dict(add_generation_prompt=add)
            text = ours.apply_chat_template(chat, tokenize=False, **options)
            assert text == theirs.apply_chat_template(chat, tokenize=False, **options), case
            assert ours.apply_chat_template(chat, **options)["input_ids"] == \
                theirs.apply_chat_template(chat, **options)["input_ids"], case
            assert ours.apply_chat_template(chat, return_dict=False, **options) == ours.encode(text, add_special_tokens=False)
    if theirs.pad_token is not None:  # a batch of chats, padded
        assert_same(ours.apply_chat_template, theirs.apply_chat_template, CHATS, padding=True, return_tensors="pt")
    prefill = [*CHATS[0], {"role": "assistant", "content": "The capital is"}]
    got = ours.apply_chat_template(prefill, tokenize=False, continue_final_message=True)
    assert got == theirs.apply_chat_template(prefill, tokenize=False, continue_final_message=True)
    assert got.endswith("The capital is")


# --- options -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{"add_eos_token": True}, {"add_bos_token": False}, {"add_bos_token": True},
                                     {"add_bos_token": True, "add_eos_token": True}, {"add_prefix_space": False},
                                     {"add_prefix_space": True}, {"legacy": True}, {"legacy": False}],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("case", ["qwen2", "llama3", "llama2", "mistral"])
def test_options_passed_to_from_pretrained(folders, case, options):
    """Passed flags rewrite the template (the config file's do not); prefix space and legacy rebuild Llama 2's."""
    ours, theirs = zoo.AutoTokenizer.from_pretrained(folders[case], **options), hf_tokenizer(folders[case], **options)
    for text in TEXTS[:6]:
        assert_same(ours, theirs, text, "and a pair", return_token_type_ids=True)
        assert_same(ours, theirs, text)
    assert ours.decode(ours.encode(TEXTS[1])) == theirs.decode(theirs.encode(TEXTS[1]))


@pytest.mark.parametrize("ours_cls, theirs_cls, case", [
    ("LlamaTokenizer", "LlamaTokenizer", "llama3"), ("LlamaTokenizer", "LlamaTokenizer", "mistral"),
    ("Qwen2Tokenizer", "Qwen2Tokenizer", "llama3"), ("LlamaTokenizerFast", "LlamaTokenizerFast", "qwen3-generic")])
def test_a_named_class_builds_its_own_pipeline(folders, ours_cls, theirs_cls, case):
    """``zoo.LlamaTokenizer.from_pretrained`` is LlamaTokenizer's pipeline whatever the folder says, as in
    transformers (even over a byte-level file, which it then misreads in both libraries)."""
    ours = getattr(zoo, ours_cls).from_pretrained(folders[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(transformers, theirs_cls).from_pretrained(str(folders[case]))
    assert type(ours).__name__ == ours_cls.removesuffix("Fast")
    assert ours.padding_side == theirs.padding_side and ours.special_tokens_map == theirs.special_tokens_map
    for text in TEXTS:
        assert_same(ours, theirs, text)
        assert ours.decode(theirs.encode(text)) == theirs.decode(theirs.encode(text))


def test_qwen2_from_vocab_and_merges(folders, tmp_path):
    """A Qwen2 repo without tokenizer.json: vocab.json + merges.txt, the special tokens in added_tokens_decoder."""
    from tokenizers import Tokenizer as Backend

    Backend.from_file(str(folders["qwen2"] / "tokenizer.json")).model.save(str(tmp_path))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    decoder = {str(len(vocab) + i): {"content": t, "special": True, "normalized": False, "lstrip": False,
                                     "rstrip": False, "single_word": False} for i, t in enumerate(QWEN_SPECIALS)}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2Tokenizer",
                                                                "eos_token": "<|im_end|>", "added_tokens_decoder": decoder}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    ours, theirs = zoo.AutoTokenizer.from_pretrained(tmp_path), hf_tokenizer(tmp_path)
    assert type(ours).__name__ == "Qwen2Tokenizer" and len(ours) == len(theirs)
    for text in TEXTS:
        assert_same(ours, theirs, text, "a pair", return_token_type_ids=True)
        assert ours.decode(theirs.encode(text)) == theirs.decode(theirs.encode(text))


@pytest.mark.parametrize("case", ["llama2", "qwen2", "llama3"])
def test_save_pretrained_is_read_back_by_transformers(folders, case, tmp_path):
    ours = zoo.AutoTokenizer.from_pretrained(folders[case])
    ours.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text((folders[case] / "config.json").read_text())
    theirs, again = hf_tokenizer(tmp_path), zoo.AutoTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        assert theirs(text)["input_ids"] == ours(text)["input_ids"] == again(text)["input_ids"], (case, text)
    assert theirs.apply_chat_template(CHATS[1], tokenize=False) == ours.apply_chat_template(CHATS[1], tokenize=False)


def test_a_sentencepiece_model_without_tokenizer_json_is_a_clear_error(folders, tmp_path):
    (tmp_path / "tokenizer.model").write_bytes(b"\x0a\x00")
    (tmp_path / "tokenizer_config.json").write_text((folders["llama2"] / "tokenizer_config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(TokenizerError, match="has no tokenizer.json.*save_pretrained"):
        zoo.AutoTokenizer.from_pretrained(tmp_path)
