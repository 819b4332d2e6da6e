"""``from_pretrained(folder, from_tf=True)``: a model from TensorFlow weights, with no TensorFlow installed.

The steps, in order: find the weights (``tf_model.h5``, else a TF1/TF2 checkpoint: ``*.index`` + ``*.data-*``)
and open them with zoo's own readers (zoo/convert/h5.py, zoo/convert/tensorbundle.py); read the config
(config.json, else the release's own file: ``bert_config.json``, ``hparams.json``; zoo/convert/release.py); find
the architecture's :class:`~zoo.convert.mapping.TFMapping` in the registry and the layout its variables are in;
plan every variable (loaded as which PyTorch key, transposed or not, skipped as optimizer state, or matching no
name); then load exactly as a safetensors file loads (zoo/modeling.py): the model is built on the meta device, the
planned tensors are checked against it (shapes, dtypes, block counts: zoo/loading.py) and put in place one by one,
each read, checked (CRC-32C) and transposed only when its turn comes, so the whole checkpoint is never in memory
beside the model.

What transformers 4 did with ``from_tf=True`` (``load_tf_weights_in_bert`` for TF1 checkpoints, and
``load_tf2_checkpoint_in_pytorch_model`` for tf_model.h5, which needed TensorFlow itself), and its loading report:
weights the model has and the checkpoint lacks, and variables nothing used, are listed in one warning each.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.checkpoint import WEIGHTS_NAMES, TensorEntry
from zoo.configuration import CONFIG_NAME, Config, config_from_file, read_json, split_hub_kwargs
from zoo.convert.mapping import MappingPlan, TFMapping, apply_transform, plan, resolve_mapping
from zoo.errors import ConfigError, ModelFileNotFoundError, ShapeMismatchError, UnknownModelTypeError, ZooError

logger = logging.getLogger(__name__)

TF_WEIGHTS_NAME = "tf_model.h5"
#: Below this many bytes of weights, from_pretrained shows no progress bar unless asked (``progress=True``).
PROGRESS_MIN_BYTES = 200 * 2**20
_SHARD_RE = re.compile(r"\.data-\d{5}-of-\d{5}$")


# --- where the weights are ---------------------------------------------------------------------------------------------


@dataclass
class TFWeights:
    """Opened TensorFlow weights: the reader (TFCheckpoint or H5Weights), the file named in messages, its kind."""

    reader: Any
    path: Path
    kind: str  # "h5" or "checkpoint"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(self.reader.shape(name)) for name in self.reader.names()}

    def nbytes(self, name: str) -> int:
        if hasattr(self.reader, "nbytes"):
            return int(self.reader.nbytes(name))
        return math.prod(self.reader.shape(name)) * _itemsize(self.reader.dtype(name))


def _files(repo: Any) -> list[str]:
    """The file names of a local folder or Hub repo (top level and below)."""
    folder = getattr(repo, "folder", None)
    if folder is not None:
        root = Path(folder)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    files = getattr(repo, "files", None)
    return sorted(files()) if callable(files) else []


def checkpoint_index(repo: Any) -> str | None:
    """The ``.index`` file of the one TF checkpoint a repo holds at its top level (None when it holds none)."""
    indexes = [name for name in _files(repo) if name.endswith(".index") and "/" not in name]
    if len(indexes) > 1 and repo.exists("checkpoint"):
        return None  # the reader picks the one the 'checkpoint' file names
    if len(indexes) > 1:
        raise ModelFileNotFoundError(f"{repo.identifier} holds {len(indexes)} TensorFlow checkpoints "
                                     f"({', '.join(indexes)}) and no 'checkpoint' file says which is current; keep one, "
                                     f"or pass the folder of one")
    return indexes[0] if indexes else None


def has_tf_weights(repo: Any) -> bool:
    return repo.exists(TF_WEIGHTS_NAME) or bool([n for n in _files(repo) if n.endswith(".index") and "/" not in n])


def open_tf_weights(repo: Any) -> TFWeights:
    """tf_model.h5 when the folder has one, else its TensorFlow checkpoint (downloading its shards from the Hub)."""
    if repo.exists(TF_WEIGHTS_NAME):
        from zoo.convert.h5 import H5Weights

        path = repo.require(TF_WEIGHTS_NAME)
        return TFWeights(H5Weights(path), path, "h5")
    from zoo.convert.tensorbundle import TFCheckpoint

    folder = getattr(repo, "folder", None)
    index = checkpoint_index(repo)
    if folder is not None and (index is not None or repo.exists("checkpoint")):
        reader = TFCheckpoint(folder)
        return TFWeights(reader, Path(reader.index_path), "checkpoint")
    if index is not None:  # a Hub repo: fetch the index and its shards into the cache, then read them there
        prefix = index[: -len(".index")]
        for name in _files(repo):
            if name.startswith(prefix + ".data-") and _SHARD_RE.search(name):
                repo.require(name)
        path = repo.require(index)
        reader = TFCheckpoint(str(path)[: -len(".index")])
        return TFWeights(reader, path, "checkpoint")
    raise ModelFileNotFoundError(
        f"{repo.identifier} has no TensorFlow weights: neither {TF_WEIGHTS_NAME} nor a checkpoint (a *.index file "
        f"with its *.data-* shards); point at the folder that holds them, or load without from_tf=True")


def check_not_tf_only(repo: Any, config_given: bool) -> None:
    """Refuse, with the fix, a folder that zoo could read only with ``from_tf=True`` (as transformers 4 did):
    TensorFlow weights and no PyTorch ones, or a release folder without config.json."""
    lacks_config = not config_given and not repo.exists(CONFIG_NAME)
    if not lacks_config and any(repo.exists(name) for name in WEIGHTS_NAMES):
        return
    try:
        if not has_tf_weights(repo):
            return
    except ZooError:  # the listing failed (offline, say): the error about the missing file is the one to show
        return
    what = TF_WEIGHTS_NAME if repo.exists(TF_WEIGHTS_NAME) else "a TensorFlow checkpoint"
    raise ModelFileNotFoundError(
        f"{repo.identifier} holds {what} and no PyTorch weights ({WEIGHTS_NAMES[0]} or {WEIGHTS_NAMES[2]}); load it "
        f"with from_pretrained(..., from_tf=True) (zoo reads TensorFlow files without TensorFlow), or convert it "
        f"once: zoo convert tf {repo.identifier} OUT")


# --- the config ------------------------------------------------------------------------------------------------------------


def read_config(repo: Any, overrides: dict[str, Any], model_type: str | None = None,
                config_class: type[Config] | None = None) -> Config:
    """The config of a TF folder: config.json (``model_type`` fills in one it lacks, as older files do), else the
    release's own file (bert_config.json, hparams.json)."""
    from zoo.convert.release import release_config, release_config_file
    from zoo.registry import get_registry

    if repo.exists(CONFIG_NAME):
        path = repo.require(CONFIG_NAME)
        data = read_json(path)
        found = data.get("model_type") or model_type or (config_class.model_type if config_class else None)
        if model_type is not None and found != model_type:
            raise ConfigError(f"{path} has model_type '{found}', but model_type '{model_type}' was asked for; drop "
                              f"the model_type option, or fix config.json")
        if not found:
            raise ConfigError(f"{path} has no model_type; add one (\"model_type\": \"bert\") or pass model_type= "
                              f"(--model-type) for the architecture of these weights")
        if config_class is not None and found != config_class.model_type:
            raise ConfigError(f"{path} is a config of model_type '{found}', not of '{config_class.model_type}' "
                              f"({config_class.__name__}); load it with an Auto class or that architecture's class")
        cls = config_class or get_registry().architecture(found).config_class()
        return config_from_file(cls, path, {**data, "model_type": found}, overrides)
    wanted = model_type or (config_class.model_type if config_class else None)
    found_file = release_config_file(repo)
    if found_file is not None and wanted is not None and found_file[0].model_type != wanted:
        raise ConfigError(f"{repo.identifier}/{found_file[2]} is the config of a '{found_file[0].model_type}' release, "
                          f"but model_type '{wanted}' was asked for; load it with an Auto class or that "
                          f"architecture's class")
    config = release_config(repo, overrides, model_type=wanted)
    if config is not None:
        return config
    release_files = sorted({name for _, mapping in _mappings() for name in mapping.release_configs})
    raise ModelFileNotFoundError(
        f"{repo.identifier} has TensorFlow weights but no config: neither {CONFIG_NAME} nor a release config "
        f"({', '.join(release_files) or 'none registered'}"
        f"{' of model_type ' + repr(wanted) if wanted else ''}); add the config file the model was released with")


