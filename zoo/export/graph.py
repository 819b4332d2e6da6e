"""The graph an export traces: its inputs, outputs and dynamic axes, and ``torch.export`` with failures explained.

Every format starts from one :class:`torch.export.ExportedProgram` (torch.export, non-strict: the Python of the
model runs as written, over fake tensors): ONNX converts it with torch's dynamo-based exporter
(``torch.onnx.export(..., dynamo=True)``, onnxscript's op translations), ExecuTorch lowers it with
``executorch.exir``. A :class:`GraphPlan` wraps the model so that the graph's inputs are flat, named tensors and its
outputs the head's output fields in order:

- text models: ``input_ids``, ``attention_mask`` (+ ``token_type_ids`` when the tokenizer returns them), axes
  ``batch`` and ``sequence``;
- image models: ``pixel_values`` with a dynamic ``batch`` (height and width are the image processor's output);
- causal LMs with zoo's key/value cache: zoo.export.decoder's graph, with a ``past_sequence`` axis as well.

Dynamic axes are declared as ``torch.export.Dim.DYNAMIC`` hints, which let the exporter narrow an axis's range
to what the model's code allows (``sequence <= max_position_embeddings``) and fail loudly if the code fixes the
axis to the example's size. Example sizes are at least 2: torch.export specialises sizes 0 and 1, and the traced
graph serves every size in the range (tests run sizes 1 and a 0-length past through it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zoo.errors import ExportError
from zoo.export.decoder import CacheLayout, CausalLMWithCache, cache_layout, prompt_position_ids
from zoo.export.source import ExportSource

logger = logging.getLogger(__name__)

#: Output fields that are not outputs of an exported head (training loss, optional extras, the eager cache).
SKIPPED_OUTPUTS = frozenset({"loss", "hidden_states", "attentions", "cross_attentions", "past_key_values"})
DEFAULT_BATCH, DEFAULT_SEQUENCE, DEFAULT_PAST = 2, 8, 3


@dataclass
class GraphPlan:
    """A flat-input module to trace, example inputs, and the names of everything."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    #: input name -> {axis: symbolic name} for the dynamic axes
    axes: dict[str, dict[int, str]]
    kind: str  # "text", "image" or "causal-lm"
    cache: CacheLayout | None = None
    #: symbolic name -> (min, max or None) as the exported program proves it, filled by export_program
    ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    #: exporter symbol ("s26") -> symbolic name ("batch"), filled by export_program
    symbols: dict[str, str] = field(default_factory=dict)


class HeadOutputs(nn.Module):
    """``(*inputs) -> tuple`` of the head's output fields ``output_names``, over a zoo model taking keywords."""

    def __init__(self, model: nn.Module, input_names: list[str], output_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.input_names, inputs)), return_dict=True)
        return tuple(getattr(out, name) for name in self.output_names)


def max_positions(config: Any) -> int | None:
    """The longest sequence a text model's config allows, if it says."""
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def text_input_names(source: ExportSource) -> list[str]:
    """input_ids, attention_mask, and token_type_ids when the tokenizer returns them (BERT's do, RoBERTa's not).

    Without a tokenizer, token types are an input where the config has more than one type (``type_vocab_size``).
    """
    names = ["input_ids", "attention_mask"]
    tok = source.tokenizer
    if tok is not None:
        if "token_type_ids" in tuple(getattr(tok, "model_input_names", ())):
            names.append("token_type_ids")
    elif int(getattr(source.model.config, "type_vocab_size", 0) or 0) > 1:
        names.append("token_type_ids")
    return names


def image_size(source: ExportSource) -> tuple[int, int, int]:
    """(channels, height, width) of the pixel values the model is fed: the image processor's output for a square
    image, else the config's ``image_size`` (224 if it has none)."""
    config = source.model.config
    channels = int(getattr(config, "num_channels", 3) or 3)
    processor = source.image_processor
    if processor is not None:
        probe = torch.zeros(channels, 256, 256, dtype=torch.uint8)
        pixels = processor(probe)["pixel_values"]  # (1, C, H, W)
        return int(pixels.shape[1]), int(pixels.shape[2]), int(pixels.shape[3])
    size = getattr(config, "image_size", None) or 224
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return channels, int(height), int(width)


