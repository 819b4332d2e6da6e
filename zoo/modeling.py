"""Base class of every zoo model: ``from_pretrained`` and ``save_pretrained`` on the files the Hub publishes.

Loading builds the module with its parameters on the meta device (no memory, no random init), then puts each
checkpoint tensor straight into place: safetensors are memory-mapped and assigned, not copied into a second,
randomly initialised model. Parameter names equal the published checkpoint keys, so loading is a lookup; where a
published layout differs (legacy ``gamma``/``beta``, a base-model prefix present or absent, GPT-2's transposed
Conv1D), the model class declares small key/tensor adapters used both ways, so files stay interchangeable with
transformers' ``PreTrainedModel.from_pretrained`` / ``save_pretrained`` (modeling_utils.py).

Weights are read from ``model.safetensors``, a sharded ``model.safetensors.index.json``, or ``pytorch_model.bin``
(only through ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from zoo.configuration import Config, read_json, split_hub_kwargs, write_text_atomic
from zoo.errors import ModelFileNotFoundError, ShapeMismatchError, WeightsError
from zoo.outputs import ModelOutput  # noqa: F401 (re-exported: plugins import it from here too)

logger = logging.getLogger(__name__)

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
#: Every weights file name, in the order they are preferred.
WEIGHTS_NAMES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME)
_SHARD_RE = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


# --- shared pieces of model code ----------------------------------------------------------------------------------------


def key_padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask -> (B, 1, 1, T) boolean SDPA mask, or None when nothing is masked.

    Returning None for an all-ones mask lets scaled_dot_product_attention take its unmasked (fastest) kernel.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, config: Config) -> torch.Tensor:
    """Sequence-classification loss as transformers picks it: regression (MSE), single-label (cross-entropy) or
    multi-label (BCE with logits), from ``config.problem_type`` or, when unset, from num_labels and the labels' dtype.
    """
    import torch.nn.functional as F

    num_labels = logits.shape[-1]
    problem = config.problem_type
    if problem is None:
        if num_labels == 1:
            problem = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem = "single_label_classification"
        else:
            problem = "multi_label_classification"
        config.problem_type = problem
    if problem == "regression":
        return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype)) if num_labels == 1 else F.mse_loss(logits, labels.to(logits.dtype))
    if problem == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    if problem == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    raise ValueError(f"problem_type {problem!r} is not one of regression, single_label_classification, "
                     f"multi_label_classification; fix config.problem_type")


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Extractive QA loss: mean of start and end cross-entropies; positions outside the input are ignored."""
    import torch.nn.functional as F

    ignored = start_logits.size(1)
    start = start.view(-1).clamp(0, ignored)
    end = end.view(-1).clamp(0, ignored)
    return (F.cross_entropy(start_logits, start, ignore_index=ignored) + F.cross_entropy(end_logits, end, ignore_index=ignored)) / 2


# --- building without allocation ---------------------------------------------------------------------------------------

_skip_init = False
#: torch.nn.init functions that modules' reset_parameters call; made no-ops on meta tensors by meta_parameters().
_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")


@contextlib.contextmanager
def meta_parameters() -> Iterator[None]:
    """Create every parameter on the meta device; buffers stay real (they are small and often computed).

    Patching ``register_parameter`` (as accelerate's ``init_empty_weights`` does) rather than using
    ``torch.device("meta")`` keeps computed buffers usable, and module-level ``reset_parameters`` calls run on meta
    tensors, so building a model costs neither memory nor random init.

    The ``torch.nn.init`` functions return meta tensors untouched (as transformers' ``no_init_weights`` does): they
    would be no-ops anyway, and ``normal_`` on a meta tensor goes through a torch._refs decomposition that imports
    torch._dynamo (and sympy), about 2 s and 70 MB on the first load of a process.
    """
    global _skip_init
    original = nn.Module.register_parameter

    def register_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    def skip_meta(init: Any) -> Any:
        def init_unless_meta(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return tensor if tensor.is_meta else init(tensor, *args, **kwargs)
        return init_unless_meta

    inits = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
    for name, init in inits.items():
        setattr(nn.init, name, skip_meta(init))
    previous, _skip_init = _skip_init, True
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]
        for name, init in inits.items():
            setattr(nn.init, name, init)
        _skip_init = previous


