"""Pipelines: ``zoo.pipeline(task, model=...)`` assembles preprocessing, the forward pass and postprocessing.

Tasks come from the registry (the ``register_pipelines`` hook), so a plugin can add one; the built-in tasks are
registered by :mod:`zoo.pipelines.builtin` like any plugin's.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from zoo.pipelines.base import Feature, Pipeline, resolve_device

__all__ = ["Feature", "Pipeline", "pipeline", "resolve_device"]

logger = logging.getLogger(__name__)
_announced: set[str] = set()

_HUB_OPTIONS = ("revision", "token", "cache_dir", "local_files_only", "force_download")


def split_pinned(model: str) -> tuple[str, str | None]:
    """``"org/name@sha"`` -> ("org/name", "sha"); a path or plain repo id has no revision."""
    if "@" in model and not os.path.exists(model):
        repo, _, revision = model.rpartition("@")
        return repo, revision or None
    return model, None


def pipeline(task: str, model: Any = None, tokenizer: Any = None, *, device: Any = None, dtype: Any = None,
             batch_size: int | None = None, progress: bool | None = None, **kwargs: Any) -> Pipeline:
    """Build the pipeline of ``task`` ("text-classification", "ner", ... or an alias).

    ``model`` is a folder, a Hub repo id (``"org/name"`` or pinned ``"org/name@sha"``), or a loaded model (then
    pass ``tokenizer`` too). With no model, the task's default Hub model is used and named once in the log.
    Hub options (``revision``, ``token``, ``cache_dir``, ``local_files_only``) go to the hub client; other keyword
    arguments become the task's default call options (``top_k=3``, ``aggregation_strategy="simple"``, ...).
    """
    from zoo.errors import HubUnavailableError, OfflineModeError, PipelineError
    from zoo.registry import get_registry

    spec = get_registry().task(task)
    cls = spec.pipeline_class()
    hub_kwargs = {k: kwargs.pop(k) for k in _HUB_OPTIONS if k in kwargs}
    if model is None:
        if spec.default_model is None:
            raise PipelineError(f"task '{spec.name}' has no default model; pass model= (a folder or Hub repo id)")
        model = spec.default_model
        if spec.name not in _announced:
            logger.warning("No model was given for task '%s'; using its default %s", spec.name, model)
            _announced.add(spec.name)
        repo, revision = split_pinned(model)
        hub_kwargs.setdefault("revision", revision)
        try:
            model, loaded_tokenizer = cls.load_parts(repo, **hub_kwargs)
        except (OfflineModeError, HubUnavailableError) as exc:
            why = "offline mode is on" if isinstance(exc, OfflineModeError) else "the Hub cannot be reached"
            raise type(exc)(f"the default model of task '{spec.name}' is {model}, which is not in the cache and "
                            f"cannot be fetched now ({why}); fetch it with `zoo download {repo} --revision "
                            f"{hub_kwargs['revision']}` on a machine with network, or pass model=") from None
        tokenizer = tokenizer or loaded_tokenizer
    elif isinstance(model, (str, os.PathLike)):
        repo, revision = split_pinned(os.fspath(model))
        if revision:
            hub_kwargs.setdefault("revision", revision)
        model, loaded_tokenizer = cls.load_parts(repo, **hub_kwargs)
        tokenizer = tokenizer or loaded_tokenizer
    elif tokenizer is None and cls.needs_tokenizer:
        raise PipelineError(f"a loaded model was passed to pipeline('{spec.name}'); pass its tokenizer= too")
    if isinstance(tokenizer, (str, os.PathLike)):
        from zoo.auto import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer, **hub_kwargs)
    return cls(model, tokenizer, device=device, dtype=dtype, batch_size=batch_size, progress=progress, **kwargs)