def plan_graph(source: ExportSource, *, dynamic: bool = True, batch_size: int | None = None,
               sequence_length: int | None = None, dynamic_batch: bool = True) -> GraphPlan:
    """The graph to trace for ``source``: wrapper module, example inputs, names and dynamic axes.

    ``dynamic_batch=False`` keeps the other axes dynamic but fixes the batch to ``batch_size`` (default 1).
    """
    plan = _plan(source, dynamic, batch_size, sequence_length, dynamic and dynamic_batch)
    if not (dynamic and dynamic_batch):
        plan.axes = {name: {a: n for a, n in axes.items() if n != "batch"} for name, axes in plan.axes.items()}
    return plan


def _plan(source: ExportSource, dynamic: bool, batch_size: int | None, sequence_length: int | None,
          dynamic_batch: bool) -> GraphPlan:
    model = source.model
    dtype = next(model.parameters()).dtype
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ExportError(f"batch_size must be a positive int, got {batch_size!r}")
    batch = batch_size or (DEFAULT_BATCH if dynamic_batch else 1)
    if dynamic_batch and batch < 2:
        batch = DEFAULT_BATCH  # sizes 0 and 1 would be specialised: trace at 2, the graph serves 1 as well
    if source.is_image_model:
        channels, height, width = image_size(source)
        pixels = torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(0)).to(dtype)
        names = ["pixel_values"]
        outputs = head_output_names(source, names, (pixels,))
        axes = {"pixel_values": {0: "batch"}} if dynamic else {}
        return GraphPlan(HeadOutputs(model, names, outputs), (pixels,), names, outputs, axes, "image")

    limit = max_positions(model.config)
    length = int(sequence_length or min(DEFAULT_SEQUENCE if dynamic else 128, limit or 128))
    if length < 1 or (limit is not None and length > limit):
        raise ExportError(f"sequence_length {sequence_length} is outside 1..{limit}, the lengths "
                          f"{type(model).__name__} takes")
    if dynamic and length < 2:
        length = DEFAULT_SEQUENCE
    vocab = int(getattr(model.config, "vocab_size", 2) or 2)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    if batch > 1 and length > 2:
        mask[-1, length // 2:] = 0  # one padded row: the traced graph must apply the mask

    layout = cache_layout(model) if source.task == "causal-lm" else None
    if layout is not None:
        if not dynamic:
            raise ExportError(f"{source.describe()} exports as a graph with past key/value inputs, whose past "
                              f"length grows at every step; export it with dynamic=True (the default)")
        past = DEFAULT_PAST
        full_mask = torch.cat([torch.ones(batch, past, dtype=torch.long), torch.ones_like(mask)], dim=1)
        positions = past + prompt_position_ids(torch.ones_like(mask))
        example = (ids, full_mask, positions, *layout.empty(batch, past, dtype))
        names = ["input_ids", "attention_mask", "position_ids", *layout.input_names()]
        outputs = ["logits", *layout.output_names()]
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "past_sequence + sequence"},
                "position_ids": {0: "batch", 1: "sequence"}}
        axes.update({name: {0: "batch", 2: "past_sequence"} for name in layout.input_names()})
        return GraphPlan(CausalLMWithCache(model, layout), example, names, outputs, axes, "causal-lm", layout)

    names = text_input_names(source)
    tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    example = tuple(tensors[name] for name in names)
    outputs = head_output_names(source, names, example)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} if dynamic else {}
    return GraphPlan(HeadOutputs(model, names, outputs), example, names, outputs, axes, "text")


def head_output_names(source: ExportSource, input_names: list[str], example: tuple[torch.Tensor, ...]) -> list[str]:
    """The head's tensor output fields, in their dataclass order, from one eager forward pass on the example."""
    try:
        with torch.no_grad():
            out = source.model(**dict(zip(input_names, example)), return_dict=True)
    except Exception as exc:  # the model refuses the example itself: nothing to trace
        shapes = ", ".join(f"{n}{tuple(t.shape)}" for n, t in zip(input_names, example))
        raise ExportError(f"{source.describe()} fails on the example inputs the export traces ({shapes}): "
                          f"{type(exc).__name__}: {exc}; fix the model or its config for such inputs, or pass "
                          f"batch_size / sequence_length it accepts") from exc
    if dataclasses.is_dataclass(out):
        candidates = [f.name for f in dataclasses.fields(out)]
    elif isinstance(out, dict):
        candidates = list(out)
    else:
        raise ExportError(f"{source.describe()} returned a {type(out).__name__}, not an output object with named "
                          f"fields; the exporters need named outputs (a zoo.outputs.ModelOutput)")
    names = [name for name in candidates
             if name not in SKIPPED_OUTPUTS and isinstance(getattr(out, name, None), torch.Tensor)]
    if not names:
        raise ExportError(f"{source.describe()} returned no tensor outputs to export")
    return names


