"""Does a checkpoint fit the model its config describes? Answered from headers, before any tensor is read.

``match_checkpoint`` takes a model built on the meta device (every tensor a shape and a dtype, no memory) and the
entries of ``zoo.checkpoint.open_checkpoint`` (shapes and dtypes from the file headers), and decides for every
tensor what loading will do: assign it, report it unused, or refuse the whole load. It refuses:

- a tensor whose shape differs from the parameter's (config.json says ``vocab_size: 100``, the file has 90 rows):
  a :class:`~zoo.errors.ShapeMismatchError` (a ConfigError) naming the config field of that size, its value and
  the shape the file has, unless ``ignore_mismatched_sizes`` re-initialises that layer;
- another number of repeated blocks (the config says 12 layers, the file holds 6, or the other way round), read
  from the numbered segments of the keys (``encoder.layer.<i>.``), named by the field of that count;
- an integer or bool tensor where the model has a floating-point parameter, or a float where it has an integer
  buffer: a :class:`~zoo.errors.WeightsError` naming the tensor, its dtype and the dtype expected. Float tensors of
  any precision load into float parameters (cast to the requested dtype).

So a config that does not match its weights costs milliseconds, not a model's worth of memory.

``resolve_dtype`` reads from_pretrained's ``dtype`` (a torch dtype, its name or a short one such as ``"bf16"``, or
``"auto"``, the default, as in transformers 5's ``_get_dtype``, modeling_utils.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch

from zoo.checkpoint import TensorEntry
from zoo.errors import ConfigError, ShapeMismatchError, WeightsError

logger = logging.getLogger(__name__)

_FIX = "use the weights saved with this config, or pass ignore_mismatched_sizes=True to re-initialise that layer"


def match_checkpoint(model: Any, entries: dict[str, TensorEntry], *, ignore_mismatched_sizes: bool, source: str,
                     overrides: frozenset[str] = frozenset()) -> tuple[dict[str, TensorEntry], list[str], list[str]]:
    """``(found, unexpected, mismatched)``: the entry to load into each of our keys, the checkpoint keys nothing
    uses, and the ``"key: checkpoint (..) vs model (..)"`` lines of layers left to re-initialise.

    ``source`` names where the config came from (its file) and ``overrides`` the fields a keyword argument set,
    so an error blames the right one.
    """
    tied = model._tied_pairs()
    expected = {k: v for k, v in model.state_dict(keep_vars=True).items() if k not in tied}
    found: dict[str, TensorEntry] = {}
    unexpected: list[str] = []
    tied_copies: dict[str, TensorEntry] = {}
    for ckpt_key, entry in entries.items():
        key = model._checkpoint_key_to_ours(ckpt_key, expected)
        if key in expected:
            found[key] = entry
        elif key in tied:
            tied_copies[key] = entry  # the same tensor as its source: read once, through the source
        elif not any(re.search(p, key) for p in model.ignore_unexpected):
            unexpected.append(ckpt_key)
    for copy, original in tied.items():
        # a file holding the tied copy but not its source (lm_head.weight, no wte): that copy is the source, as
        # transformers' tie_weights swaps the pair when the source is missing
        if original in expected and original not in found and copy in tied_copies:
            found[original] = tied_copies[copy]
    namer = _FieldNamer(model.config, source, overrides)
    mismatched: list[str] = []
    for key, target in expected.items():  # in the model's order: the first mismatch is the most telling one
        entry = found.get(key)
        if entry is None:
            continue
        shape = checkpoint_shape(model, key, entry)
        if shape != tuple(target.shape):
            if ignore_mismatched_sizes:
                mismatched.append(f"{key}: checkpoint {shape} vs model {tuple(target.shape)}")
                del found[key]
                continue
            raise ShapeMismatchError(namer.shape_message(key, entry, shape, tuple(target.shape)))
        check_dtype(model, key, entry, target)
    _check_block_counts(model, expected, entries, namer, ignore_mismatched_sizes)
    return found, unexpected, mismatched


def checkpoint_shape(model: Any, key: str, entry: TensorEntry) -> tuple[int, ...]:
    """The shape ``entry`` has once the model's layout adapter has turned it into ours (run on a meta tensor, so
    nothing is read); the file's shape where the adapter needs real data."""
    try:
        return tuple(model.tensor_from_checkpoint(key, torch.empty(entry.shape, dtype=entry.dtype, device="meta")).shape)
    except Exception:  # noqa: BLE001 (an adapter that reads values: the shape is checked again after reading)
        return entry.shape


