"""The pipeline base: preprocessing, batched forward on a device, postprocessing, results in input order.

A task subclass says how one input becomes model features (``preprocess``, or ``preprocess_batch`` to tokenise a
chunk of inputs in one call of the Rust tokenizer), which model outputs it needs (``forward``), and how a feature's
outputs become a plain result (``postprocess``). The base does the rest the same way for every task: features are
sorted by length and cut into batches so each batch carries little padding (on the CPU the cut points minimise
padded tokens, see :meth:`Pipeline.plan_batches`), padded, run under ``torch.inference_mode`` on the chosen device,
and the results put back in input order. Lists give lists; generators and other iterables give a lazy iterator; a
single input gives a single result. Output shapes follow transformers' pipelines (pipelines/base.py) so users can
switch.
"""

from __future__ import annotations

import itertools
import logging
import numbers
import operator
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zoo.errors import PipelineError, PluginError

logger = logging.getLogger(__name__)

#: How many inputs are read ahead from a generator and sorted by length together.
SORT_WINDOW_BATCHES = 16
#: What one more forward pass costs on the CPU, in padded tokens (Python and dispatch overhead), when batches are
#: planned; small, so batches are cut wherever a length drop would otherwise mean much padding.
CPU_BATCH_OVERHEAD_TOKENS = 64
#: A stream (a generator, ``zoo run`` over a file or stdin) shows its bar only once it has run this long, so short
#: runs stay silent and long ones do not look hung.
STREAM_PROGRESS_DELAY_S = 3.0


@dataclass
class Feature:
    """One row of model input made from one pipeline input (long inputs can make several)."""

    inputs: dict[str, list[int]]
    meta: dict[str, Any] = field(default_factory=dict)
    index: int = 0

    @property
    def length(self) -> int:
        return len(next(iter(self.inputs.values())))


def resolve_device(device: Any = None) -> Any:
    """``zoo.devices.resolve_device`` with transformers' pipeline convention on top: ``-1`` is the CPU and any other
    int a CUDA index. A device this machine lacks is a DeviceError naming the devices it has."""
    from zoo.devices import resolve_device as resolve

    if isinstance(device, int) and not isinstance(device, bool) and device == -1:
        device = "cpu"
    return resolve(device)


def _check_batch_size(batch_size: Any, default: int) -> int:
    """``batch_size`` as a positive int (None: ``default``); 0 or a negative is an error, not the default."""
    if batch_size is None:
        return int(default)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise PipelineError(f"batch_size must be at least 1 (an int), got {batch_size!r}")
    return int(batch_size)


def stream_progress(progress: bool | None, stream: Any = None) -> tuple[bool, float]:
    """Whether a stream of inputs shows a progress bar, and after how many seconds: (show, delay).

    ``False`` never, ``True`` at once; ``None`` (the default) when ``stream`` (stderr) is a terminal, once the run
    has taken :data:`STREAM_PROGRESS_DELAY_S`, so piped or logged stderr never gets bar noise.
    """
    if progress is not None:
        return bool(progress), 0.0
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        tty = False
    return tty, STREAM_PROGRESS_DELAY_S


