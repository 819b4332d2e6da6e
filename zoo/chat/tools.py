"""JSON schemas for tool use, from a Python function's type hints and Google-style docstring.

``apply_chat_template(tools=[get_weather])`` accepts plain functions as well as schemas: a function becomes
``{"type": "function", "function": {"name", "description", "parameters", ["return"]}}`` exactly as transformers'
``get_json_schema`` (``utils/chat_template_utils.py``) writes it, so a template prints the same tool list in both
libraries. Hints map to JSON types (int -> integer, float -> number, list[...] -> array with items, tuple[...] ->
prefixItems, dict[str, X] -> additionalProperties, X | None -> nullable, Literal and Enum -> enum), and a
``(choices: [...])`` at the end of an argument's description becomes an ``enum``.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from zoo.errors import ChatTemplateError

# The description before the first section, the Args: block, each "name (type): text" in it, the Returns: block
_DESCRIPTION_RE = re.compile(r"^(.*?)[\n\s]*(Args:|Returns:|Raises:|\Z)", re.DOTALL)
_ARGS_RE = re.compile(r"\n\s*Args:\n(.*?)[\n\s]*(Returns:|Raises:|\Z)", re.DOTALL)
_ARG_SPLIT_RE = re.compile(
    r"""
(?:^|\n)  # the start of the block, or a newline
([ \t]*)(\w+)(?:[ \t]*\([^()\n]*\))?:\s*  # the indentation and the argument name, skipping a "(type)"
(.*?)\s*  # the description, which may span lines
(?=\n(?!\1[ \t])[ \t]*\w+(?:[ \t]*\([^()\n]*\))?:|\Z)  # up to the next "name:" not indented deeper, or the end
""",
    re.DOTALL | re.VERBOSE,
)
_RETURNS_RE = re.compile(r"\n\s*Returns:\n\s*(.*?)[\n\s]*(Raises:|\Z)", re.DOTALL)
_CHOICES_RE = re.compile(r"\(choices:\s*(.*?)\)\s*$", flags=re.IGNORECASE)

#: Python types a JSON "enum" may hold, with their JSON type names.
JSON_SCALAR_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


class _HintError(ChatTemplateError):
    """A type hint that has no JSON schema (raised inside the conversion, reported with the function's name)."""


def _basic_type(hint: Any) -> dict[str, Any] | None:
    mapping: dict[Any, dict[str, Any]] = {
        int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}, bool: {"type": "boolean"},
        type(None): {"type": "null"}, list: {"type": "array"}, tuple: {"type": "array"}, dict: {"type": "object"},
        Any: {},
    }
    # an image or tensor hint can only exist once PIL or torch is imported, so there is no need to import them here
    pil_image = getattr(sys.modules.get("PIL.Image"), "Image", None)
    if pil_image is not None:
        mapping[pil_image] = {"type": "image"}
    torch = sys.modules.get("torch")
    if torch is not None:
        mapping[torch.Tensor] = {"type": "audio"}
    try:
        return mapping.get(hint)
    except TypeError:  # an unhashable hint is no basic type
        return None


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    # "type" lists each JSON type among the values once, in the order they first appear
    value_types = list(dict.fromkeys(JSON_SCALAR_TYPES[type(value)] for value in values))
    return {"type": value_types[0] if len(value_types) == 1 else value_types, "enum": values}


def _parse_type_hint(hint: Any) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if origin is None and isinstance(hint, type) and issubclass(hint, Enum):
        values = [member.value for member in hint]
        if not values:
            raise _HintError(f"the Enum {hint.__name__} has no members, so no value could ever match it")
        if any(type(value) not in JSON_SCALAR_TYPES for value in values):
            raise _HintError(f"the Enum {hint.__name__} has member values that are not JSON scalars ({values}); "
                             f"use int, float, str, bool or None values")
        return _enum_schema(values)
    if origin is None:
        schema = _basic_type(hint)
        if schema is None:
            raise _HintError(f"the type hint {hint!r} has no JSON schema (a custom class or object?); use int, float, "
                             f"str, bool, Enum, Literal, or list/tuple/dict/Union of those, or pass the tool's JSON "
                             f"schema written by hand instead of the function")
        return schema
    if origin is Union or origin is types.UnionType:
        subtypes = [_parse_type_hint(t) for t in args if t is not type(None)]
        if len(subtypes) == 1:
            schema = subtypes[0]
        elif all(s.keys() == {"type"} and isinstance(s["type"], str) for s in subtypes):
            names = sorted({s["type"] for s in subtypes})  # list | tuple both map to "array": once
            schema = {"type": names[0] if len(names) == 1 else names}
        else:  # subtypes with items, enum, prefixItems... keep their detail
            schema = {"anyOf": subtypes}
        if type(None) in args:
            schema["nullable"] = True
        return schema
    if origin is Literal and args:
        if any(type(arg) not in JSON_SCALAR_TYPES for arg in args):
            raise _HintError("only JSON scalars (int, float, str, bool, None) can be listed in typing.Literal")
        return _enum_schema(list(args))
    if origin is list:
        return {"type": "array", "items": _parse_type_hint(args[0])} if args else {"type": "array"}
    if origin is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 1:
            raise _HintError(f"the type hint {str(hint).replace('typing.', '')} is a tuple of one element; use list[] "
                             f"if it can hold more, or drop the tuple[] wrapper if it is one value")
        if ... in args:
            raise _HintError("'...' in a tuple type hint has no JSON schema; use list[] for variable-length inputs")
        return {"type": "array", "prefixItems": [_parse_type_hint(t) for t in args]}
    if origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:  # JSON keys are strings; the values can be typed
            schema["additionalProperties"] = _parse_type_hint(args[1])
        return schema
    raise _HintError(f"the type hint {hint!r} has no JSON schema (a custom class or object?)")


