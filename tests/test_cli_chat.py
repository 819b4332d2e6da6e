"""``zoo run text-generation`` with chats: JSON chat lines on stdin, in a file or as arguments, ``--chat`` and
``--stream``, and the errors for lines that are no chats; the replies are the pipeline's (whose parity with
transformers tests/pipelines/test_text_generation_chat.py checks)."""

from __future__ import annotations

import io
import json
import re

import pytest

import zoo
from tests.pipelines.test_text_generation_chat import CHAT, OTHER, gpt2_chat
from zoo.cli import main

NEW = ["-o", "max_new_tokens=5"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return gpt2_chat(tmp_path_factory.mktemp("gpt2-chat"))


@pytest.fixture(scope="module")
def gen(model):
    return zoo.pipeline("text-generation", model=str(model))


def run(model, argv, capsys, monkeypatch, stdin=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(["run", "text-generation", "--model", str(model), *NEW, *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_chat_lines_on_stdin_are_chats_and_other_lines_prompts(model, gen, capsys, monkeypatch):
    stdin = f"{json.dumps(CHAT)}\n\nOnce upon a time\n[1, 2, 3]\n{json.dumps(OTHER)}\n"
    status, out, err = run(model, [], capsys, monkeypatch, stdin)
    assert status == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [gen(CHAT, max_new_tokens=5), None, gen("Once upon a time", max_new_tokens=5),
                    gen("[1, 2, 3]", max_new_tokens=5), gen(OTHER, max_new_tokens=5)]
    assert rows[0][0]["generated_text"][-1]["role"] == "assistant"


def test_chats_from_a_file_and_as_arguments(model, gen, capsys, monkeypatch, tmp_path):
    (tmp_path / "chats.jsonl").write_text(f"{json.dumps(CHAT)}\n{json.dumps(OTHER)}\n", encoding="utf-8")
    expected = [gen(c, max_new_tokens=5, return_full_text=False) for c in (CHAT, OTHER)]
    status, out, _ = run(model, ["--file", str(tmp_path / "chats.jsonl"), "--batch-size", "2", "-o",
                                 "return_full_text=false"], capsys, monkeypatch)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == expected
    status, out, _ = run(model, [json.dumps(CHAT), json.dumps(OTHER), "-o", "return_full_text=false"], capsys, monkeypatch)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == expected


def test_with_chat_plain_text_is_a_user_message_and_an_object_one_message(model, gen, capsys, monkeypatch):
    question = "What is the capital of France?"
    stdin = f"{question}\n{json.dumps({'role': 'user', 'content': 'Hi'})}\n{json.dumps(CHAT)}\n"
    status, out, _ = run(model, ["--chat"], capsys, monkeypatch, stdin)
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        gen([{"role": "user", "content": question}], max_new_tokens=5),
        gen([{"role": "user", "content": "Hi"}], max_new_tokens=5), gen(CHAT, max_new_tokens=5)]


@pytest.mark.parametrize("flag", [["--stream"], ["-o", "stream=true"]], ids=["--stream", "-o stream=true"])
def test_streamed_replies_are_plain_text_one_line_per_chat(model, gen, capsys, monkeypatch, flag):
    stdin = f"{json.dumps(CHAT)}\n\n{json.dumps(OTHER)}\n"
    status, out, _ = run(model, flag, capsys, monkeypatch, stdin)
    replies = [gen(c, max_new_tokens=5, return_full_text=False)[0]["generated_text"] for c in (CHAT, OTHER)]
    assert status == 0 and out == f"{replies[0]}\n\n{replies[1]}\n"


@pytest.mark.parametrize("stdin, where, what", [
    ('[{"role": "user", "content": "Hi"}]\n\n[{"role": "user", "content": "Hi"\n', "stdin line 3",
     "is not valid JSON \\(Expecting ',' delimiter at column 34\\)"),
    ('{"role": "user", "content": "Hi"}\n[{"role": "user"}]\n', "stdin line 2", "message 1 has no 'content'"),
    ('[{"role": "user", "content": "Hi"}, "hello"]\n', "stdin line 1", "message 2 is a string, not an object"),
    ('[]\n', "stdin line 1", "is an empty array where a chat belongs"),
    ('{"content": "Hi"}\n', "stdin line 1", "message 1 has no 'role'"),
])
def test_a_line_that_is_no_chat_is_an_error_naming_it_with_status_2(model, capsys, monkeypatch, stdin, where, what):
    status, _, err = run(model, ["--chat"], capsys, monkeypatch, stdin)
    assert status == 2
    assert err.startswith(f"zoo: error: {where}") and len(err.splitlines()) == 1
    assert re.search(what, err) and "[{\"role\": \"user\", \"content\": \"Hi\"}]" in err  # the fix: an example


def test_without_chat_a_json_chat_with_a_bad_message_is_an_error_too(model, capsys, monkeypatch):
    """A line whose first item is a message is a chat; a later message without content is an error, not a prompt."""
    status, _, err = run(model, [], capsys, monkeypatch, '[{"role": "user", "content": "Hi"}, {"role": "user"}]\n')
    assert status == 2 and err.startswith("zoo: error: stdin line 1: message 2 has no 'content'")


def test_an_argument_that_is_no_chat_is_named_as_an_argument(model, capsys, monkeypatch):
    status, _, err = run(model, ["--chat", "fine", "[not json"], capsys, monkeypatch)
    assert status == 2 and err.startswith("zoo: error: argument 2 is not valid JSON")


def test_chat_is_refused_for_other_tasks(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "fill-mask", "--chat", "x"])
    assert info.value.code == 2
    assert "--chat reads chats for text-generation, not for fill-mask" in capsys.readouterr().err