# --- torch.export ---------------------------------------------------------------------------------------------------


def dynamic_shapes(plan: GraphPlan, bounds: dict[str, int | None]) -> tuple[Any, ...]:
    """The dynamic_shapes argument for ``torch.export`` (one entry for the module's ``*inputs``)."""
    Dim = torch.export.Dim
    specs = []
    for name in plan.input_names:
        axes = plan.axes.get(name, {})
        spec = {}
        for axis, symbolic in axes.items():
            upper = bounds.get(symbolic)
            spec[axis] = Dim.DYNAMIC(max=upper) if upper is not None else Dim.DYNAMIC
        specs.append(spec or None)
    return (tuple(specs),)


def export_program(plan: GraphPlan, source: ExportSource, fmt: str,
                   bounds: dict[str, int | None] | None = None) -> torch.export.ExportedProgram:
    """``torch.export`` the plan's module on its example; a failure becomes an ExportError saying where and why."""
    model = source.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            program = torch.export.export(plan.module, plan.example, dynamic_shapes=dynamic_shapes(plan, bounds or {}),
                                          strict=False)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(explain_failure(exc, source, fmt)) from exc
    finally:
        model.train(was_training)
    record_symbols(plan, program, source)
    return program


def record_symbols(plan: GraphPlan, program: torch.export.ExportedProgram, source: ExportSource) -> None:
    """Map the exporter's size symbols to the plan's axis names, and read each axis's proven range."""
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    user = [n for n in placeholders if n.name in set(program.graph_signature.user_inputs)]
    ranges = {str(k): v for k, v in program.range_constraints.items()}
    for name, node in zip(plan.input_names, user):
        shape = node.meta["val"].shape
        for axis, symbolic in plan.axes.get(name, {}).items():
            size = shape[axis]
            if not isinstance(size, torch.SymInt):
                raise ExportError(f"{source.describe()}: axis {axis} ({symbolic}) of input {name} came out fixed "
                                  f"to {size} while tracing: the model's code ties it to the example's size; export "
                                  f"with dynamic=False for fixed shapes, or make the code independent of that size")
            text = str(size.node.expr)
            if " " in symbolic:  # an expression ("past_sequence + sequence"): named by its parts
                continue
            plan.symbols.setdefault(text, symbolic)
            if text in ranges and symbolic not in plan.ranges:
                high = ranges[text].upper
                # the exporter assumes sizes >= 2 while tracing; the graphs serve 1 (and a past of 0) too, which
                # the tests run
                minimum = 0 if symbolic == "past_sequence" else 1
                plan.ranges[symbolic] = (minimum, int(high) if getattr(high, "is_Integer", False) else None)


def explain_failure(exc: BaseException, source: ExportSource, fmt: str) -> str:
    """One message: what failed (the model's own line, not torch's), why, and what to do."""
    frame = _model_frame(exc)
    where = f" at {frame}" if frame else ""
    kind = type(exc).__name__
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "(no message)")
    if "DataDependent" in kind or "data-dependent" in str(exc):
        why = ("the model branches on the values of a tensor (data-dependent control flow), which a graph for "
               "every input cannot record; make that branch independent of tensor values while exporting "
               "(zoo.modeling.is_exporting() tells the model it is being exported)")
    elif "Constraints violated" in str(exc) or "specializ" in str(exc).lower():
        why = ("the model's code fixes a dynamic axis (batch or sequence) to the example's size; export with "
               "dynamic=False for fixed shapes, or remove the branch on that size")
    elif "Unsupported" in kind or "not supported" in str(exc).lower() or "no translation" in str(exc).lower():
        why = f"an operator of the model has no {fmt} translation"
    else:
        why = "torch.export could not trace the forward pass"
    return (f"{source.describe()} cannot be exported to {fmt}: {why}{where}. torch said: {kind}: {first[:400]}")


def _model_frame(exc: BaseException) -> str | None:
    """``file:line in function: code`` of the innermost traceback frame outside torch (the model's own code)."""
    torch_dir = os.path.dirname(torch.__file__)
    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for entry in traceback.extract_tb(current.__traceback__):
            if not entry.filename.startswith(torch_dir) and "/zoo/export/" not in entry.filename.replace("\\", "/"):
                found = f"{entry.filename}:{entry.lineno} in {entry.name}: {(entry.line or '').strip()}"
        current = current.__cause__ or current.__context__
    return found
