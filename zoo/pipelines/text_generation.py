"""text-generation: continue prompts with a causal LM (``model.generate``), whole or streamed.

Outputs follow transformers' TextGenerationPipeline (pipelines/text_generation.py): per prompt a list of
``{"generated_text": prompt + continuation}`` (``return_full_text=False``: the continuation only;
``return_tensors=True``: ``{"generated_token_ids": [...]}``), the continuation decoded without special tokens.
Generation options are those of :meth:`zoo.generation.GenerationMixin.generate` (every GenerationConfig field
but the output flags, and ``seed``) and default as it does, from the model's generation config: greedy,
``max_new_tokens=20`` unless ``max_length`` is given; ``do_sample=True`` with ``temperature``, ``top_k``, ``top_p``
and ``seed`` samples; ``num_beams`` searches beams; ``num_return_sequences=n`` gives n results per prompt;
``stop_strings`` use the pipeline's tokenizer.

Prompts of a list are left-padded into batches of similar length (``batch_size``, default 1 as in transformers).
A prompt that would not leave room for ``max_new_tokens`` in the model's positions keeps its last tokens, with a
warning. ``stream=True`` (one prompt) returns an iterator of text chunks as they are generated.

Chats, as in transformers 5: a list of ``{"role", "content"}`` messages is one conversation and a list of such lists
a batch of them (told apart by the first item, as transformers' Pipeline.__call__ does; a generator may yield
chats too). A chat is rendered with the tokenizer's chat template and an assistant turn opened
(``add_generation_prompt``), or, when its last message is the assistant's or ``continue_final_message=True``, that
message is left open for the model to continue (``prefix`` applies to text prompts only). The rendered text is
tokenized without added special tokens: the template writes them. Per chat the result is
``[{"generated_text": [*messages, {"role": "assistant", "content": reply}]}]`` (a continued message gets the
reply appended to its content), ``return_full_text=False`` gives the reply string, ``stream=True`` the reply in
chunks. ``tools`` and ``documents`` go to the template.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator
from typing import Any

from zoo.errors import PipelineError
from zoo.generation.config import EXTRA_OUTPUT_FLAGS, FIELDS
from zoo.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

#: Options passed through to generate(), with the checks each needs here (generate() checks the values). The output
#: flags are left out: the pipeline returns text, not scores.
GENERATE_OPTIONS = tuple(k for k in FIELDS if k not in EXTRA_OUTPUT_FLAGS and k != "return_dict_in_generate") + ("seed",)
OUTPUT_OPTIONS = ("return_full_text", "return_tensors", "return_text", "clean_up_tokenization_spaces",
                  "skip_special_tokens", "stream", "prefix")
#: Options of chat inputs (passed to the chat template; ignored for text prompts, as in transformers).
CHAT_OPTIONS = ("continue_final_message", "tools", "documents")
DEFAULT_MAX_NEW_TOKENS = 20


def is_message(value: Any) -> bool:
    """A chat message: a dict with "role" and "content" keys (transformers' ``is_valid_message``)."""
    return isinstance(value, dict) and "role" in value and "content" in value


def is_chat(value: Any) -> bool:
    """A conversation: a list or tuple whose first item is a message (the rest are checked by :class:`Chat`)."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and is_message(value[0])


class Chat:
    """One conversation given to the pipeline: its messages, checked. Wrapping tells one chat (a list of messages)
    apart from a batch of inputs (also a list) on the way through the pipeline, as transformers' ``Chat`` does."""

    def __init__(self, messages: Any) -> None:
        messages = list(getattr(messages, "messages", messages))
        if not messages:
            raise PipelineError("a chat needs at least one message, like [{'role': 'user', 'content': 'Hi'}]")
        for i, message in enumerate(messages):
            if not is_message(message):
                found = f"a dict with keys {sorted(message)}" if isinstance(message, dict) else type(message).__name__
                raise PipelineError(f"text-generation: the chat's message at index {i} is {found}; each message is "
                                    f"a dict with 'role' and 'content' keys, like {{'role': 'user', 'content': 'Hi'}}")
        self.messages: list[dict[str, Any]] = messages

    def __repr__(self) -> str:
        return f"Chat({self.messages!r})"


class _Chats:
    """The items of a stream of inputs, each chat wrapped as a :class:`Chat`; keeps the stream's length hint."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items

    def __iter__(self) -> _Chats:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        return Chat(item) if is_chat(item) else item

    def __length_hint__(self) -> int:
        return operator.length_hint(self._items, 0)


class _SkippingSpecialTokens:
    """A tokenizer whose ``decode`` skips special tokens unless told otherwise: streamed text then equals the text
    the pipeline returns (an end-of-turn token such as ``<|im_end|>`` is not printed)."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens

    def decode(self, ids: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("skip_special_tokens", self._skip)
        return self._tokenizer.decode(ids, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def as_chats(inputs: Any) -> Any:
    """``inputs`` with chats wrapped: one chat -> a :class:`Chat`, a list of chats -> a list of them, a stream ->
    a stream whose chats are wrapped; anything else unchanged."""
    if isinstance(inputs, Chat) or isinstance(inputs, (str, dict)) or inputs is None:
        return inputs
    if not isinstance(inputs, (list, tuple)) and hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__"):
        inputs = [inputs[i] for i in range(len(inputs))]  # a dataset, read as the base class reads it
    if isinstance(inputs, (list, tuple)):
        if is_chat(inputs):
            return Chat(inputs)
        if inputs and all(is_chat(item) for item in inputs):
            return [Chat(item) for item in inputs]
        return inputs
    if isinstance(inputs, Iterator):
        return _Chats(inputs)
    return inputs


class TextGenerationPipeline(Pipeline):
    task = "text-generation"
    model_task = "causal-lm"
    default_batch_size = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.model, "generate"):
            raise PipelineError(f"{self.task}: {type(self.model).__name__} cannot generate; use a causal LM "
                                f"(a model with a 'causal-lm' head)")

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        known = GENERATE_OPTIONS + OUTPUT_OPTIONS + CHAT_OPTIONS
        out = {k: options.pop(k) for k in known if k in options}
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes {', '.join(known)})")
        new = out.get("max_new_tokens")
        if new is not None and (not isinstance(new, int) or isinstance(new, bool) or new < 0):
            raise PipelineError(f"max_new_tokens must be an int >= 0, got {new!r}")
        if out.get("return_full_text") is not None and out.get("return_tensors"):
            raise PipelineError("return_full_text and return_tensors exclude each other: tensors hold every token")
        return out

    # --- running -----------------------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        stream = kwargs.pop("stream", self.defaults.get("stream", False))
        inputs = as_chats(inputs)
        if stream:
            if not isinstance(inputs, (str, Chat)):
                raise PipelineError(f"{self.task}: stream=True streams one prompt or one chat; pass a single string "
                                    f"or one list of messages")
            return self.stream(inputs, **kwargs)
        return super().__call__(inputs, **kwargs)

    def is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (str, dict, Chat))

    def stream(self, prompt: str | Chat | list[dict[str, Any]], **options: Any) -> Iterator[str]:
        """Yield the continuation of ``prompt`` (or a chat's reply) as text chunks while it is generated; special
        tokens are left out unless ``skip_special_tokens=False``, as in the returned text."""
        from zoo.generation import stream_generate

        opts = {**self.defaults, **self.check_options(options)}
        opts.pop("stream", None)
        feature = self.preprocess(as_chats(prompt), opts)[0]
        input_ids = self._torch.tensor([feature.inputs["input_ids"]], device=self.device)
        kwargs = self.generate_kwargs(opts)
        kwargs.pop("tokenizer", None)  # stream_generate hands its own to generate
        tokenizer = _SkippingSpecialTokens(self.tokenizer, opts.get("skip_special_tokens", True))
        return stream_generate(self.model, tokenizer, input_ids, **kwargs)

    def generate_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: options[k] for k in GENERATE_OPTIONS if k in options}
        if "max_length" not in kwargs:
            kwargs.setdefault("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        if "stop_strings" in kwargs:
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    # --- features ----------------------------------------------------------------------------------------------------

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        if isinstance(item, Chat):
            prompt: Any = item
            ids = self.chat_ids(item, options)
        else:
            if isinstance(item, (list, tuple, dict)):
                what = (f"a dict is no prompt (keys: {sorted(item)})" if isinstance(item, dict)
                        else f"an input is a {type(item).__name__} that is no chat")
                raise PipelineError(f"{self.task}: {what}; a prompt is a string, a chat a list of messages with "
                                    f"'role' and 'content', like [{{'role': 'user', 'content': 'Hi'}}]")
            prompt = self.check_text(item, "prompt")
            ids = list(self.tokenizer(options.get("prefix", "") + prompt, add_special_tokens=False)["input_ids"])
        if not ids:
            raise PipelineError(f"{self.task}: the prompt {prompt!r} has no tokens; pass some text")
        new = options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS if "max_length" not in options else 1)
        room = self.max_input_length - new
        if room < 1:
            raise PipelineError(f"{self.task}: max_new_tokens={new} leaves no room for the prompt in the model's "
                                f"{self.max_input_length} positions; ask for fewer tokens")
        if len(ids) > room:
            # keep the end of the prompt: it is what the continuation follows ("hole" in transformers' terms)
            logger.warning("%s: the prompt has %d tokens and max_new_tokens=%d, more than the model's %d positions; "
                           "only its last %d tokens are used", self.task, len(ids), new, self.max_input_length, room)
            ids = ids[-room:]
        return [Feature({"input_ids": ids, "attention_mask": [1] * len(ids)}, {"prompt": prompt})]

    def chat_ids(self, chat: Chat, options: dict[str, Any]) -> list[int]:
        """Token ids of a chat rendered with the tokenizer's chat template, ready for the assistant's reply."""
        from zoo.errors import ChatTemplateError

        continue_final = continue_final_message(chat, options)
        try:
            ids = self.tokenizer.apply_chat_template(
                chat.messages, add_generation_prompt=not continue_final, continue_final_message=continue_final,
                tools=options.get("tools"), documents=options.get("documents"), tokenize=True, return_dict=False)
        except ChatTemplateError as exc:
            raise PipelineError(f"{self.task}: {exc}") from None
        return list(ids)

    def plan_batches(self, lengths: list[int], size: int) -> list[tuple[int, int]]:
        # decoding steps, not prompt padding, dominate the cost: full batches of similar-length prompts
        return [(i, min(i + size, len(lengths))) for i in range(0, len(lengths), size)]

    def run_batch(self, features: list[Feature], opts: dict[str, Any]) -> list[dict[str, Any]]:
        batch = self.collate(features, padding_side="left")
        try:
            sequences = self.model.generate(batch["input_ids"], batch["attention_mask"], **self.generate_kwargs(opts))
        except ValueError as exc:  # generate() checks the sampling options
            raise PipelineError(f"{self.task}: {exc}") from None
        prompt_len = batch["input_ids"].shape[1]
        n = sequences.shape[0] // len(features)  # num_return_sequences rows per prompt, in prompt order
        return [{"new_ids": sequences[i * n : (i + 1) * n, prompt_len:].cpu()} for i in range(len(features))]

    # --- results -----------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        feature = features[0]
        results = []
        for new_ids in outputs[0]["new_ids"].tolist():  # one per returned sequence
            if options.get("return_tensors"):
                results.append({"generated_token_ids": feature.inputs["input_ids"] + new_ids})
                continue
            text = self.tokenizer.decode(new_ids, skip_special_tokens=options.get("skip_special_tokens", True),
                                         clean_up_tokenization_spaces=options.get("clean_up_tokenization_spaces"))
            prompt = feature.meta["prompt"]
            if not options.get("return_full_text", True):
                results.append({"generated_text": text})
            elif isinstance(prompt, Chat):
                results.append({"generated_text": with_reply(prompt, text, continue_final_message(prompt, options))})
            else:
                results.append({"generated_text": prompt + text})
        return results


def continue_final_message(chat: Chat, options: dict[str, Any]) -> bool:
    """Whether the model continues the chat's last message: as asked, else when that message is the assistant's
    (a prefilled reply; few models take two assistant turns in a row)."""
    asked = options.get("continue_final_message")
    return chat.messages[-1].get("role") == "assistant" if asked is None else bool(asked)


def with_reply(chat: Chat, reply: str, continued: bool) -> list[dict[str, Any]]:
    """The chat with the model's reply: a new assistant message, or appended to the continued last message."""
    if continued:
        last = chat.messages[-1]
        return [*chat.messages[:-1], {"role": last["role"], "content": last["content"] + reply}]
    return [*chat.messages, {"role": "assistant", "content": reply}]
