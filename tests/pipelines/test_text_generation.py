"""text-generation against transformers' TextGenerationPipeline: the same greedy continuations on the same GPT-2."""

from __future__ import annotations

import logging

import pytest

import zoo
from zoo.errors import PipelineError
from tests.pipelines.conftest import hf_pipeline, make_gpt2

PROMPTS = ["Once upon a time", "My name is Wolfgang and I live", "Paris", "I love Python and I hate bugs; lovely"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    make_gpt2(folder, seed=7)
    return folder


@pytest.fixture
def gen(gpt2):
    return zoo.pipeline("text-generation", model=str(gpt2))


def test_greedy_generations_match_transformers(gen, gpt2):
    reference = hf_pipeline("text-generation", gpt2)
    for prompt in PROMPTS:
        for options in ({}, {"return_full_text": False}):
            expected = reference(prompt, max_new_tokens=12, do_sample=False, **options)
            assert gen(prompt, max_new_tokens=12, **options) == expected
    assert gen(PROMPTS, max_new_tokens=12) == [reference(p, max_new_tokens=12, do_sample=False) for p in PROMPTS]


def test_batched_left_padded_prompts_give_the_same_text(gen):
    one_by_one = gen(PROMPTS, max_new_tokens=10)
    assert gen(PROMPTS, max_new_tokens=10, batch_size=4) == one_by_one
    assert gen(PROMPTS, max_new_tokens=10, batch_size=3) == one_by_one


def test_streaming_yields_the_continuation_in_chunks(gen):
    chunks = gen(PROMPTS[0], max_new_tokens=15, stream=True)
    assert not isinstance(chunks, (list, str))
    chunks = list(chunks)
    assert len(chunks) >= 1
    assert "".join(chunks) == gen(PROMPTS[0], max_new_tokens=15, return_full_text=False)[0]["generated_text"]


def test_sampling_is_reproducible_with_a_seed(gen):
    options = dict(max_new_tokens=10, do_sample=True, temperature=0.9, top_k=30, top_p=0.95)
    first = gen(PROMPTS[1], seed=3, **options)
    assert gen(PROMPTS[1], seed=3, **options) == first
    others = {gen(PROMPTS[1], seed=s, **options)[0]["generated_text"] for s in range(4, 8)}
    assert len(others | {first[0]["generated_text"]}) > 1


def test_token_ids_and_prefix(gen, gpt2):
    ids = gen(PROMPTS[0], max_new_tokens=6, return_tensors=True)[0]["generated_token_ids"]
    prompt_ids = zoo.AutoTokenizer.from_pretrained(gpt2)(PROMPTS[0], add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids and len(ids) == len(prompt_ids) + 6
    expected = hf_pipeline("text-generation", gpt2)(PROMPTS[2], prefix="My name is ", max_new_tokens=8, do_sample=False)
    assert gen(PROMPTS[2], prefix="My name is ", max_new_tokens=8) == expected


def test_long_prompt_keeps_its_end_with_a_warning(gen, caplog):
    with caplog.at_level(logging.WARNING):
        out = gen("hello world " * 60, max_new_tokens=8)
    assert "only its last" in caplog.text and out[0]["generated_text"].startswith("hello world ")
    with pytest.raises(PipelineError, match="leaves no room"):
        gen("hello", max_new_tokens=64)


@pytest.mark.parametrize("call, message", [
    (lambda g: g(""), "empty string"),
    (lambda g: g(None), "is None"),
    (lambda g: g(["a", "b"], stream=True), "streams one prompt"),
    (lambda g: g("a", max_new_tokens=-1), "max_new_tokens"),
    (lambda g: g("a", num_beamz=2), "unknown options"),
    (lambda g: g("a", return_full_text=True, return_tensors=True), "exclude each other"),
    (lambda g: g("a", do_sample=True, temperature=0), "temperature must be > 0"),
])
def test_bad_input_is_a_clear_error(gen, call, message):
    with pytest.raises(PipelineError, match=message):
        call(gen)


def test_zoo_run_streams_plain_text_and_writes_json_otherwise(gen, gpt2, capsys):
    from zoo.cli import main

    continuation = gen(PROMPTS[2], max_new_tokens=6, return_full_text=False)[0]["generated_text"]
    assert main(["run", "text-generation", "--model", str(gpt2), PROMPTS[2], "-o", "stream=true", "-o", "max_new_tokens=6"]) == 0
    assert capsys.readouterr().out == continuation + "\n"
    assert main(["run", "text-generation", "--model", str(gpt2), PROMPTS[2], "-o", "max_new_tokens=6"]) == 0
    import json

    assert json.loads(capsys.readouterr().out) == [{"generated_text": PROMPTS[2] + continuation}]


def test_beams_and_several_sequences_match_transformers_in_the_pipeline_and_zoo_run(gen, gpt2, capsys):
    import json

    from zoo.cli import main

    reference = hf_pipeline("text-generation", gpt2)
    options = dict(max_new_tokens=8, num_beams=3, num_return_sequences=2, length_penalty=0.5, early_stopping=True)
    expected = reference(PROMPTS[1], do_sample=False, **options)
    assert len(expected) == 2 and gen(PROMPTS[1], **options) == expected
    argv = ["run", "text-generation", "--model", str(gpt2), PROMPTS[1]] + [
        arg for key, value in options.items() for arg in ("-o", f"{key}={json.dumps(value)}")]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == expected