class Pipeline(ABC):
    """Base of every task. Subclasses set ``task``/``model_task`` and implement preprocess/forward/postprocess."""

    #: The pipeline task name ("text-classification").
    task: ClassVar[str] = ""
    #: The model head to load for it (a registry task: "sequence-classification", ...).
    model_task: ClassVar[str] = "base"
    default_batch_size: ClassVar[int] = 8
    #: Whether the task reads text (False for image tasks, which use an image processor instead).
    needs_tokenizer: ClassVar[bool] = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Pipeline:
        # Neither preprocess hook is abstract (a task implements one or the other), so ABC cannot catch a class that
        # has neither; without this check it would recurse between the two defaults on its first input.
        if cls.preprocess is Pipeline.preprocess and cls.preprocess_batch is Pipeline.preprocess_batch:
            raise PluginError(f"pipeline class {cls.__module__}.{cls.__qualname__} (task {cls.task!r}) implements "
                              f"neither preprocess(item, options) nor preprocess_batch(items, options); define one "
                              f"of them (see docs/pipelines.md, 'Adding a task')")
        return super().__new__(cls)

    def __init__(self, model: Any, tokenizer: Any = None, *, device: Any = None, dtype: Any = None,
                 batch_size: int | None = None, progress: bool | None = None, **defaults: Any) -> None:
        import torch

        self.device = resolve_device(device)
        if dtype is not None:  # "bf16", torch.bfloat16, ... (zoo.loading.DTYPE_NAMES); "auto" keeps the loaded dtype
            from zoo.modeling import _resolve_dtype

            try:
                resolved = _resolve_dtype(dtype, model.config)
            except ValueError as exc:
                raise PipelineError(str(exc)) from None
            if resolved is not None:
                model = model.to(dtype=resolved)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size, self.default_batch_size)
        self.progress = progress
        self.defaults = self.check_options(defaults)
        self._torch = torch

    # --- construction ------------------------------------------------------------------------------------------------

    @classmethod
    def load_parts(cls, model: str, *, model_kwargs: dict[str, Any] | None = None,
                   **hub_kwargs: Any) -> tuple[Any, Any]:
        """Model and tokenizer of a folder or Hub repo for this task (one revision lookup for both);
        ``model_kwargs`` go to the model's from_pretrained (``dtype``, ``quantization``, ...)."""
        from zoo.auto import AutoTokenizer, architecture_of
        from zoo.hub import repo_files

        repo = repo_files(model, **hub_kwargs)
        arch, _ = architecture_of(repo)
        model_obj = arch.model_class(cls.model_task).from_pretrained(repo, **(model_kwargs or {}))
        return model_obj, AutoTokenizer.from_pretrained(repo)

    # --- task hooks ----------------------------------------------------------------------------------------------------

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate per-call (or constructor default) options; unknown names are an error."""
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)}")
        return {}

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        """The model features of one input (several for inputs split into windows).

        A task implements this or :meth:`preprocess_batch` (or both); each default calls the other.
        """
        return self.preprocess_batch([item], options)[0]

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        """The features of many inputs at once; tasks override it to tokenise a whole chunk in one Rust call."""
        return [self.preprocess(item, options) for item in items]

    def forward(self, batch: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """Model outputs for a padded batch, as tensors with the batch first (default: the logits)."""
        return {"logits": self.model(**batch, return_dict=True).logits}

    @abstractmethod
    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        """The plain result for one input from its features' outputs (one dict of CPU tensors per feature)."""

    def is_single(self, inputs: Any) -> bool:
        """Whether ``inputs`` is one input (as opposed to a list or stream of them)."""
        return isinstance(inputs, (str, dict))

    # --- text helpers --------------------------------------------------------------------------------------------------

    @property
    def max_input_length(self) -> int:
        """Longest token sequence the model takes (the tokenizer's model_max_length, capped by the positions)."""
        from zoo.tokenization import VERY_LARGE_INTEGER

        config = self.model.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        limit = self.tokenizer.model_max_length if self.tokenizer is not None else VERY_LARGE_INTEGER
        if positions and limit >= VERY_LARGE_INTEGER:
            limit = positions
        return min(limit, positions) if positions else limit

    def check_text(self, text: Any, what: str = "input") -> str:
        if text is None:
            raise PipelineError(f"{self.task}: {what} is None; pass a non-empty string")
        if not isinstance(text, str):
            raise PipelineError(f"{self.task}: {what} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise PipelineError(f"{self.task}: {what} is an empty string; pass some text")
        return text

    def warn_truncated(self, n_tokens: int | None = None) -> None:
        """Say once per pipeline that an input was cut to the model's length (never an index error later)."""
        if not getattr(self, "_warned_truncation", False):
            size = f"of {n_tokens} tokens " if n_tokens else ""
            logger.warning("%s: an input %sis longer than the model's %d tokens and was truncated",
                           self.task, size, self.max_input_length)
            self._warned_truncation = True

    def encode_texts(self, texts: list[str], pairs: list[str] | None = None, **kwargs: Any) -> Any:
        """Tokenise many texts (or pairs) in one call, truncated to the model with a warning.

        Returns the BatchEncoding, one row per text: truncation keeps the first window, and a text that did not
        fit is reported once through :meth:`warn_truncated`.
        """
        kwargs.setdefault("truncation", True)
        kwargs.setdefault("max_length", self.max_input_length)
        enc = self.tokenizer(texts, pairs, **kwargs)
        if kwargs["truncation"] and any(e.overflowing for e in enc.encodings):
            self.warn_truncated()
        return enc

    def features_of(self, enc: Any, row: int, names: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask"),
                    **meta: Any) -> Feature:
        """The Feature of one row of a BatchEncoding (the model inputs it has among ``names``)."""
        return Feature({k: enc[k][row] for k in names if k in enc}, meta)

    # --- running -------------------------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, *, batch_size: int | None = None, progress: bool | None = None, **options: Any) -> Any:
        opts = {**self.defaults, **self.check_options(options)}
        size = _check_batch_size(batch_size, self.batch_size)
        if self.is_single(inputs):
            return self._run([inputs], opts, size, progress=False)[0]
        if inputs is None:
            raise PipelineError(f"{self.task}: input is None; pass a string or a list of strings")
        if isinstance(inputs, (list, tuple)) or (hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__")):
            items = [inputs[i] for i in range(len(inputs))]
            return self._run(items, opts, size, progress)
        if isinstance(inputs, Iterable):
            return self._stream(iter(inputs), opts, size, progress)
        raise PipelineError(f"{self.task}: cannot read inputs of type {type(inputs).__name__}; "
                            f"pass one input, a list, a dataset or a generator")

    def _stream(self, inputs: Iterator[Any], opts: dict[str, Any], size: int, progress: bool | None) -> Iterator[Any]:
        """Results of a stream, read a window ahead; one bar over the whole stream (see :func:`stream_progress`)."""
        from tqdm.auto import tqdm

        window = size * SORT_WINDOW_BATCHES
        show, delay = stream_progress(progress if progress is not None else self.progress)
        # length_hint: an iterator that knows how many inputs it holds (zoo run counts the lines of --file) gets a
        # bar with a total and an ETA; any other stream gets the count and the rate.
        total = operator.length_hint(inputs, 0) or None
        with tqdm(total=total, desc=self.task, unit="input", disable=not show, delay=delay, leave=False,
                  file=sys.stderr) as bar:
            while chunk := list(itertools.islice(inputs, window)):
                for result in self._run(chunk, opts, size, progress=False):
                    yield result
                    bar.update(1)

    def _run(self, items: list[Any], opts: dict[str, Any], size: int, progress: bool | None) -> list[Any]:
        features: list[Feature] = []
        per_item: list[list[int]] = []
        for index, (item, made) in enumerate(zip(items, self.preprocess_batch(items, opts))):
            per_item.append(list(range(len(features), len(features) + len(made))))
            for feature in made:
                feature.index = index
                features.append(feature)
        outputs = self._run_features(features, opts, size, progress)
        return [self.postprocess(item, [features[i] for i in ids], [outputs[i] for i in ids], opts)
                for item, ids in zip(items, per_item)]

    def _run_features(self, features: list[Feature], opts: dict[str, Any], size: int, progress: bool | None) -> list[dict[str, Any]]:
        """Forward every feature, longest-first in length-sorted batches; outputs come back in feature order."""
        order = sorted(range(len(features)), key=lambda i: -features[i].length)
        lengths = [features[i].length for i in order]
        batches = [order[start:end] for start, end in self.plan_batches(lengths, size)]
        show = progress if progress is not None else (self.progress if self.progress is not None else len(batches) > 4)
        outputs: list[dict[str, Any]] = [{} for _ in features]
        from tqdm.auto import tqdm

        with tqdm(total=len(features), desc=self.task, unit="input", disable=not show, leave=False) as bar:
            for batch_ids in batches:
                rows = self.run_batch([features[i] for i in batch_ids], opts)
                for i, row in zip(batch_ids, rows):
                    outputs[i] = row
                bar.update(len(batch_ids))
        return outputs

    def plan_batches(self, lengths: list[int], size: int) -> list[tuple[int, int]]:
        """Cut lengths sorted longest-first into batches of at most ``size``: (start, end) index pairs.

        On an accelerator a batch costs little more than its launches, so batches are simply ``size`` long. On
        the CPU every padded token costs as much as a real one, so the cut points are chosen (dynamic programming
        over the sorted lengths) to minimise padded tokens plus a small per-batch overhead: a few long inputs no
        longer pad a whole batch to their length.
        """
        n = len(lengths)
        if self.device.type != "cpu" or n <= 1:
            return [(i, min(i + size, n)) for i in range(0, n, size)]
        overhead = CPU_BATCH_OVERHEAD_TOKENS
        best = [0.0] + [float("inf")] * n  # best[i]: cost of batching the first i inputs
        cut = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(max(0, end - size), end):
                cost = best[start] + (end - start) * lengths[start] + overhead  # lengths[start] is the batch's longest
                if cost < best[end]:
                    best[end], cut[end] = cost, start
        bounds = []
        end = n
        while end > 0:
            bounds.append((cut[end], end))
            end = cut[end]
        return bounds[::-1]

    def run_batch(self, features: list[Feature], opts: dict[str, Any]) -> list[dict[str, Any]]:
        """Pad, forward under inference_mode, and split the outputs per row (on the CPU), floats as float32."""
        batch = self.collate(features)
        with self._torch.inference_mode():
            out = self.forward(batch, opts)
        # Every task's postprocess (softmax, sigmoid, argmax, span scores) then works in float32 whatever dtype the
        # model ran in: a softmax of bf16 logits would keep about 3 significant digits of each score.
        out = {k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in out.items()}
        return [{k: v[row] for k, v in out.items()} for row in range(len(features))]

    def collate(self, features: list[Feature], padding_side: str | None = None) -> dict[str, Any]:
        """Pad the features' inputs to the longest one and make tensors on the device."""
        torch = self._torch
        longest = max(f.length for f in features)
        side = padding_side or (self.tokenizer.padding_side if self.tokenizer is not None else "right")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer is not None and self.tokenizer.pad_token_id is not None else 0
        batch: dict[str, Any] = {}
        for key in features[0].inputs:
            value = pad_id if key == "input_ids" else 0
            rows = []
            for f in features:
                seq = f.inputs[key]
                pad = [value] * (longest - len(seq))
                rows.append(pad + seq if side == "left" else seq + pad)
            batch[key] = torch.tensor(rows, dtype=torch.long, device=self.device)
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, device={self.device})"
