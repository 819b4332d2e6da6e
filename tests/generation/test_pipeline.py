"""The text-generation pipeline passes generate()'s options through: beams, several sequences per prompt, stop
strings, lengths; the results equal transformers' TextGenerationPipeline on the same checkpoint."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.pipelines.conftest import hf_pipeline, make_gpt2

PROMPTS = ["Once upon a time", "My name is Wolfgang and I live"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-options")
    make_gpt2(folder, seed=11)
    return folder


@pytest.mark.parametrize("options", [
    dict(num_beams=3, max_new_tokens=8),
    dict(num_beams=3, num_return_sequences=2, max_new_tokens=6, length_penalty=0.5),
    dict(max_length=20, repetition_penalty=1.3, no_repeat_ngram_size=2),
    dict(max_new_tokens=10, min_new_tokens=10, bad_words_ids=[[5]]),
], ids=["beams", "beams-return-sequences", "max_length-penalties", "min_new_tokens"])
def test_pipeline_options_match_transformers(gpt2, options):
    ours = zoo.pipeline("text-generation", model=str(gpt2))
    theirs = hf_pipeline("text-generation", gpt2)
    for prompt in PROMPTS:
        expected = theirs(prompt, do_sample=False, **options)
        got = ours(prompt, **options)
        assert got == expected
        assert len(got) == options.get("num_return_sequences", 1)


def test_pipeline_sampling_several_sequences_and_stop_strings(gpt2):
    """Seeded sampling gives transformers' generate's draws (its pipeline draws differently: compared to generate)."""
    ours = zoo.pipeline("text-generation", model=str(gpt2))
    theirs = hf_pipeline("text-generation", gpt2)
    ids = theirs.tokenizer(PROMPTS[0], return_tensors="pt")
    torch.manual_seed(3)
    with torch.no_grad():
        drawn = theirs.model.generate(**ids, do_sample=True, num_return_sequences=3, max_new_tokens=8, top_k=20)
    expected = [{"generated_text": PROMPTS[0] + theirs.tokenizer.decode(row[ids["input_ids"].shape[1]:],
                                                                        skip_special_tokens=True)} for row in drawn]
    assert ours(PROMPTS[0], do_sample=True, num_return_sequences=3, max_new_tokens=8, top_k=20, seed=3) == expected
    full = ours(PROMPTS[1], max_new_tokens=12, return_full_text=False)[0]["generated_text"]
    stop = full.strip()[2:4]
    got = ours(PROMPTS[1], max_new_tokens=12, return_full_text=False, stop_strings=[stop])[0]["generated_text"]
    assert stop in got and len(got) < len(full)
    assert got == theirs(PROMPTS[1], max_new_tokens=12, return_full_text=False, do_sample=False,  # needs the
                         stop_strings=[stop], tokenizer=theirs.tokenizer)[0]["generated_text"]  # tokenizer there


def test_streaming_with_stop_strings_yields_what_the_whole_call_returns(gpt2):
    ours = zoo.pipeline("text-generation", model=str(gpt2))
    full = ours(PROMPTS[0], max_new_tokens=12, return_full_text=False)[0]["generated_text"]
    stop = full.strip()[1:3]
    whole = ours(PROMPTS[0], max_new_tokens=12, return_full_text=False, stop_strings=[stop])[0]["generated_text"]
    streamed = "".join(ours(PROMPTS[0], max_new_tokens=12, stream=True, stop_strings=[stop]))
    assert stop in whole and len(whole) < len(full) and streamed == whole
