"""Base class of every zoo model: ``from_pretrained`` and ``save_pretrained`` on the files the Hub publishes.

Loading, in order: check the device (a missing GPU is said to be missing, before any file is read); read and
validate config.json (zoo/config_fields.py); read the weight files' headers (zoo/checkpoint.py); build the module
with every tensor on the meta device (no memory, no random init); compare it with the headers, so a config that
does not match its weights is refused before anything is allocated (zoo/loading.py); then put each checkpoint
tensor straight into place: safetensors are memory-mapped and assigned, not copied into a second, randomly
initialised model. Parameter names equal the published checkpoint keys, so loading is a lookup; where a published
layout differs (legacy ``gamma``/``beta``, a base-model prefix present or absent, GPT-2's transposed Conv1D), the
model class declares small key/tensor adapters used both ways, so files stay interchangeable with transformers'
``PreTrainedModel.from_pretrained`` / ``save_pretrained`` (modeling_utils.py). The everyday model API (embeddings and
their resizing, gradient checkpointing, ``num_parameters``, ``return_dict=False``) is zoo/model_api.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from zoo.checkpoint import (PT_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME,  # noqa: F401 (re-exported)
                            SAFE_WEIGHTS_NAME, WEIGHTS_NAMES, TensorEntry, open_checkpoint, weight_files,
                            weights_dtype)
from zoo.configuration import CONFIG_NAME, Config, config_from_file, split_hub_kwargs, write_text_atomic
from zoo.devices import resolve_device
from zoo.errors import ConfigError, DeviceError, ModelFileNotFoundError, ShapeMismatchError, ZooError
from zoo.loading import match_checkpoint
from zoo.loading import resolve_dtype as _resolve_dtype  # noqa: F401 (pipelines and zoo.convert import it from here)
from zoo.model_api import GradientCheckpointingLayer, ModelAPIMixin, adjust_tied_bias  # noqa: F401 (re-exported)
from zoo.outputs import ModelOutput  # noqa: F401 (re-exported: plugins import it from here too)

logger = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


# --- shared pieces of model code ----------------------------------------------------------------------------------------


_is_exporting = getattr(torch.compiler, "is_exporting", None)  # torch >= 2.5


def is_exporting() -> bool:
    """True while ``torch.export`` records a graph (zoo.export). A shortcut taken on the values of an input
    (``bool(mask.all())``) cannot be recorded in a graph that must serve every input, so the general path is traced."""
    return _is_exporting is not None and bool(_is_exporting())


def key_padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask -> (B, 1, 1, T) boolean SDPA mask, or None when nothing is masked.

    Returning None for an all-ones mask lets scaled_dot_product_attention take its unmasked (fastest) kernel
    (not while exporting: the exported graph always applies the mask it is given).
    """
    if attention_mask is None or (not is_exporting() and bool(attention_mask.all())):
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
#: torch.nn.init functions that modules' reset_parameters call; made no-ops on meta tensors by empty_weights().
_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")


