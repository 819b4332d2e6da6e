"""Export a zoo model to an ExecuTorch program (.pte), PyTorch's on-device runtime for iOS, Android and MCUs.

The path is ExecuTorch's documented one: ``torch.export`` (zoo.export.graph) -> ``executorch.exir.
to_edge_transform_and_lower`` with the XNNPACK partitioner (the optimised CPU kernels of phones; when it is not
installed, or ``backend="portable"``, every op runs on the portable kernels) -> ``to_executorch()`` -> the
program's bytes. ExecuTorch plans memory ahead of time for the largest shapes, so every dynamic axis has an upper
bound: ``max_batch_size`` (default 8) and ``max_sequence_length`` (default: the model's positions). The tests run
the programs with ExecuTorch's Python runtime (``executorch.runtime.Runtime``). Reference:
https://pytorch.org/executorch/stable/ (exir, backends/xnnpack).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from zoo.errors import ExportError, MissingDependencyError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'zoo-hub[executorch]'"
BACKENDS = ("xnnpack", "portable")
DEFAULT_MAX_BATCH = 8


def require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"ExecuTorch export needs the executorch package, which is not installed "
                                     f"({exc}); install it with {INSTALL_HINT}") from exc


def _partitioners(backend: str | None) -> tuple[list[Any], str]:
    """The partitioners to lower with, and the backend's name as the metadata records it."""
    if backend is not None and backend not in BACKENDS:
        raise ExportError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "portable":
        return [], "portable"
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    except ImportError as exc:
        if backend == "xnnpack":
            raise MissingDependencyError(f"the XNNPACK backend of executorch is not importable ({exc}); install "
                                         f"executorch with its XNNPACK backend, or pass backend='portable'") from exc
        logger.info("XNNPACK is not available (%s): lowering to the portable kernels", exc)
        return [], "portable"
    return [XnnpackPartitioner()], "xnnpack"


def to_executorch(model: Any, path: str | os.PathLike[str], *, task: str | None = None, dtype: Any = None,
                  tokenizer: Any = None, image_processor: Any = None, dynamic: bool = True,
                  backend: str | None = None, max_batch_size: int = DEFAULT_MAX_BATCH,
                  max_sequence_length: int | None = None, batch_size: int | None = None,
                  sequence_length: int | None = None) -> Path:
    """Export ``model`` (a zoo model, a folder or a Hub id) to an ExecuTorch .pte at ``path``; returns the file.

    ``path`` is a folder (model.pte is written in it) or a file name ending in .pte. ``task``, ``dtype``,
    ``tokenizer`` / ``image_processor`` and ``dynamic`` are as for :func:`zoo.export.to_onnx`. ``backend``:
    "xnnpack" (the default when installed) or "portable". Dynamic axes are bounded by ``max_batch_size`` and
    ``max_sequence_length`` (default: the model's positions), the shapes ExecuTorch plans memory for.
    """
    require_executorch()
    import torch

    from zoo.export.graph import explain_failure, export_program, max_positions, plan_graph
    from zoo.export.metadata import build_metadata, tensor_info, write_metadata, write_side_files
    from zoo.export.onnx import output_file
    from zoo.export.source import load_source

    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ExportError(f"max_batch_size must be a positive int, got {max_batch_size!r}")
    partitioners, backend_name = _partitioners(backend)
    file = output_file(path, ".pte", "model.pte")
    source = load_source(model, task=task, dtype=dtype, tokenizer=tokenizer, image_processor=image_processor)
    limit = max_sequence_length or max_positions(source.model.config)
    if max_sequence_length is not None and (not isinstance(max_sequence_length, int) or max_sequence_length < 2):
        raise ExportError(f"max_sequence_length must be an int of at least 2, got {max_sequence_length!r}")
    # a bound of 1 is no dynamic axis (torch.export specialises size 1): the batch is then fixed to 1
    plan = plan_graph(source, dynamic=dynamic, batch_size=batch_size, sequence_length=sequence_length,
                      dynamic_batch=max_batch_size > 1)
    bounds = {"batch": max_batch_size, "sequence": limit, "past_sequence": limit}
    if plan.kind == "text" and limit is None and dynamic:
        raise ExportError(f"{source.describe()}: its config gives no maximum sequence length, and ExecuTorch plans "
                          f"memory for the largest shapes; pass max_sequence_length=...")
    program = export_program(plan, source, "ExecuTorch", bounds)
    try:
        lowered = _lower(program, partitioners)
    except Exception as exc:
        raise ExportError(explain_failure(exc, source, f"ExecuTorch ({backend_name})").replace(
            "torch.export could not trace the forward pass", "lowering the traced graph failed")) from exc
    tmp = file.with_name(file.name + ".incomplete")
    tmp.write_bytes(lowered.buffer)
    tmp.replace(file)

    def describe(value: Any, name: str) -> dict[str, Any]:
        dims = [plan.symbols.get(str(d.node.expr), str(d.node.expr)) if isinstance(d, torch.SymInt) else int(d)
                for d in value.shape]
        return tensor_info(name, str(value.dtype).removeprefix("torch."), [_rename(d, plan.symbols) for d in dims])

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = [describe(placeholders[n].meta["val"], name)
              for n, name in zip(program.graph_signature.user_inputs, plan.input_names)]
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    outputs = [describe(node.meta["val"], name) for node, name in zip(output_node.args[0], plan.output_names)]
    files = write_side_files(file.parent, source)
    data = build_metadata(fmt="executorch", file=file, source=source, plan=plan, inputs=inputs, outputs=outputs,
                          files=files, backend=backend_name, method="forward",
                          exporter=f"torch.export + executorch.exir.to_edge_transform_and_lower, torch "
                                   f"{torch.__version__.split('+')[0]}")
    write_metadata(file.parent, data)
    logger.info("exported %s to %s (%s)", source.describe(), file, backend_name)
    return file


def _lower(program: Any, partitioners: list[Any]) -> Any:
    """``to_edge_transform_and_lower(...).to_executorch()``; if that fails, again over the core ATen decomposition.

    Lowering keeps the ops a partitioner claims whole (linear, attention) and decomposes the rest with symbolic
    shapes; torch 2.13 can then turn a ``reshape`` after attention into a ``view`` the decomposed attention's strides
    do not allow (GPT-2's ``y.transpose(1, 2).reshape(...)`` before its Conv1D). Decomposing the whole program
    first, as ``run_decompositions()`` does, keeps the strides consistent at the cost of fewer whole-op kernels.
    """
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return to_edge_transform_and_lower(program, partitioner=partitioners).to_executorch()
        except Exception as exc:
            logger.info("lowering failed (%s: %s); retrying over the core ATen decomposition", type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "")
            return to_edge_transform_and_lower(program.run_decompositions(), partitioner=partitioners).to_executorch()


def _rename(dim: int | str, symbols: dict[str, str]) -> int | str:
    """``"s17 + s70"`` -> ``"past_sequence + sequence"``: each symbol token by its axis name."""
    if isinstance(dim, int):
        return dim
    return " ".join(symbols.get(token, token) for token in dim.split())
