"""Original release folders as zoo reads them: their config files become zoo configs, their vocabularies zoo
tokenizers, with no config.json or tokenizer.json needed.

- Google's BERT releases (google-research/bert README): ``bert_config.json`` holds BertConfig's very fields
  (transformers' ``convert_bert_original_tf_checkpoint_to_pytorch.py`` reads it with ``BertConfig.from_json_file``),
  ``vocab.txt`` the WordPiece vocabulary. Whether text is lowercased is not written anywhere: Google's
  ``tokenization.validate_case_matches_checkpoint`` tells it from the model's folder name (``uncased_L-12_H-768_A-12``
  lowercases, ``cased_...`` and ``multi_cased_...`` do not, ``multilingual_...`` and ``chinese_...`` do), and so
  does :func:`infer_do_lower_case`; ``do_lower_case=`` (``--do-lower-case``) says it explicitly.
- OpenAI's GPT-2 releases (openai/gpt-2 download_model.py, model.py): ``hparams.json`` is ``n_vocab``, ``n_ctx``,
  ``n_embd``, ``n_head``, ``n_layer`` (transformers' ``convert_gpt2_original_tf_checkpoint_to_pytorch.py`` maps them
  onto GPT2Config); ``encoder.json`` and ``vocab.bpe`` are what transformers calls vocab.json and merges.txt, the
  same bytes.

Which file belongs to which architecture is the plugins' word: each ``TFMapping`` lists its ``release_configs`` and
its ``release_tokenizer`` (zoo/convert/mapping.py), so this module only walks the registry.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from zoo.configuration import CONFIG_NAME, Config, config_from_file, read_json
from zoo.errors import ConfigError

logger = logging.getLogger(__name__)

#: OpenAI's hparams.json keys and the GPT2Config fields they are.
GPT2_HPARAMS = {"n_vocab": "vocab_size", "n_ctx": "n_positions", "n_embd": "n_embd", "n_head": "n_head",
                "n_layer": "n_layer"}
#: GPT-2's release file names and the names GPT-2's tokenizer reads (transformers' convert script renames them).
GPT2_RELEASE_FILES = {"vocab.json": "encoder.json", "merges.txt": "vocab.bpe"}


# --- configs ------------------------------------------------------------------------------------------------------------


def from_bert_config(data: dict[str, Any]) -> dict[str, Any]:
    """bert_config.json -> config.json's fields: the same names, plus the model_type."""
    return {**data, "model_type": "bert"}


def from_gpt2_hparams(data: dict[str, Any]) -> dict[str, Any]:
    """hparams.json -> GPT2Config's fields (``n_vocab`` -> vocab_size, ``n_ctx`` -> n_positions); a key OpenAI's
    model.py does not define is kept as it is."""
    missing = [key for key in GPT2_HPARAMS if key not in data]
    if missing:
        raise ConfigError(f"hparams.json lacks {', '.join(missing)} (OpenAI's GPT-2 hparams are "
                          f"{', '.join(GPT2_HPARAMS)}); add them, or write a config.json for the model")
    fields = {GPT2_HPARAMS.get(key, key): value for key, value in data.items()}
    return {**fields, "model_type": "gpt2"}


def release_mappings() -> list[tuple[Any, Any]]:
    """``(architecture, TFMapping)`` of every registered architecture that declares a TensorFlow mapping."""
    from zoo.convert.mapping import resolve_mapping
    from zoo.errors import PluginError
    from zoo.registry import get_registry

    found = []
    for arch in get_registry().architectures().values():
        if arch.tf_mapping is None:
            continue
        try:
            found.append((arch, resolve_mapping(arch.tf_mapping, arch.model_type)))
        except PluginError as exc:  # one broken plugin must not stop every other release folder from loading
            logger.warning("%s (TensorFlow import of '%s' is unavailable)", exc, arch.model_type)
    return found


def release_config_file(repo: Any) -> tuple[Any, Any, str] | None:
    """``(architecture, TFMapping, file name)`` of the first release config file ``repo`` has, or None."""
    for arch, mapping in release_mappings():
        for filename in mapping.release_configs:
            if repo.exists(filename):
                return arch, mapping, filename
    return None


