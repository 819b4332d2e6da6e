"""Export a zoo model to ONNX, for ONNX Runtime on servers, phones (onnxruntime-mobile) and browsers (onnxruntime-web).

The path is torch 2.x's own: ``torch.export`` (zoo.export.graph) gives an ExportedProgram, which
``torch.onnx.export(program, dynamo=True)`` translates op by op with onnxscript and optimises; the TorchScript
exporter (``dynamo=False``) is not used: it records one trace of Python ints (cache lengths, position ranges)
as constants, while torch.export keeps them symbolic. The exporter's size symbols (``s26``) are renamed to the
axis names of the plan (``batch``, ``sequence``, ``past_sequence``), so the ONNX inputs read
``input_ids: int64[batch, sequence]``. Weights stay inside model.onnx up to 1.5 GB, beyond that they go to
``model.onnx.data`` (ONNX's protobuf limit is 2 GB). Reference: torch/onnx/_internal/exporter (torch 2.13),
optimum's ONNX export for the input and output names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import ExportError, MissingDependencyError

logger = logging.getLogger(__name__)

#: The lowest opset torch's dynamo-based exporter writes.
MIN_OPSET = 18
#: Above this many bytes of weights, they are written as external data beside the .onnx file.
EXTERNAL_DATA_BYTES = 1_500_000_000
INSTALL_HINT = "pip install 'zoo-hub[onnx]'"


def require_onnx(runtime: bool = False) -> None:
    """Import onnx and onnxscript (the exporter's op translations), and onnxruntime if ``runtime``; else say how."""
    names = ["onnx", "onnxscript"] + (["onnxruntime"] if runtime else [])
    missing = []
    for name in names:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependencyError(f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                                     f"not installed; install them with {INSTALL_HINT}")


def output_file(path: str | os.PathLike[str], suffix: str, default_name: str) -> Path:
    """``path`` ending in ``suffix`` is the file; anything else is a folder that receives ``default_name``."""
    path = Path(path)
    if path.suffix == suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path} is a file that is not a {suffix} program; give a folder or a path ending in {suffix}")
    path.mkdir(parents=True, exist_ok=True)
    return path / default_name


def to_onnx(model: Any, path: str | os.PathLike[str], *, task: str | None = None, opset: int | None = None,
            dtype: Any = None, tokenizer: Any = None, image_processor: Any = None, dynamic: bool = True,
            batch_size: int | None = None, sequence_length: int | None = None) -> Path:
    """Export ``model`` (a zoo model, a folder or a Hub id) to ONNX at ``path``; returns the .onnx file.

    ``path`` is a folder (model.onnx is written in it) or a file name ending in .onnx. ``task`` picks the head
    when ``model`` is an identifier (default: the checkpoint's own, from config.json's ``architectures``);
    aliases such as "feature-extraction" and "text-generation" are accepted. ``dtype`` casts the weights
    ("float32", "float16", "bfloat16"). ``dynamic=False`` fixes the shapes to ``batch_size`` (default 1) x
    ``sequence_length`` (default min(128, the model's positions)). Beside the file go config.json, the tokenizer or
    preprocessor files and zoo_export.json (zoo.export.metadata).
    """
    require_onnx()
    import torch

    from zoo.export.graph import export_program, plan_graph
    from zoo.export.metadata import build_metadata, write_metadata, write_side_files
    from zoo.export.source import load_source

    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET):
        raise ExportError(f"opset {opset!r} cannot be written: torch's ONNX exporter (dynamo=True) writes opset "
                          f"{MIN_OPSET} or newer; pass opset >= {MIN_OPSET} or leave it unset")
    file = output_file(path, ".onnx", "model.onnx")
    source = load_source(model, task=task, dtype=dtype, tokenizer=tokenizer, image_processor=image_processor)
    plan = plan_graph(source, dynamic=dynamic, batch_size=batch_size, sequence_length=sequence_length)
    program = export_program(plan, source, "ONNX")
    weight_bytes = sum(p.numel() * p.element_size() for p in source.model.parameters())
    try:
        with warnings.catch_warnings(), _quiet_logger("torch.onnx"):
            warnings.simplefilter("ignore")  # the exporter's notes on axis names it does not use, pytree deprecations
            onnx_program = torch.onnx.export(program, (), None, input_names=plan.input_names,
                                             output_names=plan.output_names, opset_version=opset, dynamo=True,
                                             verbose=False, optimize=True)
    except Exception as exc:
        from zoo.export.graph import explain_failure

        raise ExportError(explain_failure(exc, source, "ONNX").replace(
            "torch.export could not trace the forward pass", "the ONNX translation of the traced graph failed")) from exc
    onnx_program.rename_axes(dict(plan.symbols))
    _remove_stale(file)
    onnx_program.save(str(file), external_data=weight_bytes > EXTERNAL_DATA_BYTES)
    inputs, outputs, written_opset = describe_onnx(onnx_program.model)
    files = write_side_files(file.parent, source)
    data = build_metadata(fmt="onnx", file=file, source=source, plan=plan, inputs=inputs, outputs=outputs,
                          files=files, opset=written_opset, exporter=f"torch.onnx.export(dynamo=True), torch "
                                                                    f"{torch.__version__.split('+')[0]}",
                          external_data=weight_bytes > EXTERNAL_DATA_BYTES)
    write_metadata(file.parent, data)
    logger.info("exported %s to %s (opset %s)", source.describe(), file, written_opset)
    return file


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """The exporter logs a warning per optional op library it skips (torchvision's nms, ...): noise for a user."""
    log = logging.getLogger(name)
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def _remove_stale(file: Path) -> None:
    """A previous export's external data would be mistaken for this one's."""
    stale = file.with_name(file.name + ".data")
    if stale.exists():
        stale.unlink()


def describe_onnx(model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None]:
    """(inputs, outputs, default-domain opset) of an onnx_ir model, shapes with their symbolic axis names."""
    from zoo.export.metadata import tensor_info

    def info(value: Any) -> dict[str, Any]:
        dims: list[int | str] = []
        for dim in value.shape or ():
            dims.append(dim if isinstance(dim, int) else str(getattr(dim, "value", dim)))
        dtype = value.dtype.name.lower() if value.dtype is not None else "unknown"
        return tensor_info(value.name, _DTYPE_NAMES.get(dtype, dtype), dims)

    opset = model.opset_imports.get("")
    return [info(v) for v in model.graph.inputs], [info(v) for v in model.graph.outputs], opset


#: onnx_ir's DataType names -> the names torch and numpy use.
_DTYPE_NAMES = {"float": "float32", "double": "float64", "float16": "float16", "bfloat16": "bfloat16",
                "int64": "int64", "int32": "int32", "bool": "bool", "uint8": "uint8", "int8": "int8"}