def _parameters_schema(func: Callable[..., Any], name: str) -> dict[str, Any]:
    hints = get_type_hints(func)
    signature = inspect.signature(func)
    first = next(iter(signature.parameters), None)
    # a method's receiver: a first "self" or "cls" without a hint
    receiver = (first if first in {"self", "cls"} and signature.parameters[first].annotation == inspect.Parameter.empty
                else None)
    required = []
    for param_name, param in signature.parameters.items():
        if param_name == receiver:
            continue
        if param.annotation == inspect.Parameter.empty:
            raise ChatTemplateError(f"cannot describe the tool {name}: its argument {param_name!r} has no type hint; "
                                    f"add one (e.g. `{param_name}: str`)")
        if param.default == inspect.Parameter.empty:
            required.append(param_name)
    properties: dict[str, Any] = {}
    for param_name, hint in hints.items():
        if param_name == receiver:
            continue
        if param_name == "return":
            # the model never writes the return value: a return hint without a schema is left out, not fatal
            try:
                properties["return"] = _parse_type_hint(hint)
            except _HintError:
                pass
        else:
            try:
                properties[param_name] = _parse_type_hint(hint)
            except _HintError as exc:
                raise ChatTemplateError(f"cannot describe the tool {name}, argument {param_name!r}: {exc}") from None
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def parse_google_docstring(docstring: str) -> tuple[str | None, dict[str, str], str | None]:
    """(description, {argument: description}, returns description) of a Google-style docstring."""
    description = _DESCRIPTION_RE.search(docstring)
    args_block = _ARGS_RE.search(docstring)
    returns = _RETURNS_RE.search(docstring)
    arguments: dict[str, str] = {}
    if args_block is not None:
        lines = "\n".join(line for line in args_block.group(1).split("\n") if line.strip())
        arguments = {m[1]: re.sub(r"\s*\n+\s*", " ", m[2].strip()) for m in _ARG_SPLIT_RE.findall(lines)}
    return (description.group(1).strip() if description else None, arguments,
            returns.group(1).strip() if returns else None)


def get_json_schema(func: Callable[..., Any]) -> dict[str, Any]:
    """The tool schema of ``func``, as transformers' ``get_json_schema`` builds it.

    ``func`` needs a docstring with a description of every argument (Google style, an ``Args:`` block) and a type
    hint on every argument; ``self``/``cls`` of a method are skipped. A ``Returns:`` block is optional.
    """
    name = getattr(func, "__name__", "operation")
    doc = inspect.getdoc(func)
    if not doc:
        raise ChatTemplateError(f"cannot describe the tool {name}: it has no docstring; write one with a description "
                                f"and an Args: block describing each argument")
    description, arguments, returns = parse_google_docstring(doc.strip())
    parameters = _parameters_schema(func, name)
    return_schema = parameters["properties"].pop("return", None)
    if return_schema is not None and returns is not None:  # most templates ignore it, so it may go undocumented
        return_schema["description"] = returns
    for arg, schema in parameters["properties"].items():
        if arg not in arguments:
            raise ChatTemplateError(f"cannot describe the tool {name}: its docstring has no description for the "
                                    f"argument {arg!r}; add `{arg}: ...` to its Args: block")
        text = arguments[arg]
        choices = _CHOICES_RE.search(text)
        if choices:
            schema["enum"] = [c.strip() if isinstance(c, str) else c for c in json.loads(choices.group(1))]
            text = choices.string[: choices.start()].strip()
        schema["description"] = text
    output: dict[str, Any] = {"name": name, "description": description, "parameters": parameters}
    if return_schema is not None:
        output["return"] = return_schema
    return {"type": "function", "function": output}
