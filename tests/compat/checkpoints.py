"""The small checkpoints every compatibility idiom runs on, written once per session by transformers.

Each folder is laid out as a Hub repo of that kind is: a BERT with a WordPiece vocab.txt; a GPT-2 with a byte-level
BPE trained here, once as vocab.json + merges.txt (resolved through config.json's model_type, as openai-community/gpt2
is) and once as tokenizer.json (with tokenizer_class); GPT-2 copies with a generation_config.json saved by
transformers' GenerationConfig; a RoBERTa; a vocab-only folder without config.json whose tokenizer_config.json names
``RobertaTokenizer``; and tokenizer folders carrying the chat templates of published models, one per template, in
both layouts the Hub uses (``chat_template`` in tokenizer_config.json, or a chat_template.jinja file).

Weights are random (fixed seeds) and drawn wider than transformers' init, so greedy and beam decoding pick tokens by
clear margins and produce varied text instead of one repeated token. Dropout is off, so the gradient idioms compare a
deterministic backward pass.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from tests.checkpoints import make_bert
from tests.pipelines.conftest import make_roberta

DATA = Path(__file__).parent / "data"
EOS = "<|endoftext|>"

#: Text the GPT-2 tokenizer is trained on: the prompts, stop strings and chat messages the idioms use come from here.
GPT2_CORPUS = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "Once upon a time there was a little model that wanted to talk.",
    "The weather today is sunny, and tomorrow it will rain again.",
    "What is the capital of France? The capital of France is Paris.",
    "You are a helpful assistant. Tell me a joke about cats and dogs.",
    "I love Python and I hate bugs; lovely pythons, hateful bugs.",
    "café naïve über 中文 😀 numbers 12345 and 3.14159!",
    "def add(a, b):\n    return a + b\n",
]

#: Special tokens of the published chat formats, added to the chat tokenizer so rendered templates tokenize as there.
CHAT_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                 "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<start_of_turn>", "<end_of_turn>", "<|user|>",
                 "<|assistant|>", "<|system|>", "<|end|>", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                 "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>",
                 "<think>", "</think>", "<tool_call>", "</tool_call>"]

#: Where the templates come from: tests/data/chat_templates/ holds the published templates the chat-template tests
#: share (each with a .md naming its model and source); tests/compat/data/chat_templates/ adds three more that are
#: not there (see its README.md).
SHARED_TEMPLATES = Path(__file__).parents[1] / "data" / "chat_templates"
OWN_TEMPLATES = DATA / "chat_templates"

#: name -> (template file, bos_token, eos_token, layout): the tokenizer folder that carries it, with the template in
#: tokenizer_config.json ("config") or in chat_template.jinja ("jinja"), the two layouts Hub repos use.
CHAT_TEMPLATES = {
    "chatml": (OWN_TEMPLATES / "chatml.jinja", EOS, "<|im_end|>", "config"),
    "llama3": (OWN_TEMPLATES / "llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", "jinja"),
    "qwen2": (OWN_TEMPLATES / "qwen2.jinja", EOS, "<|im_end|>", "config"),
    "qwen2_5": (SHARED_TEMPLATES / "qwen2_5_instruct.jinja", EOS, "<|im_end|>", "config"),
    "qwen3": (SHARED_TEMPLATES / "qwen3.jinja", EOS, "<|im_end|>", "jinja"),
    "llama3_1": (SHARED_TEMPLATES / "llama3_1_instruct.jinja", "<|begin_of_text|>", "<|eot_id|>", "jinja"),
    "llama3_2": (SHARED_TEMPLATES / "llama3_2_instruct.jinja", "<|begin_of_text|>", "<|eot_id|>", "config"),
    "mistral_v0_3": (SHARED_TEMPLATES / "mistral_7b_instruct_v0_3.jinja", EOS, EOS, "config"),
    "mixtral": (SHARED_TEMPLATES / "mixtral_8x7b_instruct_v0_1.jinja", EOS, EOS, "config"),
    "gemma": (SHARED_TEMPLATES / "gemma_it.jinja", EOS, "<end_of_turn>", "config"),
    "zephyr": (SHARED_TEMPLATES / "zephyr_7b_beta.jinja", EOS, EOS, "config"),
    "phi3": (SHARED_TEMPLATES / "phi3_mini_instruct.jinja", EOS, "<|end|>", "jinja"),
    "granite": (SHARED_TEMPLATES / "granite_4_0.jinja", "<|end_of_text|>", "<|end_of_text|>", "config"),
}


@dataclass
class Checkpoints:
    """Paths of the session's checkpoints, plus a fresh scratch folder per call and the other library of a pair."""

    root: Path
    bert: Path
    gpt2: Path
    gpt2_json: Path
    gpt2_generation_config: Path
    gpt2_sampling_config: Path
    roberta: Path
    roberta_vocab_only: Path
    chat: dict[str, Path]
    libraries: tuple[types.ModuleType, types.ModuleType] = field(default=())  # (transformers, zoo)
    written: list[tuple[str, int, int]] = field(default_factory=list)  # fingerprint() once built
    _count: itertools.count = field(default_factory=itertools.count)

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """Every file of the shared checkpoints (scratch folders aside) with its size and mtime: an idiom that wrote
        into one would make the idioms after it depend on the order they run in."""
        files = (p for p in self.root.rglob("*") if p.is_file())
        return sorted((str(p.relative_to(self.root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
                      if not p.relative_to(self.root).parts[0].startswith("scratch"))

    def tmp(self) -> Path:
        """An empty folder for an idiom's save_pretrained: no idiom writes into a shared checkpoint."""
        return Path(tempfile.mkdtemp(prefix=f"scratch{next(self._count)}-", dir=self.root))

    def other(self, lib: types.ModuleType) -> types.ModuleType:
        """The library that is not ``lib``: round trips save with one and load with the other."""
        first, second = self.libraries
        return second if lib is first else first


def _train_gpt2_bpe() -> Tokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(GPT2_CORPUS * 4, trainer)
    backend.add_special_tokens([AddedToken(EOS, special=True, normalized=False)])
    return backend


def _redraw(model: torch.nn.Module, seed: int, scale: float, unit_suffixes: tuple[str, ...]) -> None:
    """Every tensor re-drawn at ``scale`` (LayerNorm weights around 1), so no weight hides in zeros or ones."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(1 + noise if name.endswith(unit_suffixes) else noise)


def _write_gpt2(root: Path, backend: Tokenizer) -> tuple[Path, Path]:
    """The GPT-2 model twice: with vocab.json + merges.txt (no tokenizer_class, as openai-community/gpt2), and with
    tokenizer.json + tokenizer_config.json naming GPT2Tokenizer."""
    import transformers

    eos = backend.token_to_id(EOS)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=backend.get_vocab_size(), n_positions=64, n_embd=32, n_layer=2,
                                     n_head=4, bos_token_id=eos, eos_token_id=eos, resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config)
    _redraw(model, seed=1000, scale=0.5, unit_suffixes=("ln_1.weight", "ln_2.weight", "ln_f.weight"))
    files, json_files = root / "gpt2", root / "gpt2-tokenizer-json"
    model.save_pretrained(files)
    backend.model.save(str(files))  # vocab.json + merges.txt
    (files / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    shutil.copytree(files, json_files, ignore=shutil.ignore_patterns("vocab.json", "merges.txt"))
    backend.save(str(json_files / "tokenizer.json"))
    (json_files / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": 64, "bos_token": EOS, "eos_token": EOS,
        "unk_token": EOS}))
    return files, json_files


def _with_generation_config(source: Path, target: Path, **settings) -> Path:
    """A copy of ``source`` whose generation_config.json transformers' GenerationConfig wrote from ``settings``."""
    import transformers

    shutil.copytree(source, target)
    transformers.GenerationConfig(**settings).save_pretrained(target)
    return target


def _write_roberta_vocab_only(source: Path, target: Path) -> Path:
    """vocab.json + merges.txt + tokenizer_config.json (tokenizer_class RobertaTokenizer), no config.json: the
    vocabulary of ``source``'s tokenizer.json, as tokenizer-only repos publish it."""
    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = dict(data["model"]["vocab"])
    for added in data["added_tokens"]:
        vocab.setdefault(added["content"], added["id"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    target.mkdir()
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (target / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (target / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer",
                                                              "model_max_length": 32}))
    return target


#: templates an idiom sets on a tokenizer instead of loading from a folder
EXTRA_TEMPLATES = {"qwen2_5_masks": SHARED_TEMPLATES / "qwen2_5_assistant_masks.jinja"}


def chat_template(name: str) -> str:
    """A published model's chat template, as its tokenizer_config.json holds it (no trailing newline)."""
    path = EXTRA_TEMPLATES[name] if name in EXTRA_TEMPLATES else CHAT_TEMPLATES[name][0]
    return path.read_text(encoding="utf-8").removesuffix("\n")


def _write_chat_folders(root: Path, backend: Tokenizer) -> dict[str, Path]:
    """One GPT-2 tokenizer folder per template; the chat formats' markers are added special tokens."""
    chat_backend = Tokenizer.from_str(backend.to_str())
    chat_backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_SPECIALS])
    folders = {}
    for name, (_, bos, eos, layout) in CHAT_TEMPLATES.items():
        folder = root / f"chat-{name}"
        folder.mkdir()
        chat_backend.save(str(folder / "tokenizer.json"))
        settings = {"tokenizer_class": "GPT2Tokenizer", "bos_token": bos, "eos_token": eos, "unk_token": EOS,
                    "pad_token": EOS, "model_max_length": 256}
        if layout == "config":
            settings["chat_template"] = chat_template(name)
        else:
            (folder / "chat_template.jinja").write_text(chat_template(name), encoding="utf-8")
        (folder / "tokenizer_config.json").write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
        folders[name] = folder
    return folders


def build(root: Path) -> Checkpoints:
    """Write every checkpoint under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    make_bert(root / "bert", "base", seed=0, initializer_range=0.4, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)
    backend = _train_gpt2_bpe()
    gpt2, gpt2_json = _write_gpt2(root, backend)
    eos = backend.token_to_id(EOS)
    # a second end token from the vocabulary (" the"), so an eos list changes where greedy decoding stops
    second_eos = backend.token_to_id("Ġthe")
    generation = _with_generation_config(gpt2, root / "gpt2-generation-config", bos_token_id=eos,
                                         eos_token_id=[eos, second_eos], pad_token_id=eos, max_new_tokens=7,
                                         repetition_penalty=1.3, no_repeat_ngram_size=2)
    sampling = _with_generation_config(gpt2, root / "gpt2-sampling-config", bos_token_id=eos, eos_token_id=eos,
                                       pad_token_id=eos, do_sample=True, top_k=12, temperature=0.7, max_new_tokens=6)
    roberta = root / "roberta"
    make_roberta(roberta, "masked-lm", seed=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return Checkpoints(
        root=root, bert=root / "bert", gpt2=gpt2, gpt2_json=gpt2_json, gpt2_generation_config=generation,
        gpt2_sampling_config=sampling, roberta=roberta,
        roberta_vocab_only=_write_roberta_vocab_only(roberta, root / "roberta-vocab-only"),
        chat=_write_chat_folders(root, backend))