def _mappings() -> list[tuple[Any, TFMapping]]:
    from zoo.convert.release import release_mappings

    return release_mappings()


def tf_mapping_of(model_type: str) -> tuple[Any, TFMapping]:
    """The registered architecture of ``model_type`` and the TensorFlow mapping its plugin declares."""
    from zoo.registry import get_registry

    arch = get_registry().architecture(model_type)
    if arch.tf_mapping is None:
        readable = sorted(a.model_type for a, _ in _mappings())
        raise UnknownModelTypeError(
            f"model_type '{model_type}' (plugin '{arch.plugin}') declares no TensorFlow name mapping, so its "
            f"TensorFlow checkpoints cannot be read (model_types that can: {', '.join(readable) or 'none'}); the "
            f"plugin can add one: Architecture(tf_mapping=...), see docs/convert.md")
    return arch, resolve_mapping(arch.tf_mapping, model_type)


# --- loading ---------------------------------------------------------------------------------------------------------------


def task_of(arch: Any, config: Config, checkpoint: MappingPlan) -> str:
    """The head to build when none was asked for: the one config.json's ``architectures`` names, else the one the
    checkpoint's variables hold."""
    names = {str(spec).rpartition(":")[2] if isinstance(spec, str) else getattr(spec, "__name__", ""): task
             for task, spec in arch.models.items()}
    for name in config.architectures or ():
        name = str(name).removeprefix("TF")
        if name in names:
            return names[name]
    task = checkpoint.task()
    return task if task in arch.models else "base"


