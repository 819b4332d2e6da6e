"""What a chat template can see and do: jinja2's immutable sandbox with transformers' extras, and nothing more.

Chat templates come from downloaded repos, so they are untrusted code. They are compiled in
``jinja2.sandbox.ImmutableSandboxedEnvironment`` with the options, filters and globals of transformers'
``utils/chat_template_utils.py`` (``_cached_compile_jinja_template``): ``trim_blocks``, ``lstrip_blocks``, the
``loopcontrols`` extension, the ``{% generation %}`` tag that marks assistant text, ``raise_exception``,
``strftime_now``, a ``tojson`` that does not HTML-escape, and transformers' restricted ``dict`` and ``namespace``.
Everything a template is given is first rebuilt out of plain JSON-like data (``plain_template_data``), so it never
holds a Python object with methods that reach further, and never the caller's own lists and dicts.

Beyond transformers, and without changing what any well-behaved template renders: reading an unsafe attribute
(``__class__``, ``__globals__``, ``_private``) is an error even when the result is only printed or tested, not
silently empty; ``{% include %}``, ``{% import %}`` and ``{% extends %}`` are refused (there is no loader to read
files with); and ``*`` and ``**`` refuse results larger than :data:`MAX_REPEAT` items or :data:`MAX_POWER_BITS`
bits, as ``range`` already refuses more than ``jinja2.sandbox.MAX_RANGE`` items. Every failure becomes a
:class:`~zoo.errors.ChatTemplateError`.

This module imports jinja2; :mod:`zoo.chat_template` imports it only when a template is compiled.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError

from zoo.errors import ChatTemplateError, MissingDependencyError

#: The largest string or list a template may build with ``*`` (``'=' * 80`` is fine; ``'x' * 10**12`` is not).
MAX_REPEAT = 10_000_000
#: The largest integer, in bits, a template may build with ``**``.
MAX_POWER_BITS = 1_000_000
#: Oldest jinja2 without known sandbox escapes (CVE-2024-56201, CVE-2024-56326, CVE-2025-27516); transformers
#: refuses older ones for the same reason.
MIN_JINJA2 = (3, 1, 6)

_GENERATION_TAG = re.compile(r"\{\%-?\s*generation\s*-?\%\}")


class _TemplateRaised(TemplateError):
    """``raise_exception(message)`` was called by the template: the model's own refusal of the conversation."""


def _raise_exception(message: Any) -> None:
    raise _TemplateRaised(str(message))


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # jinja's own tojson HTML-escapes <, >, & and ', which would change the text the model sees
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:  # noqa: A002 - the name templates call it with
    return datetime.now().strftime(format)


class _TemplateDict:
    """transformers' ``dict`` global: callable and ``fromkeys``, but no type object to climb from."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """transformers' ``namespace``: jinja's, refusing underscore names so no attribute shadows CPython internals."""

    # no named self: jinja's signature trick, so that namespace(self=...) still works
    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"chat templates cannot store underscore-prefixed attributes on a namespace, but got "
                                f"{name!r}; rename the attribute")


class _Output(list):
    """The rendered pieces so far, with their total length, so a ``{% generation %}`` block knows where it starts."""

    length = 0

    def append(self, piece: str) -> None:
        super().append(piece)
        self.length += len(piece)


class _AssistantTracker(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: records the character span of the text inside, while tracking is
    on (transformers' AssistantTracker; the spans become ``assistant_masks``)."""

    tags = {"generation"}

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.extend(activate_tracker=self.activate_tracker)
        self._tracking: ContextVar[tuple[_Output, list[tuple[int, int]]] | None] = ContextVar(
            "zoo_assistant_tracker", default=None)

    def parse(self, parser: Any) -> jinja2.nodes.CallBlock:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context: Any, caller: Callable[[], str]) -> str:
        text = caller()
        tracking = self._tracking.get()
        if tracking is not None:
            output, spans = tracking
            spans.append((output.length, output.length + len(text)))
        return text

    @contextmanager
    def activate_tracker(self, output: _Output, spans: list[tuple[int, int]]) -> Iterator[None]:
        if self._tracking.get() is not None:
            raise RuntimeError("the assistant tracker is already active in this context")
        token = self._tracking.set((output, spans))
        try:
            yield
        finally:
            self._tracking.reset(token)


class _NoFiles(jinja2.BaseLoader):
    """The loader of the chat environment: every template name is refused, so no template can read a file."""

    def get_source(self, environment: jinja2.Environment, template: str) -> Any:
        raise SecurityError(f"chat templates cannot include, import or extend other templates (asked for "
                            f"{template!r}); a chat template must be one self-contained string")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
            raise SecurityError(f"the template asked for a sequence of {len(seq)} items repeated {times} times; "
                                f"the sandbox refuses results longer than {MAX_REPEAT:,} items")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if abs(base).bit_length() * exponent > MAX_POWER_BITS:
            raise SecurityError(f"the template asked for {base} ** {exponent}; the sandbox refuses integers larger "
                                f"than {MAX_POWER_BITS:,} bits")


