"""The files of a tokenizer folder: their names, reading the settings beside tokenizer.json, and writing a folder
transformers reads back.

The layout is transformers' (tokenization_utils_base.py, ``_from_pretrained`` / ``save_pretrained``):
tokenizer_config.json holds the settings and named special tokens, special_tokens_map.json (older repos) the
special tokens again, added_tokens.json (older repos) the tokens added after the vocabulary, tokenizer.json the
Rust pipeline with every added token, chat_template.jinja (and chat_templates/<name>.jinja) the chat templates.
Saving writes every file under a temporary name first and renames them only when all were written.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from typing import Any

from zoo.configuration import read_json
from zoo.errors import TokenizerError
from zoo.tokenization.special_tokens import SPECIAL_TOKEN_NAMES, _token_content, extra_tokens_setting

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"  # legacy: {token: id} of tokens added after the vocab
#: transformers' stand-in for "no limit" when a tokenizer records no model_max_length.
VERY_LARGE_INTEGER = int(1e30)
#: Settings that name files or the folder they came from, or that other files hold: never written back.
_NOT_SAVED = ("tokenizer_file", "name_or_path", "vocab_file", "merges_file", "auto_map", "added_tokens_decoder",
              "chat_template", "additional_special_tokens", "extra_special_tokens")


def read_bpe_vocabulary(repo: Any, kind: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``(vocab, merges)`` from vocab.json + merges.txt, the files of a byte-level BPE repo without tokenizer.json,
    read as ``tokenizers``' BPE reads them; ``kind`` ("a GPT-2 tokenizer") says in the errors what needs them."""
    from tokenizers.models import BPE

    missing = [name for name in ("vocab.json", "merges.txt") if not repo.exists(name)]
    if missing:
        raise TokenizerError(f"{repo.identifier} has neither tokenizer.json nor vocab.json + merges.txt (missing: "
                             f"{', '.join(missing)}); {kind} needs tokenizer.json, or vocab.json with merges.txt")
    vocab_path, merges_path = repo.require("vocab.json"), repo.require("merges.txt")
    try:
        return BPE.read_file(str(vocab_path), str(merges_path))
    except Exception as exc:  # noqa: BLE001 (tokenizers raises its own exception types for unreadable files)
        raise TokenizerError(f"{vocab_path} / {merges_path} cannot be read as a byte-level BPE vocabulary "
                             f"({exc}); re-download them") from None


def read_settings(repo: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings the files and the caller state, tokenizer_config.json as written): tokenizer_config.json, then
    special_tokens_map.json, then ``kwargs``; a legacy added_tokens.json becomes ``added_tokens_decoder``."""
    config: dict[str, Any] = {}
    if repo.exists(TOKENIZER_CONFIG_FILE):
        config = read_json(repo.require(TOKENIZER_CONFIG_FILE))
    given = dict(config)
    if repo.exists(SPECIAL_TOKENS_MAP_FILE):
        given.update({k: v for k, v in read_json(repo.require(SPECIAL_TOKENS_MAP_FILE)).items() if v is not None})
    given.update(kwargs)
    if "added_tokens_decoder" not in given and repo.exists(ADDED_TOKENS_FILE):
        given["added_tokens_decoder"] = _legacy_added_tokens(read_json(repo.require(ADDED_TOKENS_FILE)), given)
    return given, config


def _legacy_added_tokens(tokens: dict[str, Any], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """added_tokens.json as an added_tokens_decoder: special if a special token names it, else normalized."""
    special = {_token_content(settings.get(n)) for n in SPECIAL_TOKEN_NAMES}
    special.update(_token_content(t) for t in extra_tokens_setting(settings))
    decoder = {}
    for content, index in tokens.items():
        if not isinstance(index, int):
            raise TokenizerError(f"{ADDED_TOKENS_FILE} maps {content!r} to {index!r}; it must map tokens to integer ids")
        decoder[str(index)] = {"content": content, "special": content in special, "normalized": content not in special}
    return decoder


def saved_settings(tokenizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tokenizer_config.json, special_tokens_map.json) for ``tokenizer`` as it is now.

    Named special tokens are written as strings, an unset one as null when the settings had it (so a default
    cannot come back on loading, as in transformers); model-specific ones (``image_token``) as top-level keys,
    which transformers 5 reads back as such; extra special tokens as ``additional_special_tokens``, the key both
    transformers 4 and 5 read.
    """
    config = copy.deepcopy(tokenizer.init_kwargs)
    for stale in _NOT_SAVED:
        config.pop(stale, None)
    for name in SPECIAL_TOKEN_NAMES:
        if name in config and name not in tokenizer.special_tokens:
            config[name] = None
    named = {n: c for n, c in tokenizer.special_tokens.items() if n in SPECIAL_TOKEN_NAMES or n.endswith("_token")}
    config.update(named)
    odd = {n: c for n, c in tokenizer.special_tokens.items() if n not in named}
    if odd:  # model-specific names without the _token suffix survive only in the dict form
        config["extra_special_tokens"] = odd
    config.update({
        "tokenizer_class": tokenizer.tokenizer_class or config.get("tokenizer_class") or "PreTrainedTokenizerFast",
        "model_max_length": tokenizer.model_max_length,
        "padding_side": tokenizer.padding_side,
        "truncation_side": tokenizer.truncation_side,
        "clean_up_tokenization_spaces": tokenizer.clean_up_tokenization_spaces,
        "model_input_names": list(tokenizer.model_input_names),
    })
    special_map: dict[str, Any] = dict(tokenizer.special_tokens)
    if tokenizer.extra_special_tokens:
        config["additional_special_tokens"] = tokenizer.extra_special_tokens
        special_map["additional_special_tokens"] = tokenizer.extra_special_tokens
    return config, special_map


def json_text(name: str, data: dict[str, Any]) -> str:
    """JSON as transformers writes it: sorted keys (which also orders model-specific tokens on loading)."""
    try:
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        bad = sorted(k for k, v in data.items() if not _json_ok(v))
        raise TokenizerError(f"cannot save {name}: the settings {bad} are not JSON ({exc}); "
                             f"remove them from tokenizer.init_kwargs") from None


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _write_files_atomic(folder: Path, texts: dict[str, str]) -> tuple[Path, ...]:
    """Write every file to a temporary name first, then rename them all: no file is replaced unless all were
    written. Names may hold one folder level (chat_templates/x.jinja), never a way out of ``folder``."""
    root = folder.resolve()
    targets: dict[str, Path] = {}
    for name in texts:
        target = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts or root not in target.resolve().parents:
            raise TokenizerError(f"refusing to write {name!r}: it is not a file name inside {folder}")
        targets[name] = target
    tmps: dict[str, Path] = {}
    try:
        for name, text in texts.items():
            target = targets[name]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmps[name] = tmp
            tmp.write_text(text, encoding="utf-8")
        for name, tmp in tmps.items():
            os.replace(tmp, targets[name])
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    return tuple(targets.values())