def load_tf_model(cls: type | None, identifier: Any, *, task: str | None = None, config: Config | None = None,
                  model_type: str | None = None, dtype: Any = "auto", device: Any = None,
                  ignore_mismatched_sizes: bool = False, output_loading_info: bool = False,
                  attn_implementation: str | None = None, device_map: Any = None, use_safetensors: bool | None = None,
                  progress: bool | None = None, **kwargs: Any) -> Any:
    """Load ``cls`` (a concrete model class), or the ``task`` head (an Auto class's; None: the checkpoint's own),
    from the TensorFlow weights of ``identifier``. Keyword arguments are from_pretrained's (``dtype="auto"``, the
    default, is the config's dtype, else the variables' own: float32 for the checkpoints TensorFlow writes);
    ``progress``: a tqdm bar while tensors are read (None: for checkpoints over 200 MB)."""
    from zoo.devices import resolve_device
    from zoo.hub import repo_files
    from zoo.modeling import device_from_map

    if use_safetensors:
        raise ConfigError("from_tf=True reads TensorFlow weights, and use_safetensors=True asks for safetensors only; "
                          "pass one of them")
    if "torch_dtype" in kwargs:
        older = kwargs.pop("torch_dtype")
        dtype = older if dtype is None or (isinstance(dtype, str) and dtype == "auto") else dtype
    target_device = resolve_device(device_from_map(device, device_map))
    repo = repo_files(identifier, **split_hub_kwargs(kwargs))
    weights = open_tf_weights(repo)
    try:
        model, info = _load(cls, repo, weights, task, config, model_type, dtype, target_device,
                            ignore_mismatched_sizes, attn_implementation, progress, kwargs)
    finally:
        close = getattr(weights.reader, "close", None)
        if callable(close):
            close()
    return (model, info) if output_loading_info else model


