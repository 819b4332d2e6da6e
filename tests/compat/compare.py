"""One deep comparison for everything an idiom returns, in either library.

Results are plain structures: ints, strings, floats, lists/tuples, dicts, tensors and numpy arrays, and output objects.
Output objects (transformers' ModelOutput, zoo's output dataclasses, BatchEncoding) are compared by their fields:
each becomes a dict of its non-None fields first (a plain dict an idiom builds keeps its None values). Tensors must
agree in shape and dtype; integer and bool tensors exactly, float tensors within atol 1e-5 (rtol 1e-5), as the
plugin tests judge fp32 parity. Floats likewise; ints, strings, bools and None exactly. A list and a tuple of equal
items are equal (an idiom that cares about the type returns ``type(x).__name__``). A difference raises
AssertionError with the path to it (``result['scores'][2]``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

ATOL = RTOL = 1e-5


def plain(value: Any) -> Any:
    """``value`` with output objects turned into dicts of their non-None fields (recursively)."""
    if isinstance(value, (torch.Tensor, np.ndarray, str, bytes, int, float, bool)) or value is None:
        return value
    if type(value) is dict:  # an idiom's own dict: a None in it is a value to compare
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Mapping) or _is_mapping_like(value):  # an output object: its unset fields are left out
        return {key: plain(value[key]) for key in value.keys() if value[key] is not None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {key: plain(item) for key, item in fields.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _is_mapping_like(value: Any) -> bool:
    """transformers' BatchEncoding is a UserDict, not a Mapping subclass everywhere; anything with keys() and item
    access is read as a mapping."""
    return hasattr(value, "keys") and hasattr(value, "__getitem__") and not isinstance(value, (list, tuple, type))


def assert_same(got: Any, expected: Any, path: str = "result") -> None:
    """``got`` (zoo's result) equals ``expected`` (transformers'), as the module docstring defines equal."""
    _compare(plain(got), plain(expected), path)


def _compare(got: Any, expected: Any, path: str) -> None:
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        _compare_arrays(got, expected, path)
    elif isinstance(expected, dict):
        assert isinstance(got, dict), f"{path}: expected a mapping with keys {sorted(expected)}, got {_short(got)}"
        assert set(got) == set(expected), (f"{path}: keys differ: missing {sorted(set(expected) - set(got))}, "
                                           f"unexpected {sorted(set(got) - set(expected))}")
        for key in expected:
            _compare(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(got, list), f"{path}: expected a sequence of {len(expected)}, got {_short(got)}"
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}: {_short(got)}"
        for i, (a, b) in enumerate(zip(got, expected)):
            _compare(a, b, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert _is_number(got), f"{path}: expected float {expected}, got {_short(got)}"
        close = got == expected or (math.isnan(expected) and math.isnan(got)) or \
            abs(got - expected) <= ATOL + RTOL * abs(expected)
        assert close, f"{path}: {got} != {expected} (atol {ATOL})"
    else:
        same_kind = type(got) is type(expected) or (_is_int(got) and _is_int(expected))
        assert same_kind, f"{path}: type {type(got).__name__} != {type(expected).__name__}: {_short(got)}"
        assert got == expected, f"{path}: {_short(got)} != {_short(expected)}"


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool: True must not pass for 1."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _compare_arrays(got: Any, expected: Any, path: str) -> None:
    kind = type(expected)
    assert isinstance(got, kind), f"{path}: expected a {kind.__module__}.{kind.__name__}, got {_short(got)}"
    if isinstance(expected, np.ndarray):
        got, expected = torch.from_numpy(np.ascontiguousarray(got)), torch.from_numpy(np.ascontiguousarray(expected))
    got, expected = got.detach().cpu(), expected.detach().cpu()
    assert got.shape == expected.shape, f"{path}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    assert got.dtype == expected.dtype, f"{path}: dtype {got.dtype} != {expected.dtype}"
    if expected.is_floating_point() or expected.is_complex():
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL, equal_nan=True,
                                   msg=lambda m: f"{path}: {m}")
    else:
        assert torch.equal(got, expected), f"{path}: {got.tolist()} != {expected.tolist()}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
