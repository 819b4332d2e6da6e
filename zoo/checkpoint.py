"""Checkpoint files: which weight files a model folder has, and what each holds, read without loading it.

``open_checkpoint`` returns one :class:`TensorEntry` per stored tensor, with its name, shape and dtype taken from
the safetensors header alone (8 bytes of length, then JSON; safetensors' format spec, huggingface/safetensors
README), so a loader can compare a whole checkpoint with the model a config describes before a single tensor is
read. ``entry.read()`` then returns the tensor: a view into one copy-on-write memory map of the file (writes to a
parameter never reach the file), or ``safe_open(...).get_tensor`` where a view cannot serve it. A tensor that is
loaded in another dtype or onto another device is read with ``entry.convert(dtype, device)`` instead: straight from
the file, a slice at a time, into the converted tensor, so loading a bf16 file as float32 (or onto a GPU) holds the
result and one slice, never the result beside the whole mapped file.

``weights_dtype`` is the dtype ``dtype="auto"`` takes when config.json records none: transformers'
``_get_dtype`` rule (modeling_utils.py), read from the headers.

``pytorch_model.bin`` is read only through ``torch.load(weights_only=True)``, which refuses anything but tensors and
plain containers; with ``mmap=True`` its tensors are not read into memory either.

The header is checked as safetensors checks it (known dtypes, non-negative shapes, offsets that tile the data
exactly, a header inside the file); any violation is the file being truncated or corrupt, and only that is ever
reported with the words "truncated or corrupt".
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.configuration import read_json
from zoo.errors import ModelFileNotFoundError, WeightsError

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
#: Every weights file name, in the order they are preferred.
WEIGHTS_NAMES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME)
#: safetensors refuses headers above 100 MB (safetensors' MAX_HEADER_SIZE); so does zoo, before reading one.
MAX_HEADER_SIZE = 100_000_000
#: ``TensorEntry.convert`` reads this many bytes of a tensor at a time (the most it holds beside the result).
CONVERT_CHUNK_BYTES = 16 * 2**20

_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, attr) for name, attr in {
        "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
        "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    }.items() if isinstance(getattr(torch, attr, None), torch.dtype)
}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a checkpoint: where it is, what it is, and how to read it."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    path: Path
    read: Callable[[], torch.Tensor]
    #: ``convert(dtype, device)``: the tensor in ``dtype`` on ``device``, filled from the file a slice at a time
    #: (nothing of the file stays mapped); None where only ``read`` can serve (.bin and TensorFlow entries).
    convert: Callable[[torch.dtype, torch.device], torch.Tensor] | None = None


def corrupt(path: Path, reason: str) -> WeightsError:
    return WeightsError(f"{path} is not a readable safetensors file ({reason}); it is truncated or corrupt: "
                        f"delete it and download or save it again")


# --- which files -------------------------------------------------------------------------------------------------------------


def weight_files(repo: Any) -> list[Path]:
    """The weight files of a folder/repo, preferring safetensors; a sharded index expands to its shards."""
    for name in WEIGHTS_NAMES:
        if not repo.exists(name):
            continue
        path = repo.require(name)
        if not name.endswith(".index.json"):
            return [path]
        index = read_json(path)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise WeightsError(f"{path} has no 'weight_map'; the index is corrupt, re-download or re-save the model")
        shards = list(dict.fromkeys(weight_map.values()))
        for shard in shards:
            if not isinstance(shard, str) or not shard or "\0" in shard or len(shard) > 255:
                raise WeightsError(f"{path} maps a tensor to {str(shard)[:80]!r}, which is not a shard file name; the "
                                   f"index is corrupt, re-download or re-save the model")
        return [repo.require(shard) for shard in shards]
    raise ModelFileNotFoundError(
        f"{repo.identifier} has no weights: none of {', '.join(WEIGHTS_NAMES)} is there; "
        f"save the model with save_pretrained or point at a folder that has them"
    )


# --- what they hold ----------------------------------------------------------------------------------------------------------


def open_checkpoint(files: list[Path], stack: contextlib.ExitStack) -> dict[str, TensorEntry]:
    """Every tensor of ``files`` by checkpoint key, from headers only; files stay open until ``stack`` closes."""
    entries: dict[str, TensorEntry] = {}
    scratch: list[memoryview] = []  # the read buffer of every entry's convert: one for the whole checkpoint
    for path in files:
        if path.suffix == ".safetensors":
            entries.update(_safetensors_entries(path, stack, scratch))
        else:
            for key, tensor in _torch_load(path).items():
                if not isinstance(tensor, torch.Tensor):
                    raise WeightsError(f"{path}: entry '{key}' is a {type(tensor).__name__}, not a tensor")
                entries[key] = TensorEntry(str(key), tuple(tensor.shape), tensor.dtype, path, lambda t=tensor: t)
    return entries


def weights_dtype(files: list[Path], entries: dict[str, TensorEntry]) -> torch.dtype:
    """The dtype of a checkpoint, for ``dtype="auto"`` when config.json records none, found as transformers 5 finds
    it (``_get_dtype`` / ``get_state_dict_dtype`` in modeling_utils.py): the ``dtype`` a sharded index's metadata
    records; else that of the first floating-point tensor (float8 ones aside: no model is built in those) of the
    first weight file, shards in name order and keys in sorted order (the order of ``safe_open(...).keys()``; a
    .bin file's own order). A first file with no float tensor falls through to the other files, then to float32
    (transformers would take that file's first integer dtype, which no model can be built in).
    """
    recorded = _index_dtype(files)
    if recorded is not None:
        return recorded
    by_file: dict[Path, list[TensorEntry]] = {}
    for entry in entries.values():
        by_file.setdefault(entry.path, []).append(entry)
    for path in sorted(by_file, key=lambda p: p.name):
        ordered = sorted(by_file[path], key=lambda e: e.key) if path.suffix == ".safetensors" else by_file[path]
        for entry in ordered:
            if entry.dtype.is_floating_point and not str(entry.dtype).startswith(("torch.float8", "torch.float4")):
                return entry.dtype
    return torch.float32


def _index_dtype(files: list[Path]) -> torch.dtype | None:
    """``metadata.dtype`` of the sharded index the shards ``files`` come from, if it records one."""
    if not files or files[0].name in (SAFE_WEIGHTS_NAME, PT_WEIGHTS_NAME):
        return None
    index = files[0].with_name(SAFE_WEIGHTS_INDEX_NAME if files[0].suffix == ".safetensors" else PT_WEIGHTS_INDEX_NAME)
    if not index.is_file():
        return None
    metadata = read_json(index).get("metadata")
    name = metadata.get("dtype") if isinstance(metadata, dict) else None
    if name is None:
        return None
    dtype = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise WeightsError(f"{index} records dtype {str(name)[:40]!r} in its metadata, which is not a torch dtype; "
                           f"fix or remove metadata.dtype, or pass dtype= to from_pretrained")
    return dtype


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[torch.dtype, tuple[int, ...], int, int]], int]:
    """``({key: (dtype, shape, begin, end)}, data_start)``, reading only the header, checked as safetensors does.

    Offsets are relative to ``data_start`` (8 + the header's length).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise corrupt(path, f"{size} bytes, shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_SIZE or 8 + header_len > size:
                raise corrupt(path, f"the header declares {header_len} bytes but the file has {size}")
            raw = f.read(header_len)
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise corrupt(path, f"the header is not JSON: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise corrupt(path, f"the header is a JSON {type(header).__name__}, not an object")
    data_size = size - 8 - header_len
    tensors: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise corrupt(path, "__metadata__ is not an object of strings")
            continue
        tensors[key] = _header_entry(path, key, entry)
    end = 0
    for key, (dtype, shape, begin, stop) in sorted(tensors.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != end:
            raise corrupt(path, f"tensor '{key}' starts at byte {begin} of the data, expected {end} "
                                f"(tensors overlap or leave a gap)")
        end = stop
    if end != data_size:
        raise corrupt(path, f"the header describes {end} bytes of tensor data but the file holds {data_size}")
    return tensors, 8 + header_len


def _header_entry(path: Path, key: str, entry: Any) -> tuple[torch.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict):
        raise corrupt(path, f"entry '{key}' is not an object")
    dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype")) if isinstance(entry.get("dtype"), str) else None
    if dtype is None:
        raise corrupt(path, f"tensor '{key}' has dtype {str(entry.get('dtype'))[:40]!r}, not one of "
                            f"{', '.join(_SAFETENSORS_DTYPES)}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise corrupt(path, f"tensor '{key}' has shape {str(shape)[:80]}, not a list of sizes >= 0")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise corrupt(path, f"tensor '{key}' has data_offsets {str(offsets)[:80]}, not [begin, end] with 0 <= begin <= end")
    nbytes = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise corrupt(path, f"tensor '{key}' of shape {tuple(shape)} and dtype {entry['dtype']} needs {nbytes} bytes "
                            f"but its data_offsets span {offsets[1] - offsets[0]}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _safetensors_entries(path: Path, stack: contextlib.ExitStack,
                         scratch: list[memoryview] | None = None) -> dict[str, TensorEntry]:
    """Entries of one safetensors file, served from one copy-on-write mmap of the whole file.

    ``safe_open(...).get_tensor`` maps the same file but slices a storage per tensor, which costs about 25 us a key
    (5 ms of a bert-base load). Here the file is mapped once (``shared=False``) and each tensor is a view at its
    offset. A tensor whose offset is not aligned to its element size, or any tensor on a big-endian host, is read
    through ``get_tensor`` instead.

    ``convert`` does not map the file: a view's pages, once read, stay resident as long as the mapping lives (to
    the end of the load), so converting views would hold the converted model and the whole file at once (3x the
    weights for bf16 -> float32). It reads plain bytes into one reusable buffer and copies each slice into the result.
    """
    from safetensors import SafetensorError, safe_open

    header, data_start = read_safetensors_header(path)
    try:  # safetensors' own check of the same header; it maps the file but reads no tensor
        handle = stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
    except (SafetensorError, OSError) as exc:
        raise corrupt(path, str(exc)) from None
    storage: list[Any] = []

    def mapped() -> Any:
        if not storage:
            try:
                storage.append(torch.UntypedStorage.from_file(str(path), shared=False, nbytes=path.stat().st_size))
            except (OSError, RuntimeError):
                storage.append(None)
        return storage[0]

    def read(key: str, dtype: torch.dtype, shape: tuple[int, ...], start: int) -> torch.Tensor:
        whole = mapped() if sys.byteorder == "little" and start % dtype.itemsize == 0 else None
        if whole is not None:
            return torch.empty(0, dtype=dtype).set_(whole, start // dtype.itemsize, shape)
        try:
            return handle.get_tensor(key)
        except Exception as exc:  # noqa: BLE001 (safetensors raises several types; each means the same here)
            raise corrupt(path, f"tensor '{key}' cannot be read: {exc}") from None

    files: list[Any] = []
    scratch = [] if scratch is None else scratch  # one read buffer, grown to at most CONVERT_CHUNK_BYTES

    def convert(key: str, stored: torch.dtype, shape: tuple[int, ...], start: int, dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
        out = torch.empty(shape, dtype=dtype, device=device)
        flat = out.view(-1)  # (numel,)
        total, itemsize = flat.numel(), stored.itemsize
        if total == 0:
            return out
        if not files:
            files.append(stack.enter_context(open(path, "rb", buffering=0)))
        per_chunk = max(1, CONVERT_CHUNK_BYTES // itemsize)
        needed = min(total, per_chunk) * itemsize
        if not scratch or len(scratch[0]) < needed:
            scratch[:] = [memoryview(bytearray(needed))]
        for first in range(0, total, per_chunk):
            count = min(per_chunk, total - first)
            chunk = scratch[0][: count * itemsize]
            _read_exactly(files[0], start + first * itemsize, chunk, path, key)
            # a blocking copy (CPU, or pageable memory to a GPU), so the buffer is free again when it returns
            flat[first:first + count].copy_(torch.frombuffer(chunk, dtype=stored))  # (count,)
        return out

    little = sys.byteorder == "little"  # the file is little-endian: bytes read as they are only on such a host
    return {
        key: TensorEntry(key, shape, dtype, path,
                         lambda key=key, dtype=dtype, shape=shape, start=data_start + begin: read(key, dtype, shape, start),
                         (lambda to, device, key=key, stored=dtype, shape=shape, start=data_start + begin:
                          convert(key, stored, shape, start, to, device)) if little else None)
        for key, (dtype, shape, begin, _) in header.items()
    }


def _read_exactly(f: Any, offset: int, into: memoryview, path: Path, key: str) -> None:
    f.seek(offset)
    done = 0
    while done < len(into):
        try:
            n = f.readinto(into[done:])
        except OSError as exc:
            raise WeightsError(f"{path} cannot be read ({exc.strerror or exc})") from None
        if not n:  # the header was checked against the file's size: the file shrank since
            raise corrupt(path, f"tensor '{key}' ends past the end of the file")
        done += n


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        # torch's message opens with advice on loading unsafely; name only what the file asked to unpickle
        found = re.search(r"Unsupported (?:global: GLOBAL|operand) \S+", str(exc))
        raise WeightsError(f"{path} holds objects other than tensors, and zoo never unpickles arbitrary objects "
                           f"({found.group(0) if found else 'weights-only unpickling refused it'}); convert it to "
                           f"safetensors with a tool you trust") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} cannot be read as a PyTorch checkpoint ({exc}); it is truncated or corrupt") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, expected a dict of tensors")
    return state
