"""Export zoo models for on-device and server runtimes: ONNX (ONNX Runtime) and ExecuTorch (.pte).

    from zoo.export import to_onnx, to_executorch
    to_onnx("path/to/bert-sst2", "out/")            # out/model.onnx + tokenizer files + zoo_export.json
    to_executorch("path/to/resnet", "out-pte/")      # out-pte/model.pte + preprocessor_config.json + ...

Both trace the model once with ``torch.export`` (zoo.export.graph), with dynamic batch and sequence axes, and a
causal LM as one graph with its key/value cache as inputs and outputs (zoo.export.decoder). Beside the program goes
what a device app needs (zoo.export.metadata). onnx / onnxscript / onnxruntime and executorch are optional extras
(``pip install 'zoo-hub[onnx]'``, ``'zoo-hub[executorch]'``), imported only when an export runs; importing this
package imports neither them nor torch. The guide is docs/export.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.lazy import lazy_exports

_LAZY = {
    "to_onnx": "zoo.export.onnx",
    "to_executorch": "zoo.export.executorch",
    "load_metadata": "zoo.export.metadata",
    "METADATA_NAME": "zoo.export.metadata",
    "greedy_generate": "zoo.export.runtime",
    "onnx_session": "zoo.export.runtime",
    "CausalLMWithCache": "zoo.export.decoder",
    "CacheLayout": "zoo.export.decoder",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:
    from zoo.export.decoder import CacheLayout, CausalLMWithCache
    from zoo.export.executorch import to_executorch
    from zoo.export.metadata import METADATA_NAME, load_metadata
    from zoo.export.onnx import to_onnx
    from zoo.export.runtime import greedy_generate, onnx_session
