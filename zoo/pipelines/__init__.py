"""Pipelines: ``zoo.pipeline(task, model=...)`` assembles preprocessing, the forward pass and postprocessing.

Tasks come from the registry (the ``register_pipelines`` hook), so a plugin can add one; the built-in tasks are
registered by :mod:`zoo.pipelines.builtin` like any plugin's.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from zoo.pipelines.base import Feature, Pipeline, resolve_device

__all__ = ["Feature", "Pipeline", "pipeline", "resolve_device"]

logger = logging.getLogger(__name__)
_announced: set[str] = set()

def split_pinned(model: str) -> tuple[str, str | None]:
    """``"org/name@sha"`` -> ("org/name", "sha"); a path or plain repo id has no revision."""
    if "@" in model and not os.path.exists(model):
        repo, _, revision = model.rpartition("@")
        return repo, revision or None
    return model, None


def _announce(spec: Any, where: str) -> None:
    if spec.name not in _announced:
        logger.warning("No model was given for task '%s'; using its default %s%s", spec.name, spec.default_model, where)
        _announced.add(spec.name)


def _load_default(spec: Any, cls: Any, hub_kwargs: dict[str, Any], load: dict[str, Any]) -> tuple[Any, Any]:
    """Model and tokenizer of a task's default, from wherever it already is: the cache at its pinned commit, then
    the task's embedded copy (``PipelineTask.local_model``), then the Hub. Only the last sends requests, so a
    machine that has the default runs offline, and does not wait on an unreachable Hub first."""
    from zoo.errors import HubUnavailableError, OfflineModeError
    from zoo.hub.cache import COMMIT_RE

    repo, revision = split_pinned(spec.default_model)
    # A caller's own revision or force_download asks for the Hub's answer, not for whatever is local.
    local_ok = "revision" not in hub_kwargs and not hub_kwargs.get("force_download")
    hub_kwargs.setdefault("revision", revision)
    if local_ok and revision is not None and COMMIT_RE.match(revision):
        try:
            parts = cls.load_parts(repo, **load, **{**hub_kwargs, "local_files_only": True})
        except OfflineModeError:  # not (wholly) in the cache: try the next place
            logger.debug("default %s of task '%s' is not in the cache", spec.default_model, spec.name)
        else:
            _announce(spec, " (from the cache)")
            return parts
    folder = spec.local_default() if local_ok else None
    if folder is not None:
        _announce(spec, f" (the embedded copy in {folder})")
        return cls.load_parts(folder, **load)
    _announce(spec, "")
    try:
        return cls.load_parts(repo, **load, **hub_kwargs)
    except (OfflineModeError, HubUnavailableError) as exc:
        why = "offline mode is on" if isinstance(exc, OfflineModeError) else "the Hub cannot be reached"
        raise type(exc)(f"the default model of task '{spec.name}' is {spec.default_model}, which is not in the cache "
                        f"and cannot be fetched now ({why}); fetch it with `zoo download {repo} --revision "
                        f"{hub_kwargs['revision']}` on a machine with network, or pass model=") from None


def pipeline(task: str, model: Any = None, tokenizer: Any = None, *, device: Any = None, dtype: Any = None,
             quantization: str | None = None, model_kwargs: dict[str, Any] | None = None,
             batch_size: int | None = None, progress: bool | None = None, **kwargs: Any) -> Pipeline:
    """Build the pipeline of ``task`` ("text-classification", "ner", ... or an alias; ``translation_xx_to_yy``
    is the translation task with ``src_lang="xx"``, ``tgt_lang="yy"``).

    ``model`` is a folder, a Hub repo id (``"org/name"`` or pinned ``"org/name@sha"``), or a loaded model (then
    pass ``tokenizer`` too). With no model, the task's default model is used and named once in the log: from the
    cache when it holds the pinned commit, else from the task's embedded copy when installed (no request either
    way), else from the Hub.
    Hub options (``revision``, ``token``, ``cache_dir``, ``local_files_only``) go to the hub client; other keyword
    arguments become the task's default call options (``top_k=3``, ``aggregation_strategy="simple"``, ...).
    A model loaded here is read straight into ``dtype`` (no float32 copy first) and, with ``quantization="int8"``,
    gets int8 projections (zoo/quantization.py); ``model_kwargs`` go to its from_pretrained as they are.
    """
    from zoo.configuration import split_hub_kwargs
    from zoo.errors import PipelineError
    from zoo.registry import get_registry

    pair = re.match(r"^translation_([A-Za-z0-9-]+)_to_([A-Za-z0-9-]+)$", task) if isinstance(task, str) else None
    if pair:  # transformers 4's translation_xx_to_yy names: the translation task between those languages
        task = "translation"
        kwargs.setdefault("src_lang", pair.group(1))
        kwargs.setdefault("tgt_lang", pair.group(2))
    spec = get_registry().task(task)
    cls = spec.pipeline_class()
    hub_kwargs = split_hub_kwargs(kwargs)
    options = dict(model_kwargs or {})
    if dtype is not None:
        from zoo.loading import resolve_dtype

        try:  # a bad name is the pipeline's error, said before anything loads
            resolve_dtype(dtype, config=None)
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        options.setdefault("dtype", dtype)
    if quantization is not None:
        options["quantization"] = quantization
    load: dict[str, Any] = {}
    if model is None or isinstance(model, (str, os.PathLike)):
        if options:  # only when asked, so a third-party pipeline's load_parts(model, **hub_kwargs) keeps working
            load["model_kwargs"] = options
    elif set(options) - {"dtype"}:  # a loaded model is cast to dtype below; nothing else applies to it
        raise PipelineError(f"pipeline('{spec.name}') got a loaded model and {', '.join(sorted(set(options) - {'dtype'}))}"
                            f"; these apply when loading: pass the folder or repo id instead, or give them to the "
                            f"model's from_pretrained")
    if model is None:
        if spec.default_model is None:
            raise PipelineError(f"task '{spec.name}' has no default model; pass model= (a folder or Hub repo id)")
        model, loaded_tokenizer = _load_default(spec, cls, hub_kwargs, load)
        tokenizer = tokenizer or loaded_tokenizer
    elif isinstance(model, (str, os.PathLike)):
        repo, revision = split_pinned(os.fspath(model))
        if revision:
            hub_kwargs.setdefault("revision", revision)
        model, loaded_tokenizer = cls.load_parts(repo, **load, **hub_kwargs)
        tokenizer = tokenizer or loaded_tokenizer
    elif tokenizer is None and cls.needs_tokenizer:
        raise PipelineError(f"a loaded model was passed to pipeline('{spec.name}'); pass its tokenizer= too")
    if isinstance(tokenizer, (str, os.PathLike)):
        from zoo.auto import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer, **hub_kwargs)
    return cls(model, tokenizer, device=device, dtype=dtype, batch_size=batch_size, progress=progress, **kwargs)