def _load(cls: type | None, repo: Any, weights: TFWeights, task: str | None, config: Config | None,
          model_type: str | None, dtype: Any, target_device: torch.device, ignore_mismatched_sizes: bool,
          attn_implementation: str | None, progress: bool | None, kwargs: dict[str, Any]) -> tuple[Any, dict]:
    from zoo.checkpoint import weights_dtype
    from zoo.loading import match_checkpoint
    from zoo.modeling import _resolve_dtype, check_attn_implementation, empty_weights

    config_class = getattr(cls, "config_class", None) if cls is not None else None
    if config is None:
        config = read_config(repo, kwargs, model_type=model_type, config_class=config_class)
    elif kwargs:
        config = config_from_file(type(config), getattr(config, "_source", "the config"), config.to_dict(), kwargs)
    if config_class is not None and not isinstance(config, config_class):
        raise ConfigError(f"{cls.__name__} is a model of model_type '{config_class.model_type}', but the config of "
                          f"{repo.identifier} is model_type '{config.model_type}'; load it with that architecture's "
                          f"class, or with an Auto class")
    check_attn_implementation(attn_implementation, config)
    arch, mapping = tf_mapping_of(config.model_type)
    where = weights.path.name
    shapes = weights.shapes()
    layout = mapping.layout_for(shapes, where)
    checkpoint = plan(shapes, layout, where)
    skipped = getattr(weights.reader, "skipped", None)
    if skipped:
        logger.debug("%s: not read (no weights): %s", where, ", ".join(sorted(skipped)))
    labels = checkpoint.num_labels()
    if labels is not None and config.id2label is None and "num_labels" not in kwargs:
        config.num_labels = labels  # Google's classifier heads: the label count is in the weights only
    if cls is None:
        cls = arch.model_class(task or task_of(arch, config, checkpoint))
    logger.info("%s: %s layout (%s), %d tensors for %s, %d skipped", where, layout.name, weights.kind,
                len(checkpoint.tensors), cls.__name__, len(checkpoint.skipped))
    target_dtype = _resolve_dtype("auto" if dtype is None else dtype, config)
    source = getattr(config, "_source", "the config passed to from_pretrained")
    overrides = getattr(config, "_overrides", frozenset()) | frozenset(kwargs)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(_progress(weights, checkpoint, progress))
        entries = {key: _entry(weights, planned, bar) for key, planned in checkpoint.tensors.items()}
        if target_dtype is None:  # "auto" and no dtype in the config: the variables' own, none read yet
            target_dtype = weights_dtype([], entries)  # (no safetensors index whose metadata could record one)
        with empty_weights():
            model = cls(config)
        try:
            found, unexpected, mismatched = match_checkpoint(
                model, entries, ignore_mismatched_sizes=ignore_mismatched_sizes, source=source, overrides=overrides)
        except ShapeMismatchError as exc:
            raise ShapeMismatchError(f"{exc}{_transposed_note(str(exc), checkpoint)}") from None
        # the report names TensorFlow variables: the ones a key of this model does not take, and those no rule names
        unused = [entries[key].key for key in unexpected] + checkpoint.unmatched
        info = model._load_checkpoint(found, unused, mismatched, target_dtype, target_device)
    if callable(getattr(model, "generate", None)):
        from zoo.generation import load_generation_config

        model.generation_config = load_generation_config(repo, config)
    model.eval()
    info["skipped"] = list(checkpoint.skipped)
    return model, info


def _transposed_note(message: str, checkpoint: MappingPlan) -> str:
    for planned in checkpoint.tensors.values():
        if f"'{planned.tf_name}'" in message and planned.transform != "none":
            done = "transposed" if planned.transform == "transpose" else "with its leading axes of size 1 dropped"
            return (f" (TensorFlow stores '{planned.tf_name}' as {list(planned.tf_shape)}; zoo reads it {done}, "
                    f"as {list(planned.shape)})")
    return ""


def _entry(weights: TFWeights, planned: Any, bar: Any) -> TensorEntry:
    """A checkpoint entry under the PyTorch key, named by its TF variable, read (and transformed) when loaded."""
    dtype = _torch_dtype(weights.reader.dtype(planned.tf_name))

    def read() -> torch.Tensor:
        tensor = apply_transform(weights.reader.get_torch(planned.tf_name), planned.transform)
        if bar is not None:
            bar.update(weights.nbytes(planned.tf_name))
        return tensor

    return TensorEntry(planned.tf_name, planned.shape, dtype, weights.path, read)


def _torch_dtype(name: Any) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    resolved = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype):
        raise ConfigError(f"TensorFlow dtype {name!r} has no torch equivalent; the variable cannot be loaded")
    return resolved


def _itemsize(name: Any) -> int:
    return _torch_dtype(name).itemsize


@contextlib.contextmanager
def _progress(weights: TFWeights, checkpoint: MappingPlan, progress: bool | None) -> Any:
    """A tqdm bar over the bytes of the planned tensors (None when not shown)."""
    total = sum(weights.nbytes(p.tf_name) for p in checkpoint.tensors.values())
    show = progress if progress is not None else total >= PROGRESS_MIN_BYTES
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"reading {weights.path.name}",
              leave=False, disable=None if progress is None else False) as bar:
        yield bar

