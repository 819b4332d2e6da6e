"""``zoo convert tf SRC OUT``: TensorFlow weights -> an ordinary model folder (config.json, model.safetensors,
tokenizer files) that zoo and transformers both load, with no TensorFlow installed.

SRC is a release folder (Google's BERT: bert_model.ckpt.* + bert_config.json + vocab.txt; OpenAI's GPT-2:
model.ckpt.* + hparams.json + encoder.json + vocab.bpe), a Hub-style folder with tf_model.h5 and config.json, or a
Hub repo id of either. What transformers' ``convert_bert_original_tf_checkpoint_to_pytorch.py`` and
``convert_gpt2_original_tf_checkpoint_to_pytorch.py`` did, for every architecture whose plugin declares a
TensorFlow mapping (zoo/convert/mapping.py), and without TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import TokenizerError

logger = logging.getLogger(__name__)

__all__ = ["ConversionResult", "add_convert_command", "convert_tf"]

#: Vocabulary files a tokenizer folder keeps beside tokenizer.json, for tools that read them (slow tokenizers).
VOCAB_FILES = ("vocab.txt", "vocab.json", "merges.txt")


@dataclass
class ConversionResult:
    """What :func:`convert_tf` wrote: the folder, its files, the model class and task, and the loading report
    (PyTorch keys newly initialised; TensorFlow variables not used; training state skipped)."""

    folder: Path
    files: list[str]
    model_class: str
    task: str
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    tokenizer: bool = False


def convert_tf(src: Any, out: str | Path, *, model_type: str | None = None, task: str | None = None,
               do_lower_case: bool | None = None, progress: bool | None = None, dtype: Any = None,
               **hub_kwargs: Any) -> ConversionResult:
    """Read the TensorFlow weights of ``src`` and write ``out`` as save_pretrained writes a folder, plus the
    tokenizer (tokenizer.json and its settings, and the vocabulary files under transformers' names).

    ``task``: the head to build (default: the one the checkpoint holds, or config.json's ``architectures``);
    ``model_type``: the architecture, where config.json lacks one; ``do_lower_case``: for BERT's tokenizer, where
    the folder name does not tell (zoo/convert/release.py); ``dtype``: the weights' dtype in ``out``.
    """
    from zoo.auto import AutoTokenizer
    from zoo.convert.loader import load_tf_model
    from zoo.hub import repo_files
    from zoo.registry import get_registry

    repo = repo_files(src, **hub_kwargs)
    model, info = load_tf_model(None, repo, task=task, model_type=model_type, dtype=dtype, output_loading_info=True,
                                progress=progress)
    out = Path(out)
    before = set(_listing(out))
    model.save_pretrained(out)
    arch = get_registry().architecture(model.config.model_type)
    found_task = next((t for t, spec in arch.models.items() if str(spec).endswith(f":{type(model).__name__}")), task)
    wrote_tokenizer = False
    if arch.tokenizer is not None:
        options = {} if do_lower_case is None else {"do_lower_case": do_lower_case}
        try:
            tokenizer = AutoTokenizer.from_pretrained(repo, **options)
        except TokenizerError as exc:
            logger.warning("%s: no tokenizer written (%s); the weights and config are converted", repo.identifier, exc)
        else:
            tokenizer.save_pretrained(out)
            _copy_vocab_files(arch, repo, out, options)
            wrote_tokenizer = True
    files = sorted(set(_listing(out)) | before)
    return ConversionResult(out, files, type(model).__name__, found_task or "base", info["missing_keys"],
                            info["unexpected_keys"], info["skipped"], wrote_tokenizer)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _copy_vocab_files(arch: Any, repo: Any, out: Path, options: dict[str, Any]) -> None:
    """vocab.txt / vocab.json + merges.txt as the tokenizer read them (encoder.json and vocab.bpe of a GPT-2
    release are written under transformers' names)."""
    from zoo.convert.release import prepare_release_tokenizer

    files = prepare_release_tokenizer(arch, repo, dict(options))
    for name in VOCAB_FILES:
        if name in arch.tokenizer_files and files.exists(name) and not (out / name).exists():
            shutil.copyfile(files.require(name), out / name)


# --- the command ----------------------------------------------------------------------------------------------------------


def add_convert_command(sub: Any) -> None:
    """Add ``zoo convert`` (and its ``tf`` verb) to the ``zoo`` command's subparsers."""
    from zoo.registry import MODEL_TASKS

    convert = sub.add_parser("convert", help="convert TensorFlow weights into a zoo / transformers model folder",
                             description="Convert weights of another framework into an ordinary model folder.")
    kinds = convert.add_subparsers(dest="kind", metavar="KIND")
    tf = kinds.add_parser(
        "tf", help="TensorFlow checkpoint or tf_model.h5 -> config.json + model.safetensors + tokenizer files",
        description="Read TensorFlow weights without TensorFlow (Google's BERT and OpenAI's GPT-2 releases, "
                    "folders with tf_model.h5) and write OUT as save_pretrained writes a folder: config.json, "
                    "model.safetensors and the tokenizer files, which zoo and transformers both load.")
    tf.add_argument("src", metavar="SRC", help="folder (or Hub repo id) with the TensorFlow weights and their config")
    tf.add_argument("out", metavar="OUT", help="folder to write (created if needed)")
    tf.add_argument("--model-type", default=None,
                    help="the architecture (bert, gpt2, ...) when config.json does not name one")
    tf.add_argument("--task", default=None, choices=MODEL_TASKS, metavar="TASK",
                    help="the head to convert (default: the one the checkpoint holds): " + ", ".join(MODEL_TASKS))
    tf.add_argument("--do-lower-case", action=argparse.BooleanOptionalAction, default=None,
                    help="whether BERT's tokenizer lowercases (default: from the folder name, 'uncased_...' or "
                         "'cased_...', as Google's scripts tell)")
    tf.add_argument("--dtype", default=None, help="dtype of the written weights (default: as stored, float32)")
    tf.add_argument("--no-progress", action="store_true", help="no progress bar while tensors are read")
    tf.set_defaults(func=_convert_tf, parser=tf)
    convert.set_defaults(func=lambda args: convert.print_help() or 2, parser=convert)


def _convert_tf(args: argparse.Namespace) -> int:
    progress = False if args.no_progress else (True if sys.stderr.isatty() else None)
    result = convert_tf(args.src, args.out, model_type=args.model_type, task=args.task,
                        do_lower_case=args.do_lower_case, progress=progress, dtype=args.dtype)
    print(f"wrote {result.folder}: {result.model_class} ({result.task}); {', '.join(result.files)}")
    if result.skipped:
        count = len(result.skipped)
        print(f"skipped {count} training-state variable{'s' if count != 1 else ''} (optimizer slots, step counters)")
    if not result.tokenizer:
        print("no tokenizer files: the source has none zoo can read", file=sys.stderr)
    return 0
