"""Chat templates: where a tokenizer's template lives in a repo, which one to use, and rendering a conversation.

A chat template is a Jinja string that turns ``[{"role": "user", "content": "Hi"}, ...]`` into the exact text a chat
model was trained on. This module follows transformers 5.24 (``tokenization_utils_base.py``:
``PreTrainedTokenizerBase.apply_chat_template``, ``get_chat_template``, ``save_chat_templates`` and the template
lookup in ``from_pretrained``; ``utils/chat_template_utils.py``: ``render_jinja_template``), so the same files and
conversation give the same string and token ids in both libraries:

- **Files.** ``chat_template.jinja`` (the default template) and ``additional_chat_templates/<name>.jinja`` (named
  ones) win over the ``chat_template`` key of ``tokenizer_config.json`` (a string, or a list of
  ``{"name", "template"}`` = named templates). ``chat_template.json``, the processors' legacy file, is read only when
  none of those exists (transformers' tokenizer ignores it; its processor reads it). Saving writes the modern
  layout (:func:`chat_template_files`).
- **Choice.** Several named templates: ``tool_use`` when tools are given and it exists, else ``default``; the
  ``chat_template=`` argument is a name or a whole template (:func:`select_chat_template`).
- **Rendering** happens in jinja2's immutable sandbox (:mod:`zoo.chat.sandbox`): templates from downloaded repos
  cannot reach Python objects, files, imports or the caller's messages.

``import zoo.chat_template`` imports neither jinja2 nor torch; jinja2 is imported when a template is first compiled,
and torch/numpy only for ``return_tensors``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import ChatTemplateError, MissingDependencyError

logger = logging.getLogger(__name__)

CHAT_TEMPLATE_FILE = "chat_template.jinja"
LEGACY_CHAT_TEMPLATE_FILE = "chat_template.json"
ADDITIONAL_CHAT_TEMPLATES_DIR = "additional_chat_templates"
TOKENIZER_CONFIG_KEY = "chat_template"

# Appended to the message being continued, so the end of its text can be found in the rendered chat
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
# Names a message's reasoning is passed under; the first is the one templates read
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
_warned_no_generation_block = False


def _sandbox() -> Any:
    try:
        from zoo.chat import sandbox
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("jinja2", "markupsafe"):
            raise
        raise MissingDependencyError(f"chat templates need jinja2, which is not installed ({exc}); install it with "
                                     f"`pip install 'jinja2>=3.1.6'`") from None
    return sandbox


# --- where templates live -------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    # text mode, as transformers reads them: "\r\n" in a file arrives as "\n"
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _additional_template_names(repo: Any) -> list[str]:
    """Names of ``additional_chat_templates/*.jinja`` (directly in the folder, as transformers lists them)."""
    prefix = ADDITIONAL_CHAT_TEMPLATES_DIR + "/"
    folder = getattr(repo, "folder", None)
    if folder is not None:  # a local folder
        directory = Path(folder) / ADDITIONAL_CHAT_TEMPLATES_DIR
        if not directory.is_dir():
            return []
        return sorted(p.name[: -len(".jinja")] for p in directory.glob("*.jinja") if p.is_file())
    list_files = getattr(repo, "files", None)
    if callable(list_files):  # a Hub repo: its file list, with no download
        names = []
        for name in list_files():
            rest = name[len(prefix):] if name.startswith(prefix) else None
            if rest and rest.endswith(".jinja") and "/" not in rest:
                names.append(rest[: -len(".jinja")])
        return sorted(names)
    return []


def _templates_from_config(value: Any, where: str) -> str | dict[str, str]:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        try:
            named = {item["name"]: item["template"] for item in value}
        except (TypeError, KeyError):
            named = None
        if named is not None and all(isinstance(k, str) and isinstance(v, str) for k, v in named.items()):
            return named
    raise ChatTemplateError(f"'chat_template' in {where} must be a Jinja string or a list of {{\"name\": ..., "
                            f"\"template\": ...}} objects; got {type(value).__name__} {str(value)[:80]!r}")


def load_chat_template(repo: Any, tokenizer_config: Mapping[str, Any]) -> str | dict[str, str] | None:
    """The chat template(s) of a repo, found as transformers' tokenizer finds them.

    ``repo`` is a :class:`~zoo.hub.files.RepoFiles` (``exists``, ``require``; a local folder's ``folder`` or a Hub
    repo's ``files()`` lists the named templates); ``tokenizer_config`` is the parsed tokenizer_config.json. Returns
    a string for one template, ``{name: template}`` for several (the main one named ``"default"``), or None.
    """
    templates: dict[str, str] = {}
    if repo.exists(CHAT_TEMPLATE_FILE):
        templates["default"] = _read_text(repo.require(CHAT_TEMPLATE_FILE))
    for name in _additional_template_names(repo):
        templates[name] = _read_text(repo.require(f"{ADDITIONAL_CHAT_TEMPLATES_DIR}/{name}.jinja"))
    if templates:  # template files win over the config key
        return templates["default"] if list(templates) == ["default"] else templates
    value = tokenizer_config.get(TOKENIZER_CONFIG_KEY) if tokenizer_config else None
    if value is not None:
        return _templates_from_config(value, "tokenizer_config.json")
    if repo.exists(LEGACY_CHAT_TEMPLATE_FILE):
        path = repo.require(LEGACY_CHAT_TEMPLATE_FILE)
        try:
            legacy = json.loads(_read_text(path))
        except ValueError as exc:
            raise ChatTemplateError(f"{path} is not JSON ({exc}); re-download it, or replace it with a "
                                    f"{CHAT_TEMPLATE_FILE} file holding the template text") from None
        if not isinstance(legacy, dict) or legacy.get(TOKENIZER_CONFIG_KEY) is None:
            found = sorted(legacy) if isinstance(legacy, dict) else type(legacy).__name__
            raise ChatTemplateError(f"{path} has no 'chat_template' key (found: {found}); it should be "
                                    f"{{\"chat_template\": \"...\"}}")
        return _templates_from_config(legacy[TOKENIZER_CONFIG_KEY], LEGACY_CHAT_TEMPLATE_FILE)
    return None


def _check_template_name(name: Any) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise ChatTemplateError(f"a chat template name must be a plain file name (no '/', '\\', '..'); got {name!r}; "
                                f"rename the template")
    return name


def chat_template_files(template: str | Mapping[str, str] | None) -> dict[str, str]:
    """What ``save_pretrained`` writes for ``template``: ``{relative file name: text}``.

    One template is ``chat_template.jinja``; several are ``chat_template.jinja`` for ``"default"`` and
    ``additional_chat_templates/<name>.jinja`` for the others, as transformers 5.24 saves them by default. The
    ``chat_template`` key must then be left out of tokenizer_config.json (transformers removes it), so a stale copy
    can never shadow the files.
    """
    if template is None:
        return {}
    if isinstance(template, str):
        return {CHAT_TEMPLATE_FILE: template}
    if isinstance(template, Mapping):
        files = {}
        for name, text in template.items():
            if not isinstance(text, str):
                raise ChatTemplateError(f"the chat template {name!r} is a {type(text).__name__}, not a Jinja string")
            if name == "default":
                files[CHAT_TEMPLATE_FILE] = text
            else:
                files[f"{ADDITIONAL_CHAT_TEMPLATES_DIR}/{_check_template_name(name)}.jinja"] = text
        return files
    raise ChatTemplateError(f"a chat template is a string or a {{name: template}} dict; got {type(template).__name__}")


# --- which template --------------------------------------------------------------------------------------------------


def select_chat_template(template: str | Mapping[str, str] | None, chat_template: str | None = None,
                         tools: Sequence[Any] | None = None) -> str:
    """The template text to render (transformers' ``get_chat_template``).

    ``template`` is the tokenizer's (a string, ``{name: template}``, or None); ``chat_template`` overrides it, as a
    whole template or as the name of one of the tokenizer's. With several templates and no choice, ``"tool_use"`` is
    taken when ``tools`` are given and it exists, else ``"default"``.
    """
    if isinstance(template, Mapping):
        if chat_template is not None and chat_template in template:
            return template[chat_template]
        if chat_template is None:
            if tools is not None and "tool_use" in template:
                return template["tool_use"]
            if "default" in template:
                return template["default"]
            raise ChatTemplateError(f"this tokenizer has several chat templates and none is named 'default' "
                                    f"(it has: {sorted(template)}); pass chat_template=<one of those names>, or a "
                                    f"whole template")
        return chat_template
    if chat_template is not None:
        return chat_template
    if template is not None:
        return template
    raise ChatTemplateError("this tokenizer has no chat template (no chat_template.jinja, no 'chat_template' in "
                            "tokenizer_config.json) and none was passed; pass chat_template=\"{% for message in "
                            "messages %}...\" or set tokenizer.chat_template to the model's template")


# --- preparing the conversation --------------------------------------------------------------------------------------


def _message_objects_to_dicts(value: Any) -> Any:
    """Dataclasses and pydantic models (the OpenAI SDK's messages) as dicts, at any depth; media left alone."""
    if isinstance(value, Mapping):
        return {key: _message_objects_to_dicts(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_message_objects_to_dicts(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_message_objects_to_dicts(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _message_objects_to_dicts(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return _message_objects_to_dicts(value.model_dump())
    return value


def _normalize_messages(conversation: Any) -> list[dict[str, Any]]:
    """Messages as dicts, without the keys whose value is None: APIs return ``content=None`` or ``tool_calls=None``,
    which many templates render as "None" or choke on, while they handle a missing key."""
    messages = _message_objects_to_dicts(getattr(conversation, "messages", conversation))
    normalized = []
    for message in messages:
        if not isinstance(message, dict):
            raise ChatTemplateError(f"chat messages must be dicts like {{'role': 'user', 'content': 'Hi'}} "
                                    f"(or dataclasses / pydantic models); got {message!r}")
        normalized.append({key: value for key, value in message.items() if value is not None})
    return normalized


def _alias_reasoning_fields(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # older names for reasoning fill reasoning_content, and gpt-oss templates read "thinking"
    aliased = []
    for message in chat:
        if isinstance(message, dict):
            reasoning = next((message[k] for k in _REASONING_FIELDS if message.get(k) is not None), None)
            if reasoning is not None:
                message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        aliased.append(message)
    return aliased


def _tool_schemas(tools: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    from zoo.chat.tools import get_json_schema

    schemas = []
    for tool in tools:
        if isinstance(tool, dict):
            schemas.append(tool)
        elif inspect.isfunction(tool) or inspect.ismethod(tool):
            schemas.append(get_json_schema(tool))
        else:
            raise ChatTemplateError(f"each tool must be a JSON schema dict or a function with type hints and a "
                                    f"docstring; got {type(tool).__name__} {tool!r}")
    return schemas


def _mark_final_message(chat: list[dict[str, Any]], field: str, template: str) -> str:
    """Tag the text of the message being continued (in place, on the render's own copy); returns that text."""
    final = chat[-1].get(field)
    if final is None:
        raise ChatTemplateError(f"continue_final_message is set but the final message has no {field!r} to continue; "
                                f"end the conversation with the message to continue")
    fields = [field]
    if field in _REASONING_FIELDS:  # reasoning is copied under several names: tag each copy
        fields = [f for f in _REASONING_FIELDS if chat[-1].get(f) == final]
    if not any(f in template for f in fields):
        raise ChatTemplateError(f"continue_final_message is set to {field!r}, but this chat template never reads "
                                f"that field; continue 'content' (continue_final_message=True) instead")
    if isinstance(final, (list, tuple)):
        for block in reversed(final):  # the last text block of a multimodal message
            if "text" in block:
                final = block["text"]
                block["text"] = block["text"] + _CONTINUE_TAG
                break
        else:
            raise ChatTemplateError("continue_final_message is set but the final message has no text block to "
                                    "continue")
    else:
        for f in fields:
            chat[-1][f] = chat[-1][f] + _CONTINUE_TAG
    return final


def _cut_after_final_message(rendered: str, final: str) -> str:
    """The rendered chat up to the end of the continued message: whatever the template closes the turn with
    (end-of-turn tokens, newlines) is dropped, so the model continues the text."""
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in rendered or tag not in rendered:
        raise ChatTemplateError(f"continue_final_message is set but the final message does not appear in the "
                                f"rendered chat: this template changes or drops it. Final message: {final.strip()!r}; "
                                f"rendered chat: {rendered!r}")
    at = rendered.rindex(tag)
    if rendered[at: at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()  # the template trimmed the message's trailing space, and maybe more


# --- rendering -------------------------------------------------------------------------------------------------------


def render_chat_template(
    template: str,
    conversations: Sequence[Any],
    *,
    add_generation_prompt: bool = False,
    continue_final_message: bool | str = False,
    tools: Sequence[dict[str, Any] | Callable[..., Any]] | None = None,
    documents: Sequence[dict[str, Any]] | None = None,
    return_assistant_tokens_mask: bool = False,
    **template_kwargs: Any,
) -> tuple[list[str], list[list[tuple[int, int]]] | None]:
    """Render each conversation with ``template`` (transformers' ``render_jinja_template``).

    ``tools`` are JSON schemas or functions (described by :func:`zoo.chat.tools.get_json_schema`); ``documents``
    are dicts (``{"title", "text"}`` by convention); ``template_kwargs`` become template variables (the tokenizer
    passes its special tokens: ``bos_token``, ``eos_token``, ...). ``continue_final_message`` (True for
    ``"content"``, or a field name) leaves the final message open so a model continues it. Returns the rendered
    strings, and with ``return_assistant_tokens_mask`` the character spans of each conversation's
    ``{% generation %}`` blocks (else None).
    """
    global _warned_no_generation_block
    sandbox = _sandbox()
    if not isinstance(template, str):
        raise ChatTemplateError(f"a chat template must be a string of Jinja, got {type(template).__name__}; pick one "
                                f"with select_chat_template")
    if return_assistant_tokens_mask and not sandbox.has_generation_block(template) and not _warned_no_generation_block:
        _warned_no_generation_block = True
        logger.warning("return_assistant_tokens_mask=True but the chat template has no {%% generation %%} block, so "
                       "every assistant mask is all zeros")
    sandbox.compile_template(template)  # a syntax error is reported before anything else
    schemas = _tool_schemas(tools)
    if documents is not None and any(not isinstance(d, dict) for d in documents):
        raise ChatTemplateError("documents must be a list of dicts, such as {'title': ..., 'text': ...}")
    # everything the template sees is rebuilt as plain data: the template gets copies, never the caller's objects
    schemas = sandbox.plain_template_data(schemas)
    documents = sandbox.plain_template_data(documents)
    variables = sandbox.plain_template_data(template_kwargs)

    rendered: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    for conversation in conversations:
        chat = sandbox.plain_template_data(getattr(conversation, "messages", conversation))
        if not isinstance(chat, list) or any(not isinstance(m, dict) for m in chat):
            raise ChatTemplateError(f"a conversation must be a list of message dicts like {{'role': 'user', "
                                    f"'content': 'Hi'}}; got {str(chat)[:120]}")
        chat = _alias_reasoning_fields(chat)
        final = None
        if continue_final_message:
            if not chat:
                raise ChatTemplateError("continue_final_message is set but the conversation is empty")
            field = continue_final_message if isinstance(continue_final_message, str) else "content"
            final = _mark_final_message(chat, field, template)
        text, blocks = sandbox.render(template, track_generation=return_assistant_tokens_mask, messages=chat,
                                      tools=schemas, documents=documents, add_generation_prompt=add_generation_prompt,
                                      **variables)
        if final is not None:
            text = _cut_after_final_message(text, final)
        rendered.append(text)
        if blocks is not None:
            spans.append(blocks)
    return rendered, (spans if return_assistant_tokens_mask else None)


# --- the tokenizer method ---------------------------------------------------------------------------------------------


def _special_tokens(tokenizer: Any) -> dict[str, str]:
    """The named special tokens a template sees (transformers' ``special_tokens_map``: bos/eos/unk/sep/pad/cls/mask
    as strings; the extra special tokens are not template variables)."""
    tokens = getattr(tokenizer, "special_tokens", None)
    if tokens is None:
        tokens = getattr(tokenizer, "special_tokens_map", None) or {}
    return {name: str(getattr(value, "content", value)) for name, value in dict(tokens).items()
            if value is not None and not isinstance(value, (list, tuple, dict))}


def _as_rows(value: Any) -> list[Any]:
    return value.tolist() if hasattr(value, "tolist") else list(value)


def _assistant_masks(spans: list[list[tuple[int, int]]], offsets: list[Any]) -> list[list[int]]:
    """1 for every token overlapping a ``{% generation %}`` span (so a span cut by truncation keeps its remaining
    tokens), 0 elsewhere; one pass, since spans and token offsets are both in order."""
    masks = []
    for row_spans, row_offsets in zip(spans, offsets):
        mask = [0] * len(row_offsets)
        at = 0
        for i, (start, end) in enumerate(row_offsets):
            while at < len(row_spans) and start >= row_spans[at][1]:
                at += 1
            if at == len(row_spans):
                break
            if end > row_spans[at][0]:
                mask[i] = 1
        masks.append(mask)
    return masks


def _to_tensor(rows: list[list[int]], kind: str) -> Any:
    if kind == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long)
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64)
    raise ChatTemplateError(f"return_tensors must be 'pt', 'np' or None, got {kind!r}")


def apply_chat_template(
    tokenizer: Any,
    conversation: Any,
    tools: Sequence[dict[str, Any] | Callable[..., Any]] | None = None,
    documents: Sequence[dict[str, Any]] | None = None,
    chat_template: str | None = None,
    add_generation_prompt: bool = False,
    continue_final_message: bool | str = False,
    tokenize: bool = True,
    padding: bool | str = False,
    truncation: bool = False,
    max_length: int | None = None,
    return_tensors: str | None = None,
    return_dict: bool = True,
    return_assistant_tokens_mask: bool = False,
    tokenizer_kwargs: dict[str, Any] | None = None,
    sanitize_control_tokens: bool = False,
    **kwargs: Any,
) -> Any:
    """Render a conversation (or a batch of them) with the tokenizer's chat template, and tokenize it.

    transformers 5.24's ``PreTrainedTokenizerBase.apply_chat_template`` over any ``tokenizer`` with
    ``chat_template``, ``special_tokens`` (name -> token) and a ``__call__`` like a fast tokenizer's. Returns the
    string(s) with ``tokenize=False``; else, as in transformers 5, a BatchEncoding (``return_dict=True``, the
    default: input_ids, attention_mask, and ``assistant_masks`` with ``return_assistant_tokens_mask``), or only the
    ids with ``return_dict=False``. The rendered text is tokenized with ``add_special_tokens=False``: the template
    writes the special tokens itself. ``kwargs`` become template variables (e.g. ``enable_thinking=False``,
    ``date_string=...``) and override the special tokens of the same name.
    """
    if not tokenize:
        return_dict = False  # only the tokenizer returns dicts
    if return_assistant_tokens_mask and not (return_dict and tokenize):
        raise ChatTemplateError("return_assistant_tokens_mask=True needs tokenize=True and return_dict=True")
    if sanitize_control_tokens:
        raise ChatTemplateError("sanitize_control_tokens=True is not supported by zoo yet: it encodes control tokens "
                                "typed by users as plain text; escape or reject such input before calling "
                                "apply_chat_template, or leave the option off")
    tokenizer_kwargs = dict(tokenizer_kwargs or {})
    template = select_chat_template(getattr(tokenizer, "chat_template", None), chat_template, tools)
    if isinstance(conversation, (list, tuple)) and len(conversation) == 0:
        raise ChatTemplateError("cannot apply a chat template to an empty conversation; pass at least one message")
    if isinstance(conversation, (list, tuple)) and (
            isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages")):
        conversations, batched = list(conversation), True
    else:
        conversations, batched = [conversation], False
    conversations = [_normalize_messages(c) for c in conversations]
    if continue_final_message:
        if add_generation_prompt:
            raise ChatTemplateError("continue_final_message and add_generation_prompt cannot be used together: "
                                    "continue_final_message lets the model continue the final message, "
                                    "add_generation_prompt opens a new assistant message; pick one")
        if return_assistant_tokens_mask:
            raise ChatTemplateError("continue_final_message cannot be used with return_assistant_tokens_mask")

    variables = {**_special_tokens(tokenizer), **kwargs}  # kwargs win over special tokens of the same name
    rendered, spans = render_chat_template(
        template, conversations, add_generation_prompt=add_generation_prompt,
        continue_final_message=continue_final_message, tools=tools, documents=documents,
        return_assistant_tokens_mask=return_assistant_tokens_mask, **variables)
    text: str | list[str] = rendered if batched else rendered[0]
    if not tokenize:
        return text

    asked_offsets = "return_offsets_mapping" in tokenizer_kwargs
    if return_assistant_tokens_mask:
        tokenizer_kwargs.setdefault("return_offsets_mapping", True)
    out = tokenizer(text, padding=padding, truncation=truncation, max_length=max_length, add_special_tokens=False,
                    return_tensors=return_tensors, **tokenizer_kwargs)
    if not return_dict:
        return out["input_ids"]
    if return_assistant_tokens_mask:
        offsets = out["offset_mapping"]
        if not asked_offsets:
            del out["offset_mapping"]
        offsets = _as_rows(offsets)
        if not (batched or return_tensors):  # one conversation without tensors: one unwrapped row
            offsets = [offsets]
        masks: Any = _assistant_masks(spans or [], offsets)
        if return_tensors:
            masks = _to_tensor(masks, return_tensors)
        elif not batched:
            masks = masks[0]
        out["assistant_masks"] = masks
    return out
