"""What an export starts from: the model, its task, and the files a device app needs beside it.

``to_onnx`` / ``to_executorch`` take either a loaded zoo model or an identifier (a folder or a Hub repo id). An
identifier is loaded with the model class of the task, which defaults, as optimum's exporters choose it, to the
checkpoint's own head: the class named by config.json's ``architectures`` (``BertForSequenceClassification`` ->
``sequence-classification``), else the bare model. The tokenizer or image processor and, for sentence embeddings,
sentence-transformers' pooling files come from the same repo.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from typing import Any

from zoo.errors import ExportError, ZooError

logger = logging.getLogger(__name__)

#: Task names the exporters accept besides zoo's own model tasks (zoo.registry.MODEL_TASKS): pipeline names and
#: optimum's, each meaning the model head that serves it.
TASK_ALIASES = {
    "feature-extraction": "base",
    "sentence-similarity": "base",
    "text-classification": "sequence-classification",
    "sentiment-analysis": "sequence-classification",
    "ner": "token-classification",
    "fill-mask": "masked-lm",
    "text-generation": "causal-lm",
    "text-generation-with-past": "causal-lm",
}

DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class ExportSource:
    """A model in eval mode and what goes beside its exported program."""

    model: Any
    task: str
    tokenizer: Any | None = None
    image_processor: Any | None = None
    #: The files the model came from (RepoFiles), when it was loaded from an identifier: pooling files are read there.
    repo: Any | None = None

    @property
    def model_type(self) -> str:
        return str(self.model.config.model_type)

    @property
    def is_image_model(self) -> bool:
        return getattr(self.model, "main_input_name", "input_ids") == "pixel_values"

    def describe(self) -> str:
        """``BertForSequenceClassification (model_type 'bert', task 'sequence-classification')``, for messages."""
        return f"{type(self.model).__name__} (model_type '{self.model_type}', task '{self.task}')"


def resolve_task(task: str | None) -> str | None:
    """A task name or alias -> zoo's model task (None stays None: the checkpoint's own head is used)."""
    if task is None:
        return None
    from zoo.registry import MODEL_TASKS

    name = str(task).strip().lower().replace("_", "-")
    name = TASK_ALIASES.get(name, name)
    if name not in MODEL_TASKS:
        known = ", ".join(sorted({*MODEL_TASKS, *TASK_ALIASES}))
        raise ExportError(f"task {task!r} is not a task zoo exports; use one of: {known}")
    return name


def resolve_dtype(dtype: Any) -> Any:
    """``"float16"`` / ``torch.float16`` / None -> a torch dtype or None."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and str(dtype).removeprefix("torch.") not in DTYPES:
            raise ExportError(f"dtype {dtype} cannot be exported; use one of {', '.join(DTYPES)}")
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ExportError(f"dtype {dtype!r} cannot be exported; use one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def _class_name(spec: Any) -> tuple[str, str]:
    """(module, class name) of a registered model class, without importing a plugin's module for a string spec."""
    if isinstance(spec, str):
        module, _, attr = spec.partition(":")
        return module, attr.rsplit(".", 1)[-1]
    return spec.__module__, spec.__name__


def task_of_architectures(arch: Any, architectures: Any) -> str:
    """The task whose registered class config.json's ``architectures`` names, else "base"."""
    names = architectures if isinstance(architectures, list) else []
    for task, spec in arch.models.items():
        if _class_name(spec)[1] in names:
            return task
    return "base"


def task_of_model(model: Any) -> str:
    """The task a loaded model's class is registered for (the registry of its model_type)."""
    from zoo.registry import get_registry

    arch = get_registry().architecture(model.config.model_type)
    wanted = (type(model).__module__, type(model).__name__)
    for task, spec in arch.models.items():
        if _class_name(spec) == wanted:
            return task
    for task, spec in arch.models.items():  # a subclass of a registered class serves that class's task
        cls = arch.model_class(task)
        if isinstance(model, cls):
            return task
    raise ExportError(f"{type(model).__name__} is not a model class model_type '{arch.model_type}' registers "
                      f"(its tasks: {', '.join(arch.tasks)}); pass task=... naming the head it implements")


def load_source(model: Any, *, task: str | None = None, dtype: Any = None, tokenizer: Any = None,
                image_processor: Any = None) -> ExportSource:
    """The model to export (loaded when ``model`` is an identifier), its task, and its preprocessing objects."""
    import torch

    task = resolve_task(task)
    torch_dtype = resolve_dtype(dtype)
    if isinstance(model, (str, os.PathLike)) or (hasattr(model, "require") and hasattr(model, "exists")):
        return _load_identifier(model, task, torch_dtype, tokenizer, image_processor)
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise ExportError(f"cannot export a {type(model).__name__}; pass a zoo model (e.g. from "
                          f"zoo.AutoModel.from_pretrained), a model folder or a Hub repo id")
    own = task_of_model(model)
    if task is not None and task != own:
        raise ExportError(f"the model given is a {type(model).__name__}, the '{own}' head, but task '{task}' was "
                          f"asked for; load the checkpoint for that task (zoo.export.to_onnx(folder, task='{task}')) "
                          f"or leave task unset")
    if torch_dtype is not None and next(model.parameters(), torch.empty(0)).dtype != torch_dtype:
        model = copy.deepcopy(model).to(torch_dtype)  # the caller's model keeps its dtype
    return ExportSource(model, own, tokenizer, image_processor)


def _load_identifier(identifier: Any, task: str | None, dtype: Any, tokenizer: Any,
                     image_processor: Any) -> ExportSource:
    from zoo.auto import AutoImageProcessor, AutoTokenizer, architecture_of
    from zoo.hub import repo_files

    repo = repo_files(identifier)
    arch, data = architecture_of(repo)
    if task is None:
        task = task_of_architectures(arch, data.get("architectures"))
    model = arch.model_class(task).from_pretrained(repo, dtype=dtype)
    try:
        if model.main_input_name == "pixel_values":
            if image_processor is None and (arch.image_processor is not None or repo.exists("preprocessor_config.json")):
                image_processor = AutoImageProcessor.from_pretrained(repo)
        elif tokenizer is None and arch.tokenizer is not None:
            tokenizer = AutoTokenizer.from_pretrained(repo)
    except ZooError as exc:  # the program is still worth writing; the app then brings its own preprocessing
        logger.warning("exporting %s without preprocessing files: %s", repo.identifier, exc)
    return ExportSource(model, task, tokenizer, image_processor, repo)
