"""Model configuration: typed fields, unknown keys kept, ``config.json`` in and out.

The JSON is the one transformers writes (``PretrainedConfig.to_json_string``): the same keys, so a config read
and written by zoo loads unchanged in transformers and the other way round. Subclasses declare their fields as
annotated class attributes with defaults; keys a class does not declare (a newer transformers field, a plugin's
extra) are kept as attributes and written back.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from zoo.errors import ConfigError, ModelFileNotFoundError

CONFIG_NAME = "config.json"

_SCALARS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_type(cls_name: str, key: str, annotation: str, value: Any) -> None:
    """Refuse a value of the wrong scalar type with a message naming the field (bool is not an int here)."""
    parts = [p.strip() for p in annotation.split("|")]
    if value is None and "None" in parts:
        return
    allowed = [t for p in parts for t in _SCALARS.get(p, ())]
    if len(allowed) != sum(len(_SCALARS.get(p, ())) for p in parts) or not allowed or "Any" in parts:
        return  # not a plain scalar annotation: nothing to check
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, tuple(allowed))
    if not ok:
        raise ConfigError(
            f"{cls_name} field '{key}' must be {annotation}, got {type(value).__name__} {value!r}; fix it in config.json"
        )


class Config:
    """Base of every architecture's config. ``model_type`` ties it to its plugin."""

    model_type: ClassVar[str] = ""

    # Fields shared by all architectures, with transformers' defaults.
    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    tie_word_embeddings: bool = True
    output_hidden_states: bool = False
    output_attentions: bool = False

    def __init__(self, **kwargs: Any) -> None:
        num_labels = kwargs.pop("num_labels", None)
        for key, default in self.fields().items():
            value = kwargs.pop(key, copy.deepcopy(default))
            setattr(self, key, value)
        self._extra_keys: list[str] = []
        for key, value in kwargs.items():
            if key == "model_type":
                continue
            setattr(self, key, value)
            self._extra_keys.append(key)
        if self.id2label is not None:
            self.id2label = {int(k): v for k, v in self.id2label.items()}
        if self.label2id is not None:
            self.label2id = {k: int(v) for k, v in self.label2id.items()}
        elif self.id2label is not None:  # transformers 5 writes id2label only
            self.label2id = {v: k for k, v in self.id2label.items()}
        if num_labels is not None and (self.id2label is None or len(self.id2label) != num_labels):
            self.num_labels = num_labels
        self.validate()

    @classmethod
    def fields(cls) -> dict[str, Any]:
        """Declared fields and their defaults, base classes first."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for key, annotation in vars(klass).get("__annotations__", {}).items():
                if "ClassVar" in str(annotation) or key.startswith("_"):
                    continue
                out[key] = vars(klass).get(key, out.get(key))
        return out

    @classmethod
    def _annotations(cls) -> dict[str, str]:
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            out.update({k: str(v) for k, v in vars(klass).get("__annotations__", {}).items()})
        return out

    def validate(self) -> None:
        """Check scalar field types; subclasses add range checks."""
        annotations = self._annotations()
        for key in self.fields():
            _check_type(type(self).__name__, key, annotations[key], getattr(self, key))

    # --- labels ------------------------------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label is not None else 2

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"num_labels must be a positive int, got {n!r}")
        self.id2label = {i: f"LABEL_{i}" for i in range(n)}
        self.label2id = {v: k for k, v in self.id2label.items()}

    # --- dict / JSON -------------------------------------------------------------------------------------------------

    def set_extra(self, key: str, value: Any) -> None:
        """Set a key the class does not declare (``dtype``, say) so that it is written to config.json too."""
        setattr(self, key, value)
        if key not in self.fields() and key not in self._extra_keys:
            self._extra_keys.append(key)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> Config:
        data = {**data, **overrides}
        if cls.model_type and data.get("model_type", cls.model_type) != cls.model_type:
            raise ConfigError(
                f"{cls.__name__} reads model_type '{cls.model_type}' but the config says '{data['model_type']}'; "
                f"use zoo.AutoConfig to pick the right class"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in list(self.fields()) + self._extra_keys:
            value = getattr(self, key)
            if key == "id2label" and value is not None:
                value = {str(k): v for k, v in value.items()}
            out[key] = copy.deepcopy(value)
        if out.get("id2label") is None:
            out.pop("id2label", None)
            out.pop("label2id", None)
        out["model_type"] = self.model_type
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Config:
        return cls.from_dict(read_json(path), **overrides)

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], **kwargs: Any) -> Config:
        """Read ``config.json`` from a folder or a Hub repo (hub options: revision, token, cache_dir, ...)."""
        from zoo.hub import locate

        return cls.from_json_file(locate(identifier, CONFIG_NAME, **split_hub_kwargs(kwargs)), **kwargs)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(folder / CONFIG_NAME, self.to_json_string())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


_HUB_KWARGS = frozenset({"revision", "token", "cache_dir", "local_files_only", "force_download"})


def split_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the hub options from a from_pretrained kwargs dict."""
    return {k: kwargs.pop(k) for k in list(kwargs) if k in _HUB_KWARGS}


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object, turning every failure into a ConfigError that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileNotFoundError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc}); it should be a JSON object") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, expected an object")
    return data


def write_text_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename, so a failure never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

