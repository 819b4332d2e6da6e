"""What a tokenizer returns and how encodings are padded afterwards.

``BatchEncoding`` is transformers' dict of model inputs with attribute access, ``.to(device)`` and the word/sequence
alignment of the Rust encodings (tokenization_utils_base.py, ``BatchEncoding``). ``pad_encodings`` is
``PreTrainedTokenizerBase.pad``/``_pad``: it pads encodings made earlier (a list of dicts, as a DataLoader collate
function receives them, or a dict of lists), keeping lists, tensors or arrays as they came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.errors import TokenizerError


class BatchEncoding(dict):
    """The tokenizer's output: a dict of model inputs with attribute access, ``.to(device)`` and word alignment."""

    def __init__(self, data: dict[str, Any], encodings: list[Any] | None = None) -> None:
        super().__init__(data)
        self.encodings = encodings

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor to ``device`` (in place; returns self, like transformers)."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Index of the word each token comes from (None for special tokens)."""
        return self._encoding("word_ids", batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 or 1 for the sequence of a pair each token belongs to (None for special tokens)."""
        return self._encoding("sequence_ids", batch_index).sequence_ids

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encoding("tokens", batch_index).tokens

    def _encoding(self, what: str, batch_index: int) -> Any:
        if not self.encodings:
            raise TokenizerError(f"{what} needs the Rust encodings; they are kept only by Tokenizer.__call__")
        return self.encodings[batch_index]


def _as_list(ids: Any) -> list[Any]:
    if hasattr(ids, "tolist"):
        return ids.tolist()
    return list(ids)


def _to_tensor(key: str, rows: list[Any], kind: str) -> Any:
    lengths = {len(r) for r in rows} if rows and isinstance(rows[0], list) else set()
    if len(lengths) > 1:
        raise TokenizerError(f"cannot make a tensor of '{key}': the sequences have different lengths {sorted(lengths)}; "
                             f"pass padding=True (and truncation=True for long texts)")
    if kind == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long)
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64)
    raise TokenizerError(f"return_tensors must be 'pt', 'np' or None, got {kind!r}")


def _tensor_kind(value: Any) -> str | None:
    """'pt' / 'np' for a torch tensor / numpy array, None for Python values."""
    module = type(value).__module__
    if module.startswith("torch"):
        return "pt"
    if module.startswith("numpy"):
        return "np"
    return None


def _to_python(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    return value


def pad_encodings(
    tokenizer: Any,
    encoded_inputs: Any,
    *,
    padding: bool | str = True,
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
    padding_side: str | None = None,
    return_attention_mask: bool | None = None,
    return_tensors: str | None = None,
) -> BatchEncoding:
    """``tokenizer.pad(...)``: see Tokenizer.pad."""
    from zoo.tokenization.files import VERY_LARGE_INTEGER
    from zoo.tokenization.inputs import PADDING, is_key

    if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
        first = encoded_inputs[0]
        missing = [i for i, e in enumerate(encoded_inputs) if not isinstance(e, Mapping) or set(e) != set(first)]
        if missing:
            raise TokenizerError(f"pad got a list of encodings whose keys differ (the first has {sorted(first)}, "
                                 f"encodings {missing[:5]} do not); pad encodings made the same way")
        encoded_inputs = {key: [e[key] for e in encoded_inputs] for key in first}
    if not isinstance(encoded_inputs, Mapping):
        raise TokenizerError(f"pad takes an encoding, a list of encodings or a dict of lists, got "
                             f"{type(encoded_inputs).__name__}")
    main = tokenizer.model_input_names[0]
    if main not in encoded_inputs:
        raise TokenizerError(f"pad needs '{main}' in the encodings; got the keys {sorted(encoded_inputs)}")
    data = dict(encoded_inputs)
    if data[main] is None or len(data[main]) == 0:
        if return_attention_mask:
            data["attention_mask"] = []
        return BatchEncoding(data)

    rows = data[main]
    first = rows[0]
    if isinstance(first, (list, tuple)):  # the first non-empty row tells lists from tensors
        first = next((r[0] for r in rows if len(r)), first)
    kind = _tensor_kind(first) or _tensor_kind(rows)
    if kind is not None:
        return_tensors = kind if return_tensors is None else return_tensors
        data = {k: _to_python(v) for k, v in data.items()}

    if not is_key(padding, PADDING):
        raise TokenizerError(f"padding must be one of {list(PADDING)}, got {padding!r}")
    strategy = PADDING[padding]
    if strategy == "max_length" and max_length is None:
        if tokenizer.model_max_length >= VERY_LARGE_INTEGER:
            raise TokenizerError("padding='max_length' needs max_length= (this tokenizer records no model_max_length)")
        max_length = tokenizer.model_max_length
    if strategy and tokenizer.pad_token_id is None:
        raise TokenizerError("this tokenizer has no pad_token, so it cannot pad; set one first "
                             "(tokenizer.pad_token = tokenizer.eos_token) or pass padding=False")
    side = padding_side or tokenizer.padding_side
    if side not in ("left", "right"):
        raise TokenizerError(f"padding_side must be 'left' or 'right', got {side!r}")
    want_mask = "attention_mask" in tokenizer.model_input_names if return_attention_mask is None else return_attention_mask

    single = not isinstance(data[main][0], (list, tuple))
    batch = {k: [v] for k, v in data.items()} if single else data
    sizes = {k: len(v) for k, v in batch.items()}
    if len(set(sizes.values())) > 1:
        raise TokenizerError(f"pad got a batch whose entries have different sizes {sizes}; every key needs one "
                             f"value per example")
    if strategy == "longest":
        max_length = max(len(r) for r in batch[main])
    if strategy and max_length is not None and pad_to_multiple_of and max_length % pad_to_multiple_of:
        max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of

    fill = {main: tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": tokenizer.pad_token_type_id,
            "special_tokens_mask": 1}
    out: dict[str, list[Any]] = {k: [] for k in batch}
    if want_mask:
        out.setdefault("attention_mask", [])
    for i in range(len(batch[main])):
        example = {k: list(v[i]) if isinstance(v[i], (list, tuple)) else v[i] for k, v in batch.items()}
        length = len(example[main])
        if want_mask and "attention_mask" not in example:
            example["attention_mask"] = [1] * length
        difference = (max_length - length) if strategy and max_length is not None else 0
        for key, value in example.items():
            # transformers pads only these keys; others (labels, ...) are left for the caller, as there
            if difference > 0 and key in fill and (key != "attention_mask" or want_mask):
                pads = [fill[key]] * difference
                value = value + pads if side == "right" else pads + value
            out[key].append(value)
    result = {k: v[0] for k, v in out.items()} if single else out
    if return_tensors is not None:
        result = {k: _to_tensor(k, v if not single else [v], return_tensors) for k, v in result.items()}
        if single:  # one example as a tensor: transformers keeps it one-dimensional
            result = {k: v[0] for k, v in result.items()}
    return BatchEncoding(result)