class _ChatEnvironment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # jinja's default prints as "" and tests as false; strict, it fails on any use
        return jinja2.StrictUndefined(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is "
                                      f"unsafe", obj=obj, name=attribute, exc=SecurityError)


_environment: _ChatEnvironment | None = None
_environment_lock = threading.Lock()


def environment() -> jinja2.Environment:
    """The one sandboxed environment every chat template is compiled in (built on first use)."""
    global _environment
    with _environment_lock:
        if _environment is None:
            found = tuple(int(p) for p in re.findall(r"\d+", jinja2.__version__)[:3])
            if found < MIN_JINJA2:
                raise MissingDependencyError(
                    f"chat templates need jinja2>={'.'.join(map(str, MIN_JINJA2))} (older versions have known sandbox "
                    f"escapes, and templates from the Hub are untrusted code); found jinja2 {jinja2.__version__}; "
                    f"upgrade with `pip install -U jinja2`")
            env = _ChatEnvironment(trim_blocks=True, lstrip_blocks=True, loader=_NoFiles(),
                                   extensions=[_AssistantTracker, jinja2.ext.loopcontrols])
            env.filters["tojson"] = _tojson
            env.globals["raise_exception"] = _raise_exception
            env.globals["strftime_now"] = _strftime_now
            env.globals["dict"] = _TemplateDict()
            env.globals["namespace"] = _TemplateNamespace
            _environment = env
        return _environment


@lru_cache(maxsize=128)
def compile_template(template: str) -> jinja2.Template:
    """The compiled template, cached on its text: a chat app renders the same template for every message."""
    if not isinstance(template, str):
        raise ChatTemplateError(f"a chat template must be a string of Jinja, got {type(template).__name__}")
    env = environment()
    try:
        return env.from_string(template)
    except TemplateSyntaxError as exc:
        raise ChatTemplateError(f"the chat template is not valid Jinja: {exc.message} (template line {exc.lineno}); "
                                f"fix the template text (tokenizer.chat_template, chat_template.jinja or the "
                                f"chat_template argument)") from None


def has_generation_block(template: str) -> bool:
    return _GENERATION_TAG.search(template) is not None


def render(template: str, *, track_generation: bool = False,
           **variables: Any) -> tuple[str, list[tuple[int, int]] | None]:
    """Render ``template`` with ``variables`` (already plain data); with ``track_generation``, also return the
    character spans of its ``{% generation %}`` blocks. Any failure is a :class:`ChatTemplateError`."""
    compiled = compile_template(template)
    try:
        if not track_generation:
            return compiled.render(**variables), None
        output, spans = _Output(), []
        with compiled.environment.activate_tracker(output, spans):  # type: ignore[attr-defined]
            for piece in compiled.generate(**variables):
                output.append(piece)
        return "".join(output), spans
    except ChatTemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a template raises (MemoryError, RecursionError included)
        raise _as_chat_template_error(exc) from None


def _template_line(exc: BaseException) -> str:
    """' (template line N)' for the innermost template frame of the traceback, which jinja rewrites to point at the
    template source."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (template line {line})" if line is not None else ""


def _as_chat_template_error(exc: BaseException) -> ChatTemplateError:
    where = _template_line(exc)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, _TemplateRaised):
        return ChatTemplateError(f"the chat template rejected the conversation: {message}{where}; change the "
                                 f"messages to the form this model's template accepts")
    if isinstance(exc, SecurityError):
        return ChatTemplateError(f"the chat template tried something the sandbox forbids: {message}{where}; nothing "
                                 f"was rendered. Templates may only read the messages, tools, documents and variables "
                                 f"passed to them; do not use a template that does this")
    if isinstance(exc, UndefinedError):
        return ChatTemplateError(f"the chat template read a value that is not there: {message}{where}; the "
                                 f"messages (or variables) lack a field this template needs")
    if isinstance(exc, (OverflowError, MemoryError, RecursionError)):
        return ChatTemplateError(f"the chat template asked for more than the sandbox allows ({type(exc).__name__}: "
                                 f"{message}){where}; nothing was rendered")
    if isinstance(exc, TemplateError):
        return ChatTemplateError(f"rendering the chat template failed: {message}{where}")
    return ChatTemplateError(f"rendering the chat template failed: {type(exc).__name__}: {message}{where}")


def plain_template_data(value: Any) -> Any:
    """``value`` rebuilt out of plain str/int/float/bool/None, dicts, lists and tuples (transformers'
    ``_plain_template_data``): subclasses lose their methods, dataclasses and pydantic models become dicts, and
    anything else (images, arrays, tensors, functions) an inert placeholder naming its type, like ``"<ndarray>"``.
    The result shares nothing with ``value``, so a template can never change the caller's data."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {plain_template_data(key): plain_template_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_template_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_template_data(item) for item in value)
    numpy = sys.modules.get("numpy")  # a numpy scalar can only exist once numpy is imported
    if numpy is not None and isinstance(value, numpy.generic):
        return plain_template_data(value.item())  # np.bool_(False) must not become a truthy placeholder
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain_template_data(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return plain_template_data(value.model_dump())
    return f"<{type(value).__name__}>"
