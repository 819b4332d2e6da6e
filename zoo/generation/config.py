"""GenerationConfig: the defaults of ``generate()``, read from and written to ``generation_config.json``.

The fields, their defaults and the file are transformers' (generation/configuration_utils.py): a file written by
either library loads in the other with the same values, and keys zoo does not know are kept and written back. What
differs is how "not set" is told apart from a default: transformers 5 stores ``None`` and fills the defaults at
``generate`` time; here every field holds its default (``GenerationConfig().max_length == 20``) and the config
remembers which fields were set (:meth:`GenerationConfig.is_set`), which is what ``generate`` needs (a default
``max_length`` means 20 new tokens, a set one the total length) and what :meth:`~GenerationConfig.save_pretrained`
writes.

Options of transformers that zoo does not implement are of two kinds. Those that cannot change what zoo generates
(cache and compilation settings, the knobs of assisted decoding, which needs an assistant model zoo does not take)
are kept, written back and noted in the log. Those that would change the output (contrastive search, DoLa,
watermarking, ...) are kept too, but ``generate`` refuses to run with a value other than their "off" value, saying
so, rather than silently generating something else.

Importing this module loads no torch.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import os
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, GenerationError, UnknownGenerationOptionError

logger = logging.getLogger(__name__)

__all__ = ["GENERATION_CONFIG_NAME", "GenerationConfig", "load_generation_config"]

GENERATION_CONFIG_NAME = "generation_config.json"

#: The fields zoo implements, with transformers' defaults (GenerationConfig._get_default_generation_params).
FIELDS: dict[str, Any] = {
    # length of the output
    "max_length": 20, "max_new_tokens": None, "min_length": 0, "min_new_tokens": None, "early_stopping": False,
    "max_time": None, "stop_strings": None,
    # strategy
    "do_sample": False, "num_beams": 1, "use_cache": True,
    # logits processing
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
    "bad_words_ids": None, "sequence_bias": None, "renormalize_logits": False, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "remove_invalid_values": False, "exponential_decay_length_penalty": None,
    "suppress_tokens": None, "begin_suppress_tokens": None,
    # outputs
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "output_logits": False, "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None, "bos_token_id": None, "eos_token_id": None, "decoder_start_token_id": None,
}

#: transformers' fields that cannot change what zoo generates: zoo keeps one preallocated cache, compiles nothing,
#: and has no assisted decoding (it takes no assistant model), so any value of these leaves the output as it is.
INERT: frozenset[str] = frozenset({
    "cache_implementation", "cache_config", "max_cache_len", "compile_config", "disable_compile", "prefill_chunk_size",
    "continuous_batching_config", "is_assistant", "num_assistant_tokens", "num_assistant_tokens_schedule",
    "assistant_confidence_threshold", "prompt_lookup_num_tokens", "max_matching_ngram_size", "assistant_early_exit",
    "assistant_lookbehind", "target_lookbehind", "assistant_ensemble_weight", "speculation_type",
})

#: transformers' fields that would change the output, which zoo does not implement, with the values that turn them
#: off (None always does). ``generate`` refuses any other value.
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "encoder_repetition_penalty": (1.0,), "encoder_no_repeat_ngram_size": (0,), "top_h": (), "guidance_scale": (1.0,),
    "token_healing": (False,), "watermarking_config": (), "use_mtp": (False,), "low_memory": (False,),
    "penalty_alpha": (0.0,), "dola_layers": (), "diversity_penalty": (0.0,), "num_beam_groups": (1,),
    "constraints": (), "force_words_ids": (),
}

#: Bookkeeping keys of transformers' files: kept, never options.
METADATA = ("_from_model_config", "transformers_version")
_DROPPED_METADATA = ("_commit_hash", "_original_object_hash")

#: Flags that make transformers return an output object (GenerationConfig.extra_output_flags).
EXTRA_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")


def _is_int(value: Any, low: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _token_ids(value: Any) -> Any:
    """A tensor of ids (``eos_token_id=torch.tensor([..])``) as plain ints, as the file and the checks want them."""
    return value.tolist() if hasattr(value, "tolist") else value


class GenerationConfig:
    """The options of ``generate()``, with transformers' names and defaults; unknown keys are kept.

    Build one with keyword arguments (``GenerationConfig(max_new_tokens=40, do_sample=True)``), from a model's
    ``generation_config.json`` (:meth:`from_pretrained`) or from its config (:meth:`from_model_config`). Every
    model that generates has one as ``model.generation_config``; ``generate(**options)`` starts from a copy of it.
    """

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_set", set())
        object.__setattr__(self, "_extra_keys", [])
        object.__setattr__(self, "_metadata", {})
        for key, default in FIELDS.items():
            object.__setattr__(self, key, copy.deepcopy(default))
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.validate()

    def __setattr__(self, key: str, value: Any) -> None:
        if key in METADATA or key in _DROPPED_METADATA:
            if key in METADATA:
                self._metadata[key] = value
            return
        if key.startswith("_") or key in ("validate", "update", "to_dict", "is_set"):
            raise UnknownGenerationOptionError(f"GenerationConfig cannot hold the key {key!r}: it is private or the "
                                               f"name of one of its methods; remove it")
        if key in ("eos_token_id", "pad_token_id", "bos_token_id", "suppress_tokens", "begin_suppress_tokens"):
            value = _token_ids(value)
        if value is None and FIELDS.get(key) is not None and key != "top_k":
            # transformers' None is "not set", i.e. the default (top_k=None is "no top-k", as in generate there)
            object.__setattr__(self, key, copy.deepcopy(FIELDS[key]))
            self._set.discard(key)
            return
        if key not in FIELDS and key not in self._extra_keys:
            self._extra_keys.append(key)
        object.__setattr__(self, key, value)
        self._set.add(key)

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given (to the constructor, in the file, or assigned since), not left at its default."""
        return name in self._set

    # --- checks ------------------------------------------------------------------------------------------------------

    def validate(self) -> None:
        """Refuse values generate cannot use, all problems in one message (each names the field and the fix)."""
        problems = self._problems()
        if problems:
            raise GenerationError("; ".join(problems))

    def _problems(self) -> list[str]:
        p: list[str] = []
        ints = {"max_length": 1, "min_length": 0, "num_beams": 1, "num_return_sequences": 1, "no_repeat_ngram_size": 0}
        for name, low in ints.items():
            if not _is_int(getattr(self, name), low):
                p.append(f"{name} must be an int >= {low}, got {getattr(self, name)!r}")
        for name in ("max_new_tokens", "min_new_tokens"):
            value = getattr(self, name)
            if value is not None and not _is_int(value, 0):
                p.append(f"{name} must be an int >= 0 (or None), got {value!r}")
        if self.top_k is not None and not _is_int(self.top_k, 0):
            p.append(f"top_k must be an int >= 0 (0 or None: no top-k), got {self.top_k!r}")
        for name in ("do_sample", "use_cache", "renormalize_logits", "remove_invalid_values", "return_dict_in_generate",
                     *EXTRA_OUTPUT_FLAGS):
            if not isinstance(getattr(self, name), bool):
                p.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not (isinstance(self.early_stopping, bool) or self.early_stopping == "never"):
            p.append(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        p += self._float_problems()
        p += self._token_problems()
        if isinstance(self.num_return_sequences, int) and self.num_return_sequences > 1 and isinstance(self.num_beams, int):
            if self.num_beams == 1 and self.do_sample is False:
                p.append(f"num_return_sequences={self.num_return_sequences} needs do_sample=True or num_beams > 1: "
                         f"greedy decoding has a single answer")
            elif self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                p.append(f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams ({self.num_beams}): "
                         f"beam search returns its best beams")
        return p

    def _float_problems(self) -> list[str]:
        p: list[str] = []
        if not _is_number(self.temperature) or (self.do_sample is True and not self.temperature > 0):
            p.append(f"temperature must be > 0 when sampling, got {self.temperature!r} (for greedy decoding pass "
                     f"do_sample=False)")
        ranges = {"top_p": (0.0, 1.0, True), "min_p": (0.0, 1.0, True), "typical_p": (0.0, 1.0, False),
                  "epsilon_cutoff": (0.0, 1.0, None), "eta_cutoff": (0.0, 1.0, None)}
        for name, (low, high, low_ok) in ranges.items():
            value = getattr(self, name)
            if value is None and name == "min_p":
                continue
            if low_ok is None:  # [0, 1): 0 is off
                ok = _is_number(value) and low <= value < high
                interval = "[0, 1) (0: off)"
            else:
                ok = _is_number(value) and (low <= value if low_ok else low < value) and value <= high
                interval = "[0, 1]" if low_ok else "(0, 1] (1: off)"
            if not ok:
                p.append(f"{name} must be in {interval}, got {value!r}")
        if not _is_number(self.repetition_penalty) or not self.repetition_penalty > 0:
            p.append(f"repetition_penalty must be > 0 (1.0: none), got {self.repetition_penalty!r}")
        if not _is_number(self.length_penalty):
            p.append(f"length_penalty must be a number (1.0: none), got {self.length_penalty!r}")
        if self.max_time is not None and not (_is_number(self.max_time) and self.max_time > 0):
            p.append(f"max_time must be a number of seconds > 0 (or None), got {self.max_time!r}")
        decay = self.exponential_decay_length_penalty
        if decay is not None and not (isinstance(decay, (list, tuple)) and len(decay) == 2 and _is_int(decay[0], 0)
                                      and _is_number(decay[1])):
            p.append(f"exponential_decay_length_penalty must be (start_index, decay_factor), got {decay!r}")
        return p

    def _token_problems(self) -> list[str]:
        p: list[str] = []
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id", "forced_bos_token_id"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                p.append(f"{name} must be a token id (an int) or None, got {value!r}")
        for name in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            if value is not None and not (_is_int(value, 0) or isinstance(value, (list, tuple))
                                          and all(_is_int(v, 0) for v in value)):
                p.append(f"{name} must be a token id or a list of them (ints >= 0), got {value!r}")
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (list, tuple)) and all(_is_int(v, 0) for v in value)):
                p.append(f"{name} must be a list of token ids, got {value!r}")
        bad = self.bad_words_ids
        if bad is not None and not (isinstance(bad, (list, tuple)) and bad and all(
                isinstance(seq, (list, tuple)) and seq and all(_is_int(t, 0) for t in seq) for seq in bad)):
            p.append(f"bad_words_ids must be a non-empty list of non-empty lists of token ids, e.g. [[5], [7, 8]], got "
                     f"{bad!r}")
        bias = self.sequence_bias
        if bias is not None and not _valid_sequence_bias(bias):
            p.append(f"sequence_bias must be a non-empty list of [token ids, bias] pairs, e.g. [[[5, 6], -2.0]], got "
                     f"{bias!r}")
        stops = self.stop_strings
        if stops is not None and not (isinstance(stops, str) and stops or isinstance(stops, (list, tuple)) and stops
                                      and all(isinstance(s, str) and s for s in stops)):
            p.append(f"stop_strings must be a non-empty string or a list of them, got {stops!r}")
        if isinstance(self.suppress_tokens, (list, tuple)):
            for name in ("forced_bos_token_id", "forced_eos_token_id"):
                forced = getattr(self, name)
                forced_set = {forced} if _is_int(forced) else set(forced) if isinstance(forced, (list, tuple)) else None
                if forced_set and forced_set <= set(self.suppress_tokens):
                    p.append(f"every token of {name} ({sorted(forced_set)}) is also in suppress_tokens, which would "
                             f"leave no token to generate at that step; remove it from one of them (to prevent an "
                             f"early end of sequence use min_new_tokens)")
        return p

    def refuse_unsupported(self) -> None:
        """Raise if an option of transformers that zoo does not implement is turned on; log the inert ones."""
        on = [k for k, off in UNSUPPORTED.items() if k in self._extra_keys and getattr(self, k) is not None
              and getattr(self, k) not in off]
        if on:
            raise UnknownGenerationOptionError(
                f"{', '.join(f'{k}={getattr(self, k)!r}' for k in on)}: zoo's generate does not implement "
                f"{'this option' if len(on) == 1 else 'these options'} of transformers (supported: greedy and "
                f"sampling, beam search and beam sampling with the processors of zoo.generation.logits_process); "
                f"unset {'it' if len(on) == 1 else 'them'} (e.g. model.generation_config.{on[0]} = None)")
        inert = [k for k in INERT if k in self._extra_keys and getattr(self, k) is not None]
        if inert:
            logger.info("generate: %s change nothing in zoo (one preallocated cache, no compilation, no assisted "
                        "decoding); the output is what transformers generates with them", ", ".join(sorted(inert)))

    # --- dict / JSON -------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every field and kept key, plus transformers' metadata when it was read from a file."""
        out = {key: copy.deepcopy(getattr(self, key)) for key in list(FIELDS) + self._extra_keys}
        out.update(copy.deepcopy(self._metadata))
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """What the file holds: the fields that were set or differ from their default, the kept keys, metadata."""
        return {key: value for key, value in self.to_dict().items()
                if key not in FIELDS or key in self._set or value != FIELDS[key]}

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        if isinstance(data.get("sequence_bias"), dict):  # tuple keys: transformers' list form is what JSON holds
            data["sequence_bias"] = [[list(k), v] for k, v in data["sequence_bias"].items()]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> GenerationConfig:
        """A config from a generation_config.json dict; ``overrides`` replace values. An override must be a field,
        a key of ``data`` or an option name of transformers: anything else is refused, with the closest name."""
        known = set(FIELDS) | set(data) | INERT | set(UNSUPPORTED)
        for key in overrides:
            if key not in known:
                raise unknown_option_error(key, "GenerationConfig", sorted(FIELDS))
        return cls(**{**data, **overrides})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **overrides: Any) -> GenerationConfig:
        from zoo.configuration import read_json

        data = read_json(path)
        try:
            return cls.from_dict(data, **overrides)
        except UnknownGenerationOptionError:
            raise
        except GenerationError as exc:
            raise GenerationError(f"{path}: {exc}; fix it in {Path(path).name} or override it "
                                  f"(from_pretrained(..., name=value))") from None

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], config_file_name: str | None = None,
                        **kwargs: Any) -> GenerationConfig:
        """Read ``generation_config.json`` from a model folder or a Hub repo; keyword arguments are hub options
        (revision, token, cache_dir, local_files_only, force_download) or values that replace the file's."""
        from zoo.configuration import split_hub_kwargs
        from zoo.hub import locate

        path = locate(identifier, config_file_name or GENERATION_CONFIG_NAME, **split_hub_kwargs(kwargs))
        return cls.from_json_file(path, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike[str], config_file_name: str | None = None) -> Path:
        """Write ``generation_config.json`` (atomically) into ``folder``; transformers.GenerationConfig reads it."""
        from zoo.configuration import write_text_atomic

        self.validate()
        folder = Path(folder)
        if folder.is_file():
            raise ConfigError(f"{folder} is a file; save_pretrained writes into a folder")
        folder.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(folder / (config_file_name or GENERATION_CONFIG_NAME), self.to_json_string())

    @classmethod
    def from_model_config(cls, model_config: Any) -> GenerationConfig:
        """The generation options a model's config carries (eos/bos/pad/decoder_start token ids, and the legacy
        generation fields old config.json files hold), as transformers' ``from_model_config`` takes them."""
        data = model_config if isinstance(model_config, dict) else model_config.to_dict()
        options = set(FIELDS) | INERT | set(UNSUPPORTED)
        config = cls(**{k: v for k, v in data.items() if k in options and v is not None})
        # some models keep their generation settings in the decoder's config: used where still unset
        for name in ("decoder", "generator", "text_config"):
            sub = data.get(name) if isinstance(model_config, dict) else getattr(model_config, name, None)
            if sub is None:
                continue
            sub = sub if isinstance(sub, dict) else sub.to_dict()
            for key, value in sub.items():
                if key in FIELDS and value is not None and getattr(config, key) == FIELDS[key]:
                    setattr(config, key, value)
            break
        if not config.return_dict_in_generate and any(getattr(config, f) for f in EXTRA_OUTPUT_FLAGS):
            config.return_dict_in_generate = True
        config._metadata["_from_model_config"] = True
        config.validate()
        return config

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set the given fields (and kept keys); return the keyword arguments that are neither, unused."""
        unused = {}
        for key, value in kwargs.items():
            if key in FIELDS or key in self._extra_keys or key in METADATA:
                setattr(self, key, value)
            else:
                unused[key] = value
        self.validate()
        return unused

    def copy(self) -> GenerationConfig:
        """An independent copy (generate makes one per call: only the values that can be mutated are copied)."""
        new = object.__new__(type(self))
        for key, value in self.__dict__.items():
            new.__dict__[key] = value if isinstance(value, (bool, int, float, str, type(None))) else copy.deepcopy(value)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> GenerationConfig:
        return self.copy()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationConfig):
            return NotImplemented
        # through JSON, as the file would hold them: a tuple and a list of the same ids are the same option
        strip = lambda c: {k: v for k, v in json.loads(c.to_json_string(use_diff=False)).items()  # noqa: E731
                           if k not in METADATA}
        return strip(self) == strip(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


def _valid_sequence_bias(bias: Any) -> bool:
    if isinstance(bias, dict):
        return bool(bias) and all(isinstance(k, tuple) and k and all(_is_int(t, 0) for t in k) and _is_number(v)
                                  for k, v in bias.items())
    return isinstance(bias, (list, tuple)) and bool(bias) and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], (list, tuple)) and pair[0]
        and all(_is_int(t, 0) for t in pair[0]) and _is_number(pair[1]) for pair in bias)


def unknown_option_error(name: str, where: str, supported: list[str],
                         of_transformers: tuple[str, ...] = ()) -> UnknownGenerationOptionError:
    """The error for an option ``where`` (generate, GenerationConfig) does not take: the closest supported name
    first, then the full list. ``of_transformers``: more names transformers takes that zoo does not."""
    if name in UNSUPPORTED or name in INERT or name in of_transformers:
        what = f"'{name}' is an option of transformers that zoo's {where} does not implement"
    else:
        what = f"{where} got an unknown option '{name}'"
    close = difflib.get_close_matches(name, supported, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return UnknownGenerationOptionError(f"{what}; {hint}supported options: {', '.join(supported)}")


def load_generation_config(source: Any, model_config: Any, **hub_kwargs: Any) -> GenerationConfig:
    """The generation config a model loaded from ``source`` (a folder, a Hub repo id or a RepoFiles) starts with:
    its ``generation_config.json`` when there is one, else the options of its config
    (:meth:`GenerationConfig.from_model_config`), as transformers' ``from_pretrained`` does."""
    from zoo.hub import repo_files

    path = repo_files(source, **hub_kwargs).get(GENERATION_CONFIG_NAME)
    if path is None:
        return GenerationConfig.from_model_config(model_config)
    return GenerationConfig.from_json_file(path)
