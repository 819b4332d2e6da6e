"""Streamers: text as it is generated, for a terminal or another thread (transformers' generation/streamers.py).

``generate`` calls ``streamer.put(prompt_ids)`` once, then ``streamer.put(new_ids)`` after every step and
``streamer.end()`` when it stops (also on an error), so transformers' own streamers listen to zoo's ``generate``
and zoo's to transformers'. :func:`stream_generate` runs ``generate`` in a thread and yields the text.
"""

from __future__ import annotations

import queue
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["BaseStreamer", "TextIteratorStreamer", "TextStreamer", "stream_generate"]


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class BaseStreamer(ABC):
    """What ``generate`` calls: ``put(ids)`` with the prompt, then with each step's new ids; ``end()`` at the end."""

    @abstractmethod
    def put(self, value: torch.Tensor) -> None:
        """Receive token ids: first the prompt, then each step's new tokens."""

    @abstractmethod
    def end(self) -> None:
        """Generation finished: flush what is held back."""


class TextStreamer(BaseStreamer):
    """Decodes tokens as they arrive and hands finished text to ``on_text(text, stream_end)``.

    Text is released up to the last space (a word may still change with the next token), at a newline, or after a
    CJK character, as transformers' TextStreamer does; text ending in an incomplete UTF-8 sequence (an emoji split
    over byte-level tokens decodes to U+FFFD) is held back until the character is complete. The concatenation of all
    chunks equals ``tokenizer.decode`` of the generated ids. Without ``on_text`` the text goes to stdout. Batch 1 only.
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, on_text: Callable[[str, bool], None] | None = None,
                 **decode_kwargs: Any) -> None:
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self._on_text = on_text
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("TextStreamer streams one sequence; generate with a batch of 1")
        if value.dim() > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(int(t) for t in value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            printable = text[self.print_len:]
            self.token_cache = []
            self.print_len = 0
        elif text.endswith("\ufffd"):
            return  # an incomplete character: wait for its remaining bytes
        elif text and _is_cjk(ord(text[-1])):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        if printable:
            self.on_finalized_text(printable)

    def end(self) -> None:
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
        self.token_cache = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if self._on_text is not None:
            self._on_text(text, stream_end)
        else:
            sys.stdout.write(text + ("\n" if stream_end else ""))
            sys.stdout.flush()


class TextIteratorStreamer(TextStreamer):
    """A streamer to iterate over in one thread while ``generate`` runs in another: yields text chunks as they are
    decoded, and stops when generation ends. ``timeout`` (seconds) bounds each wait for the next chunk."""

    _END = object()

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None,
                 **decode_kwargs: Any) -> None:
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: queue.Queue[Any] = queue.Queue()
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.text_queue.put(text)
        if stream_end:
            self.text_queue.put(self._END)

    def __iter__(self) -> TextIteratorStreamer:
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self._END:
            raise StopIteration
        return value


def stream_generate(model: Any, tokenizer: Any, input_ids: torch.Tensor, skip_prompt: bool = True,
                    timeout: float | None = None, **generate_kwargs: Any) -> Iterator[str]:
    """Yield the text of ``model.generate(input_ids, **generate_kwargs)`` as it is produced.

    Generation runs in a background thread feeding a :class:`TextIteratorStreamer`; an error raised there is
    re-raised here once the stream ends. The prompt is not yielded unless ``skip_prompt=False``.
    """
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=skip_prompt, timeout=timeout)
    if generate_kwargs.get("stop_strings") is not None:  # they are matched with the same tokenizer
        generate_kwargs.setdefault("tokenizer", tokenizer)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            model.generate(input_ids, streamer=streamer, **generate_kwargs)
        except BaseException as exc:  # handed to the consumer thread below
            failure.append(exc)
            streamer.text_queue.put(TextIteratorStreamer._END)

    thread = threading.Thread(target=run, name="zoo-generate", daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        thread.join()
    if failure:
        raise failure[0]
