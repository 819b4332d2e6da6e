"""Model configuration: typed fields, unknown keys kept, ``config.json`` in and out.

The JSON is the one transformers writes (``PretrainedConfig.to_json_string``): the same keys, so a config read
and written by zoo loads unchanged in transformers and the other way round. Subclasses declare their fields as
annotated class attributes with defaults; keys a class does not declare (a newer transformers field, a plugin's
extra) are kept as attributes and written back.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from zoo.config_fields import MAX_LABELS, Field, check_constraints, check_type, cross_field, field_error
from zoo.errors import ConfigError, ModelFileNotFoundError

__all__ = ["CONFIG_NAME", "Config", "Field", "config_from_file", "read_json", "split_hub_kwargs"]

CONFIG_NAME = "config.json"

#: Keyword arguments of from_pretrained that go to the hub client.
HUB_OPTIONS = frozenset({"revision", "token", "cache_dir", "local_files_only", "force_download"})
#: Keyword arguments of a model's from_pretrained that say how to load it (not config fields).
LOADING_OPTIONS = frozenset({"config", "dtype", "torch_dtype", "device", "ignore_mismatched_sizes", "output_loading_info",
                             "attn_implementation", "device_map", "use_safetensors", "from_tf"})
#: transformers' loading options whose meaning zoo always has: accepted from code written for transformers, and
#: dropped (low_cpu_mem_usage: zoo always builds on the meta device and loads straight into place).
IGNORED_OPTIONS = frozenset({"low_cpu_mem_usage"})
#: Attributes a Config instance keeps for itself; a config.json key of that name cannot be kept.
_PRIVATE = frozenset({"_extra_keys", "_source", "_overrides"})
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def _alias(name: str) -> property:
    return property(lambda self: getattr(self, name), lambda self, value: setattr(self, name, value))


class Config:
    """Base of every architecture's config. ``model_type`` ties it to its plugin.

    Fields are annotated class attributes; a default may be a :class:`~zoo.config_fields.Field` that also says what
    the value may be, and every field is checked when the config is built (see zoo/config_fields.py). A subclass that
    redeclares a field with a plain default keeps its parent's constraints. ``attribute_map`` names generic aliases
    (``hidden_size``) of an architecture's own field names (``n_embd``), as transformers' attribute_map does.
    """

    model_type: ClassVar[str] = ""
    attribute_map: ClassVar[dict[str, str]] = {}

    # Fields shared by all architectures, with transformers' defaults.
    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = Field(None, choices=PROBLEM_TYPES)
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    tie_word_embeddings: bool = True
    output_hidden_states: bool = False
    output_attentions: bool = False
    #: False: forward returns ``output.to_tuple()`` unless called with return_dict=True (zoo/model_api.py).
    return_dict: bool = True

    #: Fields of every config that transformers leaves out of config.json while they hold these defaults
    #: (``PretrainedConfig.to_diff_dict``); an architecture's own fields are always written.
    _WRITTEN_ONLY_IF_SET: ClassVar[dict[str, Any]] = {
        "architectures": None, "problem_type": None, "output_hidden_states": False, "output_attentions": False,
        "return_dict": True,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for alias, name in vars(cls).get("attribute_map", {}).items():
            if alias not in vars(cls):
                setattr(cls, alias, _alias(name))

    def __init__(self, **kwargs: Any) -> None:
        for alias, name in self.attribute_map.items():
            if alias in kwargs:
                value = kwargs.pop(alias)
                if name in kwargs and kwargs[name] != value:
                    raise ConfigError(f"{type(self).__name__} got both {alias}={value!r} and {name}={kwargs[name]!r}; "
                                      f"{alias} is another name for {name}, pass only one")
                kwargs[name] = value
        num_labels = kwargs.pop("num_labels", None)
        for key, default in self.fields().items():
            value = kwargs.pop(key, copy.deepcopy(default))
            setattr(self, key, value)
        self._extra_keys: list[str] = []
        for key, value in kwargs.items():
            if key == "model_type":
                continue
            if key.startswith("__") or key in _PRIVATE or hasattr(type(self), key):
                # kept as an attribute it would replace a method or property (or be private): refuse, not corrupt
                raise ConfigError(f"{type(self).__name__} cannot keep the key '{key}': it is the name of one of its "
                                  f"own attributes, not a field; remove '{key}' from config.json")
            setattr(self, key, value)
            self._extra_keys.append(key)
        self.id2label, self.label2id = _labels(self, self.id2label, self.label2id)
        if num_labels is not None and (self.id2label is None or len(self.id2label) != num_labels):
            self.num_labels = num_labels
        self.validate()

    @classmethod
    def specs(cls) -> dict[str, tuple[str, Field | None, Any]]:
        """``{field: (annotation, Field or None, default)}``, base classes first."""
        out: dict[str, tuple[str, Field | None, Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, annotation in vars(klass).get("__annotations__", {}).items():
                if "ClassVar" in str(annotation) or key.startswith("_"):
                    continue
                declared = vars(klass).get(key, out[key][2] if key in out else None)
                spec = declared if isinstance(declared, Field) else (out[key][1] if key in out else None)
                default = declared.default if isinstance(declared, Field) else declared
                out[key] = (str(annotation), spec, default)
        return out

    @classmethod
    def fields(cls) -> dict[str, Any]:
        """Declared fields and their defaults, base classes first."""
        return {key: default for key, (_, _, default) in cls.specs().items()}

    def validate(self) -> None:
        """Check every declared field in one pass: types first (so cross-field bounds compare numbers), then each
        Field's constraints. Subclasses add rules between fields that a Field cannot say, after calling this."""
        specs = self.specs()
        for key, (annotation, _, _) in specs.items():
            check_type(self, key, annotation, getattr(self, key))
        # a bound naming another field is checked once that field is known to be in its own range
        ordered = sorted((item for item in specs.items() if item[1][1] is not None), key=lambda item: cross_field(item[1][1]))
        for key, (annotation, spec, _) in ordered:
            check_constraints(self, key, annotation, spec, getattr(self, key))

    # --- labels ------------------------------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label is not None else 2

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_LABELS:
            raise field_error(self, "num_labels", n, "", f"an int >= 1 and <= {MAX_LABELS}")
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
        """A config from a config.json dict; ``overrides`` (from_pretrained's keyword arguments) replace fields.

        An override must name a field of this class, one of its aliases, ``num_labels`` or a key of ``data``: an
        unknown name is refused (with the closest known one), so a typo never becomes a config field.
        """
        overrides = cls.check_overrides(overrides, data)
        data = {**data, **overrides}
        if cls.model_type and data.get("model_type", cls.model_type) != cls.model_type:
            raise ConfigError(
                f"{cls.__name__} reads model_type '{cls.model_type}' but the config says '{data['model_type']}'; "
                f"use zoo.AutoConfig to pick the right class"
            )
        return cls(**data)

    @classmethod
    def check_overrides(cls, overrides: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """The overrides that may become fields; refuse the rest with what to do instead."""
        out = dict(overrides)
        for key in IGNORED_OPTIONS:
            out.pop(key, None)
        if "trust_remote_code" in out:
            if out.pop("trust_remote_code"):
                raise _keyword_error(
                    "trust_remote_code=True was passed, but zoo never runs code from a model repository; install a "
                    f"zoo plugin that provides model_type '{data.get('model_type', cls.model_type)}' (`zoo plugins` "
                    "lists the registered ones) and load without trust_remote_code (False is accepted and ignored)")
        known = set(cls.fields()) | set(cls.attribute_map) | {"num_labels"} | set(data)
        for key in out:
            if key in known:
                continue
            if key in LOADING_OPTIONS or key in HUB_OPTIONS:
                raise _keyword_error(f"'{key}' is an option of a model's from_pretrained, not a {cls.__name__} field; "
                                  f"pass it to AutoModel...from_pretrained (a config does not take it)")
            names = sorted(known | LOADING_OPTIONS | HUB_OPTIONS)
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"{cls.__name__} fields: {', '.join(sorted(cls.fields()))}"
            raise _keyword_error(f"from_pretrained got an unknown keyword argument '{key}': it is not a {cls.__name__} "
                              f"field, a key of config.json, a hub option or a loading option; {hint}")
        return out

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

    def to_diff_dict(self) -> dict[str, Any]:
        """What config.json holds: :meth:`to_dict` less the shared fields still at their defaults (transformers'
        ``to_diff_dict``: no ``"output_attentions": false``, ``"return_dict": true`` or ``"architectures": null``)."""
        defaults = self._WRITTEN_ONLY_IF_SET
        return {k: v for k, v in self.to_dict().items() if not (k in defaults and v == defaults[k])}

    def to_json_string(self, use_diff: bool = True) -> str:
        """config.json's text: sorted keys, two-space indent, as transformers writes it (``use_diff=False``: every
        field, defaults included)."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    @property
    def use_return_dict(self) -> bool:
        """transformers' older name for ``return_dict`` (read-only there too)."""
        return self.return_dict

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Config:
        return config_from_file(cls, path, read_json(path), overrides)

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


def split_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the hub options from a from_pretrained kwargs dict."""
    return {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_OPTIONS}


def config_from_file(cls: type[Config], path: str | os.PathLike[str], data: dict[str, Any], overrides: dict[str, Any]) -> Config:
    """``cls.from_dict(data, **overrides)`` for the dict read from ``path``; an error about a field says where its
    value came from: the file, or the keyword argument that replaced it."""
    try:
        config = cls.from_dict(data, **overrides)
    except ConfigError as exc:
        field = getattr(exc, "field", None)
        if getattr(exc, "keyword", False):
            raise  # about a keyword argument, not about the file
        if field is not None and field in overrides:
            raise _located(exc, f"from_pretrained(..., {field}={overrides[field]!r})", "pass a value in that range") from None
        raise _located(exc, str(path), f"fix it in {Path(path).name}" if field is not None else None) from None
    # Kept (not fields, never written) so that a later error, a config that does not match its weights, can say
    # which file or keyword argument a value came from.
    config._source = str(path)
    config._overrides = frozenset(overrides)
    return config


def _keyword_error(message: str) -> ConfigError:
    error = ConfigError(message)
    error.keyword = True  # type: ignore[attr-defined]
    return error


def _located(exc: ConfigError, where: str, fix: str | None) -> ConfigError:
    error = ConfigError(f"{where}: {exc}" + (f"; {fix}" if fix else ""))
    error.field = getattr(exc, "field", None)  # type: ignore[attr-defined]
    return error


def _labels(config: Config, id2label: Any, label2id: Any) -> tuple[dict[int, str] | None, dict[str, int] | None]:
    """id2label with int keys (JSON writes them as strings) and label2id, both checked; transformers 5 writes
    id2label only, so label2id is derived when it is absent."""
    if id2label is not None:
        if not isinstance(id2label, dict):
            raise field_error(config, "id2label", id2label, f" (a {type(id2label).__name__})",
                              'an object of label ids to names, e.g. {"0": "NEGATIVE", "1": "POSITIVE"}')
        if len(id2label) > MAX_LABELS:
            raise field_error(config, "id2label", f"<{len(id2label)} labels>", "", f"at most {MAX_LABELS} labels")
        converted: dict[int, str] = {}
        for key, name in id2label.items():
            index = _label_index(key)
            if index is None:
                raise field_error(config, "id2label", id2label, f" (key {key!r} is not a label id)",
                                  'keys that are ints >= 0 written as strings, e.g. {"0": "NEGATIVE"}')
            converted[index] = name
        id2label = converted
    if label2id is not None:
        if not isinstance(label2id, dict) or not all(_label_index(v) is not None for v in label2id.values()):
            raise field_error(config, "label2id", label2id, "", 'an object of label names to ids >= 0, e.g. {"NEGATIVE": 0}')
        label2id = {k: _label_index(v) for k, v in label2id.items()}
    elif id2label is not None:
        label2id = {v: k for k, v in id2label.items()}
    return id2label, label2id


def _label_index(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key if key >= 0 else None
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 18:
        return int(key)
    return None


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object, turning every failure into a ConfigError that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileNotFoundError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc}); it should be a JSON object") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc}); it should be a JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # an int of more than 4300 digits; nesting deeper than the stack
        raise ConfigError(f"{path} is not JSON zoo can read ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(data, dict):
        kind = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(data), "null")
        raise ConfigError(f"{path} holds a JSON {kind}, expected an object")
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