#: Every name ``dtype=`` takes (after lower-casing and dropping a ``torch.`` prefix), and the torch dtype it means:
#: torch's own names and their short forms, so "bf16" works wherever "bfloat16" does (from_pretrained, pipelines,
#: SentenceEmbedder, ``zoo run --dtype``). Only floating-point dtypes: a model's weights in int8 would be garbage.
DTYPE_NAMES: dict[str, str] = {
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16", "half": "float16",
    "fp32": "float32", "float32": "float32", "float": "float32",
    "fp64": "float64", "float64": "float64", "double": "float64",
}


def resolve_dtype(dtype: torch.dtype | str | None, config: Any) -> torch.dtype | None:
    """The torch dtype that ``dtype`` names (a torch dtype, or a name of :data:`DTYPE_NAMES`, any case, with or
    without ``torch.``); for ``"auto"`` the one the config records (``dtype``, else its older name ``torch_dtype``,
    as transformers 5 reads config.json), or None when it records none: then a loader takes the weights' own dtype
    (``zoo.checkpoint.weights_dtype``), and a model already built stays as it is."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    recorded = isinstance(dtype, str) and dtype.strip().lower() == "auto"
    if recorded:
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        if dtype is None or isinstance(dtype, torch.dtype):
            return dtype
    name = DTYPE_NAMES.get(str(dtype).strip().lower().removeprefix("torch."))
    if name is None:
        where = " (the dtype config.json records, read for dtype='auto')" if recorded else ""
        raise ConfigError(f"dtype {str(dtype)[:40]!r}{where} is not a torch dtype zoo loads models in; use a torch "
                          f"dtype (torch.bfloat16, ...), 'auto', or one of: {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)


def check_dtype(model: Any, key: str, entry: TensorEntry, target: torch.Tensor) -> None:
    """Float parameters take any float tensor; integer (and bool) buffers take integer or bool tensors."""
    if target.is_floating_point():
        if entry.dtype.is_floating_point:
            return
        needed = f"a floating-point tensor (float32, float16, bfloat16, ...; the model's is {_name(target.dtype)})"
    else:
        if not entry.dtype.is_floating_point and not entry.dtype.is_complex:
            return
        needed = f"an integer tensor like the model's {_name(target.dtype)}"
    raise WeightsError(f"{entry.path}: tensor '{entry.key}' is {_name(entry.dtype)}, but '{key}' of "
                       f"{type(model).__name__} needs {needed}; the file does not hold this model's weights in a "
                       f"dtype zoo loads: re-save them from the original model")


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --- naming the config field behind a size ------------------------------------------------------------------------------------


class _FieldNamer:
    """Finds the config fields whose value is a given size, and words the mismatch errors."""

    def __init__(self, config: Any, source: str, overrides: frozenset[str]) -> None:
        self.config, self.source, self.overrides = config, source, overrides
        self.ints: dict[str, int] = {}
        self.lists: dict[str, list[Any]] = {}
        for name in [*type(config).fields(), "num_labels"]:
            value = getattr(config, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                self.ints[name] = value
            elif isinstance(value, list):
                self.lists[name] = value

    def fields_of(self, size: int) -> list[tuple[str, int]]:
        """``[(field, factor)]``: fields equal to ``size`` (factor 1), else those it is 2-4 times (GPT-2's fused
        q/k/v is 3 x n_embd, an MLP often 4 x hidden)."""
        exact = [(name, 1) for name, value in self.ints.items() if value == size]
        if exact:
            return exact
        return [(name, size // value) for name, value in self.ints.items()
                if value > 1 and size % value == 0 and 2 <= size // value <= 4]

    def blame(self, name: str, said: str) -> str:
        """``"<config.json path>: vocab_size=100"``, or ``"num_labels=5 (a keyword argument of from_pretrained)"``."""
        if name in self.overrides:
            return f"{said} (a keyword argument of from_pretrained)"
        return f"{self.source}: {said}"

    def shape_message(self, key: str, entry: TensorEntry, shape: tuple[int, ...], needed: tuple[int, ...]) -> str:
        found = f"{entry.path.name} has '{entry.key}' of shape {shape}, where this config needs {needed}"
        if key != entry.key:
            found += f" (the model's '{key}')"
        dims = [i for i, (a, b) in enumerate(zip(shape, needed)) if a != b] if len(shape) == len(needed) else []
        candidates = self.fields_of(needed[dims[0]]) if dims else []
        if not candidates:
            return f"{self.source}: the config does not match the weights: {found}; check that they belong together, {_FIX}"
        # a field that also sizes another axis of this tensor is the likelier one ((n_embd, 3 x n_embd): n_embd)
        others = [d for i, d in enumerate(needed) if i != dims[0]]
        rank = {name: (factor != 1, self.ints[name] not in others) for name, factor in candidates}
        best = min(rank.values())
        candidates = [(n, f) for n, f in candidates if rank[n] == best]
        have = shape[dims[0]]
        name, factor = candidates[0]
        said = " / ".join(f"{n}={self.ints[n]}" + (f" (x{f})" if f > 1 else "") for n, f in candidates)
        fix = f"set {name} to {have // factor} if those are the weights you meant, " if have % factor == 0 else ""
        return f"{self.blame(name, said)} does not match the weights: {found}; {fix}{_FIX}"

    def block_message(self, container: str, needed: set[int], held: set[int], path: Any) -> str:
        names = [n for n, v in self.ints.items() if v == len(needed)]
        counts = [n for n in names if re.search(r"layer|depth|block", n)]  # a count of blocks is most likely one
        names = counts or names
        names += [n for n, v in self.lists.items() if len(needed) in v and not names]
        found = (f"{path.name} holds {len(held)} blocks '{container}.N' ({_ranges(held)}) where this config needs "
                 f"{len(needed)} ({_ranges(needed)})")
        if not names:
            return f"{self.source}: the config does not match the weights: {found}; check that they belong together, {_FIX}"
        said = " / ".join(f"{n}={self.ints.get(n, self.lists.get(n))}" for n in names)
        fix = f"set {names[0]} to {len(held)} if those are the weights you meant, " if names[0] in self.ints else ""
        return f"{self.blame(names[0], said)} does not match the weights: {found}; {fix}{_FIX}"


def _ranges(indices: set[int]) -> str:
    """{0, 1, 2, 5} -> '0-2, 5'."""
    out: list[str] = []
    for i in sorted(indices):
        if out and i - 1 == int(out[-1].rsplit("-", 1)[-1]):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ", ".join(out)


# --- repeated blocks -----------------------------------------------------------------------------------------------------------


def _pattern(key: str) -> tuple[str, list[str]]:
    """``'encoder.layer.3.output.dense.weight'`` -> ``('encoder.layer.*.output.dense.weight', ['3'])``."""
    parts = key.split(".")
    indices = [p for p in parts[:-1] if p.isdigit()]
    return ".".join("*" if p.isdigit() and i < len(parts) - 1 else p for i, p in enumerate(parts)), indices


def _blocks(keys: list[str]) -> dict[str, set[int]]:
    """``{container: indices}`` of numbered segments; a nested one counts per concrete parent
    (``stages.1.layers`` is one container, ``stages.2.layers`` another)."""
    out: dict[str, set[int]] = {}
    for key in keys:
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if part.isdigit():
                out.setdefault(".".join(parts[:i]), set()).add(int(part))
    return out


def _file_container(ckpt_key: str, container: str) -> str:
    """The checkpoint's name for our ``container`` (``encoder.layer`` for ``bert.encoder.layer``): the key cut
    before the same numbered segment."""
    depth = sum(p.isdigit() for p in container.split("."))
    parts = ckpt_key.split(".")
    numbered = [i for i, p in enumerate(parts[:-1]) if p.isdigit()]
    return ".".join(parts[:numbered[depth]]) if len(numbered) > depth else container


def _check_block_counts(model: Any, expected: dict[str, Any], entries: dict[str, TensorEntry], namer: _FieldNamer,
                        ignore_mismatched_sizes: bool) -> None:
    """Refuse a checkpoint with more or fewer numbered blocks than the model where both have that container.

    Checkpoint keys are mapped to ours by their pattern (digits replaced), so ``encoder.layer.12.x`` of a base
    checkpoint counts under a task model's ``bert.encoder.layer`` even though the model has no layer 12.
    """
    patterns = {_pattern(k)[0] for k in expected}
    ours: dict[str, TensorEntry] = {}
    for ckpt_key, entry in entries.items():
        pattern, indices = _pattern(ckpt_key)
        if not indices:
            continue
        mapped = model._checkpoint_key_to_ours(pattern, patterns)
        if mapped in patterns and mapped.count("*") == len(indices):
            pieces = iter(indices)
            ours[".".join(next(pieces) if p == "*" else p for p in mapped.split("."))] = entry
    held = _blocks(list(ours))
    needed = _blocks(list(expected))
    for container in sorted(needed.keys() & held.keys(), key=lambda c: (c.count("."), c)):
        if needed[container] == held[container]:
            continue
        entry = next(e for k, e in ours.items() if k.startswith(container + "."))
        message = namer.block_message(_file_container(entry.key, container), needed[container], held[container], entry.path)
        if not ignore_mismatched_sizes:
            raise ShapeMismatchError(message)
        logger.warning("%s (ignore_mismatched_sizes=True: loading what matches)", message)
        return