def parse_size(size: int | str) -> int:
    """``"5GB"`` / ``"500MB"`` / ``"2GiB"`` / bytes -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", size.upper().replace("IB", "iB"))
    if not match:
        raise ValueError(f"cannot read size {size!r}; write it like 5GB, 500MB or a number of bytes")
    number, unit = float(match.group(1)), (match.group(2) or "B")
    base = 1024 if "i" in unit else 1000
    power = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[0] if unit != "B" else "B"]
    return int(number * base**power)


# --- the base class ----------------------------------------------------------------------------------------------------


class PreTrainedModel(nn.Module):
    """A torch module that loads and saves Hub checkpoints unmodified.

    Subclasses set ``config_class`` and ``base_model_prefix`` and may declare:

    - ``tied_weights``: ``{target: source}`` parameter names tied when ``config.tie_word_embeddings``;
    - ``checkpoint_key_renames``: ``(pattern, replacement)`` regexes turning legacy checkpoint keys into ours;
    - ``ignore_unexpected`` / ``ignore_missing``: regexes of keys not worth a warning;
    - ``tensor_from_checkpoint`` / ``tensor_to_checkpoint``: layout adapters, inverse to each other.
    """

    config_class: ClassVar[type[Config]] = Config
    base_model_prefix: ClassVar[str] = ""
    tied_weights: ClassVar[dict[str, str]] = {}
    checkpoint_key_renames: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"LayerNorm\.gamma$", "LayerNorm.weight"),
        (r"LayerNorm\.beta$", "LayerNorm.bias"),
    )
    ignore_unexpected: ClassVar[tuple[str, ...]] = ()
    ignore_missing: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # --- init -------------------------------------------------------------------------------------------------------

    def post_init(self) -> None:
        """Called at the end of a subclass ``__init__``: initialise weights (skipped while loading) and tie."""
        if not _skip_init:
            self.apply(self._init_weights)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' BERT-style init; architectures override where theirs differs."""
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def _tied_pairs(self) -> dict[str, str]:
        return dict(self.tied_weights) if getattr(self.config, "tie_word_embeddings", True) else {}

    def tie_weights(self) -> None:
        """Make each tied target the very same Parameter as its source (so they stay equal while training)."""
        for target, source in self._tied_pairs().items():
            owner, _, name = target.rpartition(".")
            setattr(self.get_submodule(owner), name, self.get_parameter(source))

    # --- properties -------------------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters() if p.is_floating_point()).dtype

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # --- construction -----------------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config, *, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None) -> PreTrainedModel:
        """A freshly initialised model (random weights as transformers initialises them)."""
        model = cls(config)
        target_dtype = _resolve_dtype(dtype, config)
        return model.to(device=device, dtype=target_dtype) if device or target_dtype else model

    @classmethod
    def from_pretrained(
        cls,
        identifier: str | os.PathLike[str],
        *,
        config: Config | None = None,
        dtype: torch.dtype | str | None = None,
        device: str | torch.device | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Load a model from a folder or a Hub repo id.

        Extra keyword arguments override config fields (``num_labels=3``, ``problem_type=...``); hub options
        (``revision``, ``token``, ``cache_dir``, ``local_files_only``, ``force_download``) go to the hub client.
        ``dtype`` may be a torch dtype, its name, or ``"auto"`` for the dtype the config records.
        """
        from zoo.hub import repo_files

        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        if config is None:
            config = cls.config_class.from_json_file(repo.require("config.json"), **kwargs)
        elif kwargs:
            config = type(config).from_dict(config.to_dict(), **kwargs)
        files = _weight_files(repo)
        target_dtype = _resolve_dtype(dtype, config) or torch.float32
        target_device = torch.device(device) if device is not None else torch.device("cpu")
        with meta_parameters():
            model = cls(config)
        info = model._load_checkpoint(files, target_dtype, target_device, ignore_mismatched_sizes)
        model.eval()
        return (model, info) if output_loading_info else model

    # --- loading ----------------------------------------------------------------------------------------------------

    def tensor_from_checkpoint(self, key: str, tensor: torch.Tensor) -> torch.Tensor:
        """Turn a checkpoint tensor into our parameter's layout (identity unless the published layout differs)."""
        return tensor

    def tensor_to_checkpoint(self, key: str, tensor: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`tensor_from_checkpoint`, used by ``save_pretrained``."""
        return tensor

    def _checkpoint_key_to_ours(self, key: str, expected: dict[str, torch.Tensor]) -> str:
        for pattern, replacement in self.checkpoint_key_renames:
            key = re.sub(pattern, replacement, key)
        if key in expected or not self.base_model_prefix:
            return key
        prefix = self.base_model_prefix + "."
        if key.startswith(prefix) and key[len(prefix):] in expected:
            return key[len(prefix):]  # a task checkpoint loaded into the bare base model
        if prefix + key in expected:
            return prefix + key  # a base-model checkpoint loaded under a task head
        return key

    def _load_checkpoint(self, files: list[Path], dtype: torch.dtype, device: torch.device, ignore_mismatched_sizes: bool) -> dict[str, list[str]]:
        tied = self._tied_pairs()
        expected = {k: v for k, v in self.state_dict(keep_vars=True).items() if k not in tied}
        loaded: set[str] = set()
        unexpected: list[str] = []
        mismatched: list[str] = []
        mismatched_keys: set[str] = set()
        modules = dict(self.named_modules(remove_duplicate=False))  # one walk, not a get_submodule per key
        for path in files:
            for ckpt_key, read in _iter_checkpoint(path, device):
                key = self._checkpoint_key_to_ours(ckpt_key, expected)
                if key not in expected:
                    if key not in tied and not any(re.search(p, key) for p in self.ignore_unexpected):
                        unexpected.append(ckpt_key)
                    continue
                tensor = self.tensor_from_checkpoint(key, read())
                target = expected[key]
                if tensor.shape != target.shape:
                    if ignore_mismatched_sizes:
                        mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(target.shape)}")
                        mismatched_keys.add(key)
                        continue
                    raise ShapeMismatchError(
                        f"{path.name}: tensor '{ckpt_key}' has shape {tuple(tensor.shape)} but the model's "
                        f"'{key}' has shape {tuple(target.shape)}; check that config.json matches the weights, "
                        f"or pass ignore_mismatched_sizes=True to re-initialise that layer"
                    )
                if tensor.dtype != dtype and tensor.is_floating_point() and target.is_floating_point():
                    tensor = tensor.to(dtype=dtype)
                if tensor.device != device:
                    tensor = tensor.to(device)
                self._assign(key, tensor, modules)
                loaded.add(key)
        missing = [k for k in expected if k not in loaded]
        self._initialise_missing(missing, dtype, device)
        self.tie_weights()
        # a mismatched tensor was in the checkpoint: it gets its own warning, not the missing one
        reported_missing = [k for k in missing if k not in mismatched_keys and not any(re.search(p, k) for p in self.ignore_missing)]
        name = type(self).__name__
        if reported_missing:
            logger.warning(
                "Some weights of %s were not in the checkpoint and were newly initialised: %s. "
                "Train the model on a downstream task before using it for predictions.",
                name, ", ".join(reported_missing),
            )
        if unexpected:
            logger.warning("Some checkpoint weights were not used by %s: %s. This is expected when loading a "
                           "checkpoint of another task head.", name, ", ".join(unexpected))
        if mismatched:
            logger.warning("Some weights of %s had other shapes and were re-initialised: %s", name, "; ".join(mismatched))
        return {"missing_keys": reported_missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched}

    def _assign(self, key: str, tensor: torch.Tensor, modules: dict[str, nn.Module] | None = None) -> None:
        owner_name, _, name = key.rpartition(".")
        owner = modules[owner_name] if modules is not None else self.get_submodule(owner_name)
        if name in owner._parameters:
            old = owner._parameters[name]
            owner._parameters[name] = nn.Parameter(tensor, requires_grad=old.requires_grad if old is not None else True)
        else:
            owner._buffers[name] = tensor

    def _initialise_missing(self, missing: list[str], dtype: torch.dtype, device: torch.device) -> None:
        """Give missing parameters real memory and transformers-style init (a new task head, say)."""
        by_module: dict[str, list[str]] = {}
        for key in missing:
            owner, _, name = key.rpartition(".")
            by_module.setdefault(owner, []).append(name)
        for owner_name, names in by_module.items():
            owner = self.get_submodule(owner_name)
            # Buffers are built for real (only parameters go to the meta device) and hold what their module gave
            # them (BatchNorm's running statistics, its batch counter): a missing one keeps that value.
            kept = [n for n in names if n in owner._buffers and owner._buffers[n] is not None and not owner._buffers[n].is_meta]
            for name in kept:
                buf = owner._buffers[name]
                owner._buffers[name] = buf.to(device=device, dtype=dtype if buf.is_floating_point() else buf.dtype)
            names = [n for n in names if n not in kept]
            for name in names:
                old = owner._parameters.get(name) if name in owner._parameters else owner._buffers.get(name)
                assert old is not None, f"state_dict listed {owner_name}.{name} but the module has no such tensor"
                new = torch.empty(old.shape, dtype=dtype if old.is_floating_point() else old.dtype, device=device)
                self._assign(f"{owner_name}.{name}" if owner_name else name, new)
            if not names:
                continue
            direct = [n for n in list(owner._parameters) + list(owner._buffers) if n not in kept]
            if set(names) >= {n for n in direct if getattr(owner, n) is not None}:
                with torch.no_grad():
                    self._init_weights(owner)
            else:  # part of a module came from the checkpoint: initialise only the rest
                with torch.no_grad():
                    for name in names:
                        tensor = getattr(owner, name)
                        if name == "bias":
                            tensor.zero_()
                        elif isinstance(owner, nn.LayerNorm):
                            tensor.fill_(1.0)
                        else:
                            tensor.normal_(0.0, getattr(self.config, "initializer_range", 0.02))

    # --- saving -----------------------------------------------------------------------------------------------------

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors as a checkpoint stores them: tied copies left out, published layouts restored."""
        tied = self._tied_pairs()
        out: dict[str, torch.Tensor] = {}
        seen: set[tuple[int, int]] = set()
        for key, tensor in self.state_dict().items():
            if key in tied:
                continue
            tensor = self.tensor_to_checkpoint(key, tensor.detach()).contiguous()
            ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
            if ident in seen:  # safetensors refuses shared storage; untied aliases are written as copies
                tensor = tensor.clone()
            seen.add(ident)
            out[key] = tensor
        return out

    def save_pretrained(self, folder: str | os.PathLike[str], *, max_shard_size: int | str = "5GB") -> Path:
        """Write config.json and model.safetensors (sharded with an index above ``max_shard_size``).

        Files are written through temporary names and renamed, so a failure leaves the folder as it was; weight
        files of an earlier save in the same folder that the new one does not use are removed.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        # As transformers does: the config records the weights' dtype, so dtype="auto" loads them as saved.
        dtype_name = str(self.dtype).removeprefix("torch.")
        self.config.set_extra("dtype", dtype_name)
        if getattr(self.config, "torch_dtype", None) is not None:  # transformers' older name, from an older file
            self.config.set_extra("torch_dtype", dtype_name)
        state = self.checkpoint_state_dict()
        limit = parse_size(max_shard_size)
        shards: list[dict[str, torch.Tensor]] = [{}]
        size = 0
        for key, tensor in state.items():
            nbytes = tensor.numel() * tensor.element_size()
            if shards[-1] and size + nbytes > limit:
                shards.append({})
                size = 0
            shards[-1][key] = tensor
            size += nbytes
        names = [SAFE_WEIGHTS_NAME] if len(shards) == 1 else [
            f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))
        ]
        for name, shard in zip(names, shards):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            try:
                save_file({k: v.cpu() for k, v in shard.items()}, str(tmp), metadata={"format": "pt"})
                os.replace(tmp, folder / name)
            finally:
                tmp.unlink(missing_ok=True)
        index_path = folder / SAFE_WEIGHTS_INDEX_NAME
        if len(shards) > 1:
            total = sum(t.numel() * t.element_size() for t in state.values())
            index = {"metadata": {"total_size": total},
                     "weight_map": {k: n for n, shard in zip(names, shards) for k in shard}}
            write_text_atomic(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")
        keep = set(names) | ({SAFE_WEIGHTS_INDEX_NAME} if len(shards) > 1 else set())
        for stale in [folder / SAFE_WEIGHTS_NAME, index_path, *(p for p in folder.glob("model-*-of-*.safetensors") if _SHARD_RE.match(p.name))]:
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
        self.config.save_pretrained(folder)
        return folder


# --- checkpoint files ----------------------------------------------------------------------------------------------------


def _resolve_dtype(dtype: torch.dtype | str | None, config: Config) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"dtype {dtype!r} is not a torch dtype; use e.g. torch.float16, 'bfloat16' or 'auto'")
    return resolved


def _weight_files(repo: Any) -> list[Path]:
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
        return [repo.require(shard) for shard in dict.fromkeys(weight_map.values())]
    raise ModelFileNotFoundError(
        f"{repo.identifier} has no weights: none of {', '.join(WEIGHTS_NAMES)} is there; "
        f"save the model with save_pretrained or point at a folder that has them"
    )


def _iter_checkpoint(path: Path, device: torch.device) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, read)`` pairs; ``read()`` returns the tensor, so unused keys are never read."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            handle = safe_open(str(path), framework="pt", device=str(device) if device.type != "cpu" else "cpu")
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file ({exc}); it is truncated or corrupt: "
                               f"delete it and download or save it again") from None
        with handle as f:
            views = _safetensors_views(path) if device.type == "cpu" else {}
            for key in f.keys():
                def read(key: str = key) -> torch.Tensor:
                    view = views.get(key)
                    if view is not None:
                        return view()
                    try:
                        return f.get_tensor(key)
                    except Exception as exc:
                        raise WeightsError(f"{path}: tensor '{key}' cannot be read ({exc}); the file is corrupt, "
                                           f"delete it and download or save it again") from None
                yield key, read
        return
    state = _torch_load(path)
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise WeightsError(f"{path}: entry '{key}' is a {type(tensor).__name__}, not a tensor")
        yield key, (lambda tensor=tensor: tensor)


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def _safetensors_views(path: Path) -> dict[str, Any]:
    """``{key: make_tensor}`` over one copy-on-write mmap of the whole file, for the tensors it can serve.

    ``safe_open(...).get_tensor`` maps the same file but slices a storage per tensor, which costs about 25 us a key
    (5 ms of a bert-base load). Here the file is mapped once (``shared=False``: writes to a parameter never reach
    the file) and each tensor is a view at its offset. The file has already been validated by ``safe_open``; a
    dtype not in the table, an offset not aligned to its element size or a big-endian host fall back to
    ``get_tensor`` (an empty dict).
    """
    if sys.byteorder != "little":
        return {}
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        size = path.stat().st_size
        storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size)
    except (OSError, ValueError, RuntimeError, struct.error):
        return {}
    base = 8 + header_len
    views: dict[str, Any] = {}
    for key, entry in header.items():
        if key == "__metadata__" or not isinstance(entry, dict):
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype"))
        offsets, shape = entry.get("data_offsets"), entry.get("shape")
        if dtype is None or not isinstance(offsets, list) or not isinstance(shape, list):
            continue
        start = base + offsets[0]
        if start % dtype.itemsize or base + offsets[1] > size:
            continue

        def make(dtype: torch.dtype = dtype, offset: int = start // dtype.itemsize, shape: list[int] = shape) -> torch.Tensor:
            return torch.empty(0, dtype=dtype).set_(storage, offset, shape)

        views[key] = make
    return views


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
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"{path} cannot be read as a PyTorch checkpoint ({exc}); it is truncated or corrupt") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, expected a dict of tensors")
    return state