@contextlib.contextmanager
def empty_weights() -> Iterator[None]:
    """Build modules with every tensor, parameters and buffers alike, on the meta device: no memory, no init.

    Construction runs under ``torch.device("meta")``, so the factory calls inside module constructors
    (``nn.Embedding``'s ``torch.empty((num_embeddings, dim))``) never touch real memory: a config of 10^7 x 4096
    embeddings builds in milliseconds. (Moving each parameter to meta once created, as accelerate's
    ``init_empty_weights`` does, allocates it first.) Buffers are meta too; loading fills what the checkpoint holds
    and gives the rest real memory through ``_init_weights`` (as transformers 5 does), see ``_initialise_missing``.

    The ``torch.nn.init`` functions return meta tensors untouched (as transformers' ``no_init_weights`` does): they
    would be no-ops anyway, and ``normal_`` on a meta tensor goes through a torch._refs decomposition that imports
    torch._dynamo (and sympy), about 2 s and 70 MB on the first load of a process.
    """
    global _skip_init

    def skip_meta(init: Any) -> Any:
        def init_unless_meta(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return tensor if tensor.is_meta else init(tensor, *args, **kwargs)
        return init_unless_meta

    inits = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    for name, init in inits.items():
        setattr(nn.init, name, skip_meta(init))
    previous, _skip_init = _skip_init, True
    try:
        with torch.device("meta"):
            yield
    finally:
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


class PreTrainedModel(ModelAPIMixin):
    """A torch module that loads and saves Hub checkpoints unmodified.

    Subclasses set ``config_class`` and ``base_model_prefix`` and may declare:

    - ``tied_weights``: ``{target: source}`` parameter names tied when ``config.tie_word_embeddings``;
    - ``checkpoint_key_renames``: ``(pattern, replacement)`` regexes turning legacy checkpoint keys into ours;
    - ``ignore_unexpected`` / ``ignore_missing``: regexes of keys not worth a warning;
    - ``tensor_from_checkpoint`` / ``tensor_to_checkpoint``: layout adapters, inverse to each other;
    - ``input_embeddings_name`` / ``output_embeddings_name``: where the token embeddings and the vocabulary
      projection are (zoo/model_api.py), and :class:`GradientCheckpointingLayer` as the base of the repeated block.
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
    #: "int8" once the projections are int8 (``from_pretrained(quantization="int8")``, zoo/quantization.py), else None
    quantization: str | None = None

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
        elif isinstance(module, (nn.LayerNorm, nn.modules.batchnorm._NormBase)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                module.reset_running_stats()

    def _tied_pairs(self) -> dict[str, str]:
        return dict(self.tied_weights) if getattr(self.config, "tie_word_embeddings", True) else {}

    def tie_weights(self) -> None:
        """Make each tied target the very same Parameter as its source (so they stay equal while training).

        A projection whose weight is now embeddings of another size (after ``resize_token_embeddings``) gets its
        bias fitted to it, zeros for the new rows, as transformers' ``_adjust_bias`` does.
        """
        for target, source in self._tied_pairs().items():
            owner_name, _, name = target.rpartition(".")
            owner = self.get_submodule(owner_name)
            setattr(owner, name, self.get_parameter(source))
            adjust_tied_bias(owner)

    def train(self, mode: bool = True) -> PreTrainedModel:
        if mode and self.quantization is not None:  # refused before any module changes mode
            from zoo.quantization import training_refused

            raise training_refused()
        return super().train(mode)

    # --- properties -------------------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters() if p.is_floating_point()).dtype

    # --- construction -----------------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config, *, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None,
                    torch_dtype: torch.dtype | str | None = None, attn_implementation: str | None = None) -> PreTrainedModel:
        """A freshly initialised model (random weights as transformers initialises them), in ``dtype``; without one,
        in the dtype the config records, float32 when it records none (transformers 5's ``_from_config``)."""
        check_attn_implementation(attn_implementation, config)
        target_device = resolve_device(device) if device is not None else None
        model = cls(config)
        asked = dtype if dtype is not None else torch_dtype
        target_dtype = _resolve_dtype("auto" if asked is None else asked, config)
        return model.to(device=target_device, dtype=target_dtype) if target_device or target_dtype else model

    @classmethod
    def from_pretrained(
        cls,
        identifier: str | os.PathLike[str],
        *,
        config: Config | None = None,
        dtype: torch.dtype | str | None = "auto",
        device: str | torch.device | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        attn_implementation: str | None = None,
        device_map: Any = None,
        use_safetensors: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Load a model from a folder or a Hub repo id.

        Extra keyword arguments override config fields (``num_labels=3``, ``problem_type=...``, ``return_dict=False``,
        ``output_attentions=True``); hub options (``revision``, ``token``, ``cache_dir``, ``local_files_only``,
        ``force_download``) go to the hub client; any other name is refused (zoo/configuration.py,
        ``Config.check_overrides``). ``dtype`` may be a torch dtype, its name, or ``"auto"``, the default (as in
        transformers 5): the dtype config.json records (``dtype``, or its older name ``torch_dtype``), else the dtype
        the weights are stored in, so a bf16 checkpoint loads as bf16 and a float32 one as float32; pass
        ``dtype=torch.float32`` for float32 whatever the file holds (``torch_dtype=`` is ``dtype``'s older name).
        Floating-point tensors of any precision are cast to that one dtype. ``device`` may be a name, a
        torch.device or ``"auto"``; each tensor is read straight into that dtype on that device (never a whole
        float32 or CPU model first).

        transformers' loading options, as zoo reads them: ``attn_implementation`` "sdpa" or "eager" (zoo computes
        attention with scaled_dot_product_attention, the same maths; any other kernel is refused); ``device_map``
        "auto", one device or ``{"": device}`` (zoo puts the whole model on one device: a map splitting it is
        refused); ``use_safetensors=True`` loads only safetensors files, ``False`` only pytorch_model.bin (read
        with ``torch.load(weights_only=True)``). ``quantization="int8"`` makes the projections int8 once loaded
        (zoo/quantization.py; None, the default, keeps them float). ``from_tf=True`` reads TensorFlow weights
        instead (tf_model.h5, or a TensorFlow checkpoint with config.json or its release's bert_config.json /
        hparams.json), without TensorFlow (zoo/convert/loader.py).
        """
        from zoo.hub import repo_files
        from zoo.quantization import check_quantization, quantize_loaded

        quantization = check_quantization(kwargs.pop("quantization", None))  # before any file is read
        if kwargs.pop("from_tf", False):  # TensorFlow weights, read without TensorFlow (zoo/convert/loader.py)
            from zoo.convert.loader import load_tf_model

            return quantize_loaded(load_tf_model(
                cls, identifier, config=config, dtype=dtype, device=device, ignore_mismatched_sizes=ignore_mismatched_sizes,
                output_loading_info=output_loading_info, attn_implementation=attn_implementation, device_map=device_map,
                use_safetensors=use_safetensors, **kwargs), quantization)
        if "torch_dtype" in kwargs:  # transformers' older name; a dtype other than the default wins over it
            older = kwargs.pop("torch_dtype")
            dtype = older if dtype is None or (isinstance(dtype, str) and dtype == "auto") else dtype
        target_device = resolve_device(device_from_map(device, device_map))
        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        from zoo.convert.loader import check_not_tf_only

        check_not_tf_only(repo, config_given=config is not None)  # TensorFlow files only: say to pass from_tf=True
        if config is None:
            config = cls.config_class.from_json_file(repo.require(CONFIG_NAME), **kwargs)
        elif kwargs:
            config = config_from_file(type(config), getattr(config, "_source", "the config"), config.to_dict(), kwargs)
        check_attn_implementation(attn_implementation, config)
        # errors about a field name the file it came from, or the keyword argument that set it
        source = getattr(config, "_source", "the config passed to from_pretrained")
        overrides = getattr(config, "_overrides", frozenset()) | frozenset(kwargs)
        target_dtype = _resolve_dtype("auto" if dtype is None else dtype, config)  # a bad name fails before any read
        files = select_weight_files(repo, use_safetensors)
        with contextlib.ExitStack() as stack:
            entries = open_checkpoint(files, stack)
            if target_dtype is None:  # "auto", and config.json records no dtype: the weights' own, from the headers
                target_dtype = weights_dtype(files, entries)
                logger.info("%s: config.json records no dtype; loading in %s, the dtype of its weights",
                            repo.identifier, str(target_dtype).removeprefix("torch."))
            with empty_weights():
                model = cls(config)
            found, unexpected, mismatched = match_checkpoint(
                model, entries, ignore_mismatched_sizes=ignore_mismatched_sizes, source=source, overrides=overrides)
            info = model._load_checkpoint(found, unexpected, mismatched, target_dtype, target_device)
        if callable(getattr(model, "generate", None)):  # generate's defaults: generation_config.json, or the config's
            from zoo.generation import load_generation_config

            model.generation_config = load_generation_config(repo, config)
        model.eval()
        return quantize_loaded((model, info) if output_loading_info else model, quantization)

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

    def _load_checkpoint(self, found: dict[str, TensorEntry], unexpected: list[str], mismatched: list[str],
                         dtype: torch.dtype, device: torch.device) -> dict[str, list[str]]:
        """Put each matched checkpoint tensor in place, give every tensor still on meta real memory, and report.

        A tensor stored in ``dtype`` and loaded onto the CPU is assigned as it is mapped (no copy: its pages are
        read when first used). Any other is read by ``entry.convert`` straight into ``dtype`` on ``device``, a
        slice at a time, so memory holds the model being built and one slice, never a second model (a float32
        copy, a CPU copy of a GPU model). A tied target is not in ``found``: it is its source, read once.
        """
        tied = self._tied_pairs()
        expected = {k: v for k, v in self.state_dict(keep_vars=True).items() if k not in tied}
        modules = dict(self.named_modules(remove_duplicate=False))  # one walk, not a get_submodule per key
        for key, entry in found.items():
            target = expected[key]
            wanted = dtype if entry.dtype.is_floating_point else target.dtype
            if entry.convert is not None and (entry.dtype != wanted or device.type != "cpu"):
                # converted before the layout adapter, as transformers casts before its weight converters
                tensor = self.tensor_from_checkpoint(key, entry.convert(wanted, device))
            else:
                tensor = self.tensor_from_checkpoint(key, entry.read())
            if tensor.shape != target.shape:  # an adapter that needed real data: its shape is known only now
                raise ShapeMismatchError(
                    f"{entry.path.name}: tensor '{entry.key}' has shape {tuple(tensor.shape)} but the model's "
                    f"'{key}' has shape {tuple(target.shape)}; check that config.json matches the weights, "
                    f"or pass ignore_mismatched_sizes=True to re-initialise that layer")
            if tensor.dtype != wanted or tensor.device != device:
                tensor = tensor.to(device=device, dtype=wanted)
            self._assign(key, tensor, modules)
        # everything else still on meta: a new head, a layer re-initialised on request, buffers no file holds
        meta = [name for name, t in chain(self.named_parameters(remove_duplicate=False),
                                          self.named_buffers(remove_duplicate=False))
                if t.is_meta and name not in tied]
        self._initialise_missing(list(dict.fromkeys(meta)), dtype, device, modules)
        self.tie_weights()
        mismatched_keys = {line.split(":")[0] for line in mismatched}
        # a mismatched tensor was in the checkpoint: it gets its own warning, not the missing one
        reported_missing = [k for k in expected if k not in found and k not in mismatched_keys
                            and not any(re.search(p, k) for p in self.ignore_missing)]
        # a tied copy of a new tensor is new too: transformers lists both (a decoder bias tied to a new head's bias)
        reported_missing += [target for target, source in tied.items() if source in reported_missing]
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

    def _initialise_missing(self, missing: list[str], dtype: torch.dtype, device: torch.device,
                            modules: dict[str, nn.Module]) -> None:
        """Give each tensor still on meta real memory and the value ``_init_weights`` gives its module.

        ``_init_weights`` works on a whole module; where part of a module came from the checkpoint (a Linear's
        weight but not its bias, BatchNorm's weights but not its running statistics), the loaded tensors are set
        aside while it runs, on scratch copies, and put back, so only the missing ones take its values. A tensor it
        leaves alone stays zero (never uninitialised memory).
        """
        by_module: dict[str, list[str]] = {}
        for key in missing:
            owner, _, name = key.rpartition(".")
            by_module.setdefault(owner, []).append(name)
        for owner_name, names in by_module.items():
            owner = modules[owner_name]
            for name in names:
                old = owner._parameters[name] if name in owner._parameters else owner._buffers[name]
                assert old is not None, f"{owner_name}.{name} is listed as a tensor but the module has none"
                new = torch.zeros(old.shape, dtype=dtype if old.is_floating_point() else old.dtype, device=device)
                self._assign(f"{owner_name}.{name}" if owner_name else name, new, modules)
            loaded = {n: t for n, t in chain(owner._parameters.items(), owner._buffers.items())
                      if t is not None and n not in names}
            with torch.no_grad():
                for n, t in loaded.items():
                    (owner._parameters if n in owner._parameters else owner._buffers)[n] = torch.empty_like(t)
                try:
                    self._init_weights(owner)
                finally:
                    for n, t in loaded.items():
                        (owner._parameters if n in owner._parameters else owner._buffers)[n] = t

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
        """Write config.json and model.safetensors (sharded with an index above ``max_shard_size``), and
        generation_config.json for a model that can generate.

        Files are written through temporary names and renamed, so a failure leaves the folder as it was; weight
        files of an earlier save in the same folder that the new one does not use are removed.
        """
        from safetensors.torch import save_file

        if self.quantization is not None:
            raise ZooError(f"save_pretrained: this {type(self).__name__} has {self.quantization} projections, and no "
                           f"checkpoint format transformers reads back holds them; save the float model (load it "
                           f"without quantization=) and quantize when loading")
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
        if callable(getattr(self, "generate", None)):  # as transformers does for every model that can generate
            self.generation_config.save_pretrained(folder)
        return folder


# --- transformers' loading options ------------------------------------------------------------------------------------

#: The attention implementations zoo computes: both are scaled dot-product attention, the same maths.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")
#: device_map strategies that spread a model over several GPUs; zoo loads a model onto one device.
_SPLITTING_DEVICE_MAPS = ("balanced", "balanced_low_0", "sequential")


def check_attn_implementation(attn_implementation: Any, config: Config) -> None:
    """Accept transformers' "sdpa" and "eager" (and None); refuse kernels zoo does not have, before any weight is read.

    The choice is kept as ``config._attn_implementation``, where transformers keeps it (never written to config.json).
    """
    if attn_implementation is None:
        return
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(f"attn_implementation={str(attn_implementation)[:60]!r} is not available in zoo: zoo computes "
                          f"attention with torch's scaled_dot_product_attention, which is 'sdpa' (and 'eager', the "
                          f"same maths spelled out, is accepted too); pass one of {', '.join(ATTN_IMPLEMENTATIONS)} "
                          f"or leave attn_implementation out")
    config._attn_implementation = attn_implementation  # type: ignore[attr-defined]


def device_from_map(device: Any, device_map: Any) -> Any:
    """The one device that transformers' ``device_map`` names: "auto", a device, or ``{"": device}``; a map that
    would split the model over several devices is a DeviceError (zoo puts a whole model on one device)."""
    if device_map is None:
        return device
    asked = device_map
    if isinstance(device_map, dict):
        if set(device_map) != {""}:
            shown = ", ".join(f"{k!r}: {v!r}" for k, v in list(device_map.items())[:4])
            raise DeviceError(f"device_map={{{shown}{', ...' if len(device_map) > 4 else ''}}} places parts of the "
                              f"model on different devices, and zoo loads a whole model onto one device; pass "
                              f"device_map='auto', one device (device_map='cuda:0') or device=...")
        device_map = device_map[""]
    if isinstance(device_map, str) and device_map in _SPLITTING_DEVICE_MAPS:
        raise DeviceError(f"device_map={device_map!r} spreads a model over several GPUs, and zoo loads a whole model "
                          f"onto one device; pass device_map='auto' (the best single device) or a device such as 'cuda:0'")
    if device is not None and resolve_device(device) != resolve_device(device_map):
        raise DeviceError(f"device={device!r} and device_map={asked!r} name different devices; pass only one of them")
    return device_map


class _WeightsView:
    """A model's files with some weight-file names hidden, so ``weight_files`` picks among the others."""

    def __init__(self, repo: Any, hidden: frozenset[str]) -> None:
        self.repo, self.hidden, self.identifier = repo, hidden, repo.identifier

    def exists(self, filename: str) -> bool:
        return filename not in self.hidden and self.repo.exists(filename)

    def get(self, filename: str) -> Path | None:
        return None if filename in self.hidden else self.repo.get(filename)

    def require(self, filename: str) -> Path:
        return self.repo.require(filename)


def select_weight_files(repo: Any, use_safetensors: bool | None) -> list[Path]:
    """The weight files to load: zoo's preference (safetensors, then pytorch_model.bin) when ``use_safetensors`` is
    None; only safetensors when True; only pytorch_model.bin (or its sharded index) when False, as transformers."""
    if use_safetensors is None:
        return weight_files(repo)
    if not isinstance(use_safetensors, bool):
        raise ConfigError(f"use_safetensors={use_safetensors!r} is not a bool; pass True (safetensors only), False "
                          f"(pytorch_model.bin only) or leave it out")
    safe = frozenset({SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME})
    pickled = frozenset({PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME})
    wanted, hidden = (safe, pickled) if use_safetensors else (pickled, safe)
    if not any(repo.exists(name) for name in wanted):
        if use_safetensors:
            raise ModelFileNotFoundError(
                f"{repo.identifier} has no {SAFE_WEIGHTS_NAME} (nor {SAFE_WEIGHTS_INDEX_NAME}), and use_safetensors=True "
                f"refuses {PT_WEIGHTS_NAME}; load without use_safetensors=True (the .bin is read with "
                f"weights_only=True) and save_pretrained to write safetensors")
        raise ModelFileNotFoundError(
            f"{repo.identifier} has no {PT_WEIGHTS_NAME} (nor {PT_WEIGHTS_INDEX_NAME}), which use_safetensors=False "
            f"asks for; leave use_safetensors out to load its safetensors weights")
    return weight_files(_WeightsView(repo, hidden))