def release_config(repo: Any, overrides: dict[str, Any] | None = None, model_type: str | None = None) -> Config | None:
    """The zoo config of a release folder without config.json (bert_config.json, hparams.json), or None when the
    folder has no release config file (of ``model_type``, if given)."""
    from zoo.registry import resolve_import

    found = release_config_file(repo)
    if found is None or (model_type is not None and found[0].model_type != model_type):
        return None
    arch, mapping, filename = found
    path = repo.require(filename)
    data = read_json(path)
    try:
        fields = resolve_import(mapping.release_configs[filename])(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config_from_file(arch.config_class(), path, fields, dict(overrides or {}))


def is_release_folder(repo: Any) -> bool:
    """A folder with a release config file and no config.json."""
    return not repo.exists(CONFIG_NAME) and release_config_file(repo) is not None


# --- tokenizers ---------------------------------------------------------------------------------------------------------

#: Google's names of its uncased models that do not say "uncased" (validate_case_matches_checkpoint's lower_models).
_LOWERCASED_RELEASES = re.compile(r"^(multilingual|chinese)_L-\d+_H-\d+_A-\d+$")


def infer_do_lower_case(name: str) -> bool | None:
    """Whether a BERT release lowercases, from its folder (or repo) name: True for ``uncased_...``,
    ``multilingual_...``, ``chinese_...``; False for ``cased_...`` and ``multi_cased_...``; None when the name
    does not tell."""
    base = re.split(r"[/\\]", name.rstrip("/\\"))[-1]
    lowered = base.lower()
    if "uncased" in lowered:
        return True
    if "cased" in lowered:
        return False
    if _LOWERCASED_RELEASES.match(base):
        return True
    return None


def folder_name(repo: Any) -> str:
    folder = getattr(repo, "folder", None)
    return Path(folder).resolve().name if folder is not None else str(getattr(repo, "identifier", ""))


def bert_release_tokenizer(repo: Any, kwargs: dict[str, Any]) -> Any:
    """Let BERT's tokenizer read a Google release folder: vocab.txt is read as it is; ``do_lower_case``, unless
    the caller or a tokenizer_config.json states it, comes from the folder's name (BERT's default, True, where the
    name does not tell)."""
    from zoo.tokenization import TOKENIZER_CONFIG_FILE

    if repo.exists(TOKENIZER_CONFIG_FILE) or not is_release_folder(repo):
        return repo
    _set_max_length(repo, "bert_config.json", "max_position_embeddings", kwargs)
    if "do_lower_case" in kwargs:
        return repo
    name = folder_name(repo)
    inferred = infer_do_lower_case(name)
    if inferred is None:
        logger.info("cannot tell from the folder name %r whether this BERT release is cased; lowercasing, as BERT's "
                    "tokenizer does by default (pass do_lower_case=False for a cased model)", name)
        inferred = True
    else:
        logger.debug("folder %r is a%s BERT release: do_lower_case=%s", name, "n uncased" if inferred else " cased",
                     inferred)
    kwargs["do_lower_case"] = inferred
    return repo


class RenamedFiles:
    """A model's files with some names served from others (``vocab.json`` from ``encoder.json``), so a tokenizer
    that reads the usual names reads a release folder unchanged."""

    def __init__(self, repo: Any, aliases: dict[str, str]) -> None:
        self.repo, self.aliases, self.identifier = repo, aliases, repo.identifier
        if hasattr(repo, "folder"):
            self.folder = repo.folder

    def _name(self, filename: str) -> str:
        if filename in self.aliases and not self.repo.exists(filename):
            return self.aliases[filename]
        return filename

    def exists(self, filename: str) -> bool:
        return self.repo.exists(self._name(filename))

    def get(self, filename: str) -> Path | None:
        return self.repo.get(self._name(filename))

    def require(self, filename: str) -> Path:
        return self.repo.require(self._name(filename))


def _set_max_length(repo: Any, filename: str, key: str, kwargs: dict[str, Any]) -> None:
    """The tokenizer's model_max_length, unless given: the model's positions, as the Hub's copies of the releases
    state it (512 for BERT, 1024 for GPT-2)."""
    if "model_max_length" in kwargs or not repo.exists(filename):
        return
    value = read_json(repo.require(filename)).get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        kwargs["model_max_length"] = value


def gpt2_release_tokenizer(repo: Any, kwargs: dict[str, Any]) -> Any:
    """Let GPT-2's tokenizer read an OpenAI release folder: encoder.json as vocab.json, vocab.bpe as merges.txt;
    model_max_length is hparams.json's n_ctx."""
    from zoo.tokenization import TOKENIZER_CONFIG_FILE

    if not repo.exists(TOKENIZER_CONFIG_FILE) and not repo.exists(CONFIG_NAME):
        _set_max_length(repo, "hparams.json", "n_ctx", kwargs)
    if any(not repo.exists(ours) and repo.exists(theirs) for ours, theirs in GPT2_RELEASE_FILES.items()):
        return RenamedFiles(repo, GPT2_RELEASE_FILES)
    return repo


def prepare_release_tokenizer(arch: Any, repo: Any, kwargs: dict[str, Any]) -> Any:
    """The files ``arch``'s tokenizer should read for ``repo`` (a view of a release folder, or ``repo`` itself);
    may set inferred settings in ``kwargs``. A folder with tokenizer.json is never touched."""
    from zoo.convert.mapping import resolve_mapping
    from zoo.registry import resolve_import
    from zoo.tokenization import TOKENIZER_FILE

    if arch.tf_mapping is None or repo.exists(TOKENIZER_FILE):
        return repo
    mapping = resolve_mapping(arch.tf_mapping, arch.model_type)
    if mapping.release_tokenizer is None:
        return repo
    return resolve_import(mapping.release_tokenizer)(repo, kwargs)


def release_tokenizer_architecture(repo: Any) -> Any | None:
    """The architecture of a release folder (without config.json), for AutoTokenizer; None if it is not one."""
    if repo.exists(CONFIG_NAME):
        return None
    found = release_config_file(repo)
    return found[0] if found is not None else None
