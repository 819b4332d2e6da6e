"""``zoo export onnx|executorch MODEL OUT``: the command-line face of zoo.export.

``zoo.cli.build_parser`` calls :func:`add_export_command` with its subparsers. Each verb exports, then prints the
written program's path and a one-line summary of its inputs; errors are zoo errors (ExportError, a missing extra),
which ``zoo.cli.main`` prints as one line.

    zoo export onnx MODEL OUT [--task T] [--opset N] [--dtype float32|float16|bfloat16] [--static]
    zoo export executorch MODEL OUT [--task T] [--dtype D] [--backend xnnpack|portable] [--max-batch-size N]
                                    [--max-sequence-length N] [--static]
"""

from __future__ import annotations

import argparse
from typing import Any

DTYPE_CHOICES = ("float32", "float16", "bfloat16")


def _summary(path: Any) -> str:
    from zoo.export.metadata import load_metadata

    meta = load_metadata(path)
    inputs = ", ".join(f"{i['name']}{i['shape']}".replace("'", "") for i in meta["inputs"][:4])
    more = f", +{len(meta['inputs']) - 4} more" if len(meta["inputs"]) > 4 else ""
    return f"{meta['format']} {meta['architecture']} ({meta['task']}): inputs {inputs}{more}"


def _onnx(args: argparse.Namespace) -> int:
    from zoo.export.onnx import to_onnx

    path = to_onnx(args.model, args.out, task=args.task, opset=args.opset, dtype=args.dtype, dynamic=not args.static)
    print(path)
    print(_summary(path))
    return 0


def _executorch(args: argparse.Namespace) -> int:
    from zoo.export.executorch import to_executorch

    path = to_executorch(args.model, args.out, task=args.task, dtype=args.dtype, dynamic=not args.static,
                         backend=args.backend, max_batch_size=args.max_batch_size,
                         max_sequence_length=args.max_sequence_length)
    print(path)
    print(_summary(path))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model folder or Hub repo id")
    parser.add_argument("out", metavar="OUT", help="output folder (or a file name ending in the format's suffix)")
    parser.add_argument("--task", default=None,
                        help="model head to export: base (alias feature-extraction), sequence-classification, "
                             "causal-lm (alias text-generation), ... (default: the checkpoint's own, from "
                             "config.json's architectures)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help="cast the weights (default: as saved)")
    parser.add_argument("--static", action="store_true",
                        help="fixed shapes (batch 1, sequence min(128, the model's positions)) instead of dynamic "
                             "batch and sequence axes")


def add_export_command(sub: Any) -> None:
    """Register ``zoo export`` and its two formats on ``zoo``'s subparsers."""
    export = sub.add_parser("export", help="export a model for ONNX Runtime or ExecuTorch (on-device runtimes)",
                            description="Export a model folder or Hub repo to an on-device format. Next to the "
                                        "program go config.json, the tokenizer or preprocessor files and "
                                        "zoo_export.json (inputs, outputs, labels, pooling, cache layout).")
    formats = export.add_subparsers(dest="format", metavar="FORMAT")
    export.set_defaults(func=lambda args: (export.print_help(), 2)[1], parser=export)

    onnx = formats.add_parser("onnx", help="ONNX, through torch.export and torch.onnx (dynamo); needs "
                                           "zoo-hub[onnx]")
    _common(onnx)
    onnx.add_argument("--opset", type=int, default=None, help="ONNX opset to write (18 or newer; default: torch's)")
    onnx.set_defaults(func=_onnx, parser=onnx)

    pte = formats.add_parser("executorch", help="an ExecuTorch .pte program (XNNPACK when available); needs "
                                                "zoo-hub[executorch]")
    _common(pte)
    pte.add_argument("--backend", choices=("xnnpack", "portable"), default=None,
                     help="kernels to lower to (default: xnnpack when installed, else portable)")
    pte.add_argument("--max-batch-size", type=int, default=8,
                     help="largest batch the program takes (ExecuTorch plans memory for it; default 8)")
    pte.add_argument("--max-sequence-length", type=int, default=None,
                     help="longest sequence the program takes (default: the model's positions)")
    pte.set_defaults(func=_executorch, parser=pte)
