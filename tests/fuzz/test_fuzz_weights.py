"""Fuzzing model.safetensors: generated headers and bodies against ``from_pretrained``.

Each example rebuilds the weights file of a small valid BERT from its tensors, byte by byte as the safetensors
format lays it out (8-byte little-endian header length, JSON header, data), and breaks it: a header length too
small, too large or absurd, a header that is not JSON or not an object, dtypes that are unknown, wrong for the
bytes or integer where a float belongs, offsets out of range, overlapping or reversed, shapes that do not match
the byte size or the model, huge declared shapes, a truncated or padded body. The property:

- ``from_pretrained`` returns a model whose outputs are finite (and equal the original's when the file still
  holds the same values), or raises a ``ZooError`` whose message names model.safetensors;
- within 10 s (a hang or an allocation of a declared size fails the property);
- and the file is byte-for-byte what it was.
"""

from __future__ import annotations

import json
import struct
import time

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from safetensors.torch import load_file

import zoo
from tests.fuzz.common import checkpoint_with, folder_digest
from zoo.errors import ZooError

TIME_LIMIT_S = 10.0
NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int16: "I16",
         torch.int32: "I32", torch.int64: "I64", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(folder, tensors, reference outputs) of a small random BERT saved by zoo."""
    from zoo.plugins.bert.config import BertConfig
    from zoo.plugins.bert.modeling import BertModel

    folder = tmp_path_factory.mktemp("fuzz-weights") / "bert"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                        max_position_embeddings=32)
    model = BertModel.from_config(config).eval()
    model.save_pretrained(folder)
    tensors = Tensors(load_file(folder / "model.safetensors"))
    with torch.no_grad():
        reference = model(**INPUTS).last_hidden_state
    return folder, tensors, reference


INPUTS = {"input_ids": torch.tensor([[2, 7, 9, 3], [2, 11, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}


def raw_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b""


@st.composite
def safetensors_files(draw, tensors: dict[str, torch.Tensor]) -> tuple[bytes, bool]:
    """``(file bytes, same_values)``: same_values when the file, though re-encoded, holds the original values."""
    keys = sorted(tensors)
    entries = {k: {"dtype": "F32", "shape": list(tensors[k].shape), "data": raw_bytes(tensors[k])} for k in keys}
    same = True
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(keys))
        entry = entries[key]
        how = draw(st.sampled_from(["dtype-converted", "dtype-label", "shape", "huge-shape", "drop", "reorder"]))
        if how == "dtype-converted":  # a valid file in another dtype: float ones load, integer ones are refused
            dtype = draw(st.sampled_from(list(NAMES)))
            entry.update(dtype=NAMES[dtype], data=raw_bytes(tensors[key].to(dtype)))
            same = same and dtype in (torch.float32, torch.float64)
        elif how == "dtype-label":  # the same bytes, another label
            entry["dtype"] = draw(st.one_of(st.sampled_from(["F16", "I64", "BOOL", "F8_E4M3", "U16", "F4", "f32", ""]),
                                            st.integers(), st.none(), st.text(max_size=5)))
            same = False
        elif how == "shape":
            entry["shape"] = draw(st.one_of(st.lists(st.integers(-2, 70), max_size=3),
                                            st.just(list(reversed(entry["shape"]))),
                                            st.lists(st.sampled_from([1.5, "8", None, True]), min_size=1, max_size=2)))
            same = False
        elif how == "huge-shape":  # declared sizes nobody should allocate
            entry["shape"] = [draw(st.sampled_from([10**12, 2**40, 2**63 - 1])), *entry["shape"][1:]]
            same = False
        elif how == "drop":
            del entries[key]
            keys.remove(key)
            if not keys:
                break
            same = False
        else:
            keys.reverse()  # data laid out in another order: still valid
    header: dict = {"__metadata__": {"format": "pt"}}
    body = b""
    for key in keys:
        entry = entries[key]
        header[key] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [len(body), len(body) + len(entry["data"])]}
        body += entry["data"]
    original = {key: list(header[key]["data_offsets"]) for key in keys}
    for _ in range(draw(st.integers(0, 2)) if keys else 0):
        key = draw(st.sampled_from(keys))
        offsets = original[key]
        how = draw(st.sampled_from(["shift", "reverse", "overlap", "past-end", "not-ints", "metadata"]))
        if how == "shift":
            delta = draw(st.sampled_from([-16, -8, -4, -1, 1, 4, 8, 16]))
            header[key]["data_offsets"] = [max(0, offsets[0] + delta), offsets[1] + delta]
        elif how == "reverse":
            header[key]["data_offsets"] = [offsets[1], offsets[0]]
        elif how == "overlap":
            header[key]["data_offsets"] = [0, offsets[1] - offsets[0]]
        elif how == "past-end":
            header[key]["data_offsets"] = [offsets[0], offsets[1] + draw(st.sampled_from([1, 4096, 2**62]))]
        elif how == "not-ints":
            header[key]["data_offsets"] = draw(st.sampled_from([[0], "0-4", [0.0, 4.0], None, [-4, 0]]))
        else:
            header["__metadata__"] = draw(st.sampled_from([{"format": 3}, [], "pt", None]))
        same = False
    text = json.dumps(header).encode()
    which = draw(st.sampled_from(["ok", "ok", "ok", "not-json", "not-object", "not-utf8"]))
    if which == "not-json":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif which == "not-object":
        text = json.dumps(list(header)).encode()
    elif which == "not-utf8":
        text = b"{\xff\xfe" + text[1:]
    text += b" " * (-len(text) % 8)
    length = len(text)
    prefix_how = draw(st.sampled_from(["ok", "ok", "ok", "ok", "small", "large", "absurd", "short"]))
    if prefix_how == "small":
        length = draw(st.integers(0, max(0, len(text) - 1)))
    elif prefix_how == "large":
        length = len(text) + draw(st.integers(1, 10**6))
    elif prefix_how == "absurd":
        length = draw(st.sampled_from([2**63, 2**64 - 1, 10**12]))
    data = (b"\x01\x02\x03" if prefix_how == "short" else struct.pack("<Q", length)) + text + body
    tail = draw(st.sampled_from(["ok", "ok", "ok", "truncated", "padded"]))
    if tail == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif tail == "padded":
        data += draw(st.binary(min_size=1, max_size=16))
    intact = which == "ok" and prefix_how == "ok" and tail == "ok"
    return data, same and intact


class Tensors(dict):
    """The checkpoint's tensors, shown by their count in hypothesis' reports (not every value)."""

    def __repr__(self) -> str:
        return f"<{len(self)} tensors of the fuzzed BERT>"


@given(data=st.data())
def test_generated_safetensors_files_load_or_are_a_clear_error(checkpoint, data):
    source, tensors, reference = checkpoint
    content, same_values = data.draw(safetensors_files(tensors), label="model.safetensors")
    with checkpoint_with(source, "model.safetensors", content) as folder:
        before = folder_digest(folder)
        start = time.perf_counter()
        try:
            model = zoo.AutoModel.from_pretrained(folder)
        except ZooError as exc:
            assert "model.safetensors" in str(exc), str(exc)
            event(f"refused: {type(exc).__name__}")
        else:
            with torch.no_grad():
                out = model(**INPUTS).last_hidden_state
            assert torch.isfinite(out).all()
            if same_values:
                torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
            event("loaded, same outputs" if same_values else "loaded, outputs finite")
        assert time.perf_counter() - start < TIME_LIMIT_S
        assert folder_digest(folder) == before


@given(header_len=st.integers(0, 2**64 - 1), rest=st.binary(max_size=256))
def test_arbitrary_bytes_after_a_header_length_are_a_clear_error(checkpoint, header_len, rest):
    source, _, _ = checkpoint
    with checkpoint_with(source, "model.safetensors", struct.pack("<Q", header_len) + rest) as folder:
        start = time.perf_counter()
        with pytest.raises(ZooError, match="model.safetensors"):
            zoo.AutoModel.from_pretrained(folder)
        assert time.perf_counter() - start < TIME_LIMIT_S
