"""GenerationConfig against transformers.GenerationConfig, and how generate() takes its options.

Files go both ways (zoo writes, transformers reads, and back) with the same values and the unknown keys kept;
from_model_config takes what transformers takes; the defaults are transformers'. generate() reads the model's
generation_config (never changing it), lets generation_config= and keyword options override it as transformers
does, and refuses an unknown option with the closest supported name.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from tests.generation.common import EOS, PAD, assert_same, both, hf_generate, make_batch, zoo_generate
from zoo.errors import GenerationError, UnknownGenerationOptionError
from zoo.generation import GENERATION_CONFIG_NAME, GenerationConfig, load_generation_config
from zoo.generation.config import FIELDS
from zoo.hub import LocalFolder
from zoo.plugins.gpt2.config import GPT2Config


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return both(tmp_path_factory.mktemp("config-lm"))


# --- the config itself -------------------------------------------------------------------------------------------------


def test_defaults_are_transformers_defaults():
    defaults = transformers.GenerationConfig._get_default_generation_params()
    config = GenerationConfig()
    shared = [k for k in FIELDS if k in defaults]
    assert len(shared) > 20
    for key in shared:
        assert getattr(config, key) == defaults[key], key
    for key in FIELDS:  # a field transformers has no global default for is None there, its "off" value here
        assert hasattr(transformers.GenerationConfig(), key), key
    assert config.to_diff_dict() == {} and not config.is_set("max_length")


CONFIGS = [
    dict(max_new_tokens=5, do_sample=True, top_k=7, top_p=0.9, temperature=0.7, eos_token_id=[1, 2], pad_token_id=0),
    dict(num_beams=4, num_return_sequences=2, length_penalty=0.5, early_stopping="never", max_length=40,
         bad_words_ids=[[3], [4, 5]], exponential_decay_length_penalty=(2, 1.5), no_repeat_ngram_size=3),
    dict(stop_strings=["\n\n", "User:"], suppress_tokens=[7], begin_suppress_tokens=[8], min_new_tokens=2,
         forced_eos_token_id=1, sequence_bias=[[[3, 4], -1.5]], custom_field={"kept": [1, 2]}),
]


@pytest.mark.parametrize("values", CONFIGS, ids=["sampling", "beams", "constraints"])
def test_a_file_round_trips_through_transformers(tmp_path, values):
    written = GenerationConfig(**values).save_pretrained(tmp_path)
    assert written == tmp_path / GENERATION_CONFIG_NAME
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path)
    for key, value in values.items():
        assert json.loads(json.dumps(getattr(theirs, key))) == json.loads(json.dumps(value)), key
    theirs.save_pretrained(tmp_path / "back")
    back = GenerationConfig.from_pretrained(tmp_path / "back")
    assert back == GenerationConfig(**values)
    assert back.custom_field == values["custom_field"] if "custom_field" in values else True
    assert all(back.is_set(k) for k in values)
    assert back.to_dict()["transformers_version"] == transformers.__version__  # metadata kept, not an option
    back.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / GENERATION_CONFIG_NAME).read_text()) == json.loads(
        (tmp_path / "back" / GENERATION_CONFIG_NAME).read_text())


@pytest.mark.parametrize("overrides", [dict(), dict(pad_token_id=3), dict(eos_token_id=[1, 2], bos_token_id=0),
                                       dict(output_hidden_states=True)])
def test_from_model_config_takes_what_transformers_takes(overrides):
    ours = GenerationConfig.from_model_config(GPT2Config(**overrides))
    theirs = transformers.GenerationConfig.from_model_config(transformers.GPT2Config(**overrides))
    expected = json.loads(theirs.to_json_string())
    expected.pop("transformers_version")
    assert json.loads(ours.to_json_string()) == expected


def test_from_pretrained_overrides_and_update():
    config = GenerationConfig.from_dict({"max_new_tokens": 4, "some_key": 1}, temperature=0.5, some_key=2)
    assert (config.max_new_tokens, config.temperature, config.some_key) == (4, 0.5, 2)
    with pytest.raises(UnknownGenerationOptionError, match="did you mean 'max_new_tokens'"):
        GenerationConfig.from_dict({}, max_new_tokenz=3)
    unused = config.update(top_k=3, not_an_option=1, some_key=5)
    assert unused == {"not_an_option": 1} and config.top_k == 3 and config.some_key == 5


@pytest.mark.parametrize(("values", "message"), [
    (dict(do_sample=True, temperature=0.0), "temperature must be > 0 when sampling"),
    (dict(top_p=1.5), r"top_p must be in \[0, 1\]"),
    (dict(typical_p=0.0), r"typical_p must be in \(0, 1\]"),
    (dict(min_p=-0.1), r"min_p must be in \[0, 1\]"),
    (dict(top_k=-1), "top_k must be an int >= 0"),
    (dict(num_beams=0), "num_beams must be an int >= 1"),
    (dict(num_beams=2, num_return_sequences=3), r"num_return_sequences \(3\) must be <= num_beams \(2\)"),
    (dict(num_return_sequences=2), "needs do_sample=True or num_beams > 1"),
    (dict(early_stopping="sometimes"), "early_stopping must be True, False or 'never'"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be > 0"),
    (dict(eos_token_id="</s>"), "eos_token_id must be a token id or a list of them"),
    (dict(bad_words_ids=[5]), "bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(suppress_tokens=[1], forced_eos_token_id=1), "also in suppress_tokens"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an int >= 0"),
    (dict(stop_strings=""), "stop_strings must be a non-empty string"),
])
def test_bad_values_are_clear_errors(values, message):
    with pytest.raises(GenerationError, match=message):
        GenerationConfig(**values)


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    (tmp_path / GENERATION_CONFIG_NAME).write_text(json.dumps({"top_p": 3}))
    with pytest.raises(GenerationError, match=rf"{GENERATION_CONFIG_NAME}: top_p must be in"):
        GenerationConfig.from_pretrained(tmp_path)


def test_load_generation_config_reads_the_file_or_falls_back_to_the_model_config(tmp_path):
    model_config = GPT2Config(eos_token_id=5, pad_token_id=0)
    assert load_generation_config(tmp_path, model_config) == GenerationConfig.from_model_config(model_config)
    GenerationConfig(max_new_tokens=9, eos_token_id=[5, 6]).save_pretrained(tmp_path)
    for source in (tmp_path, str(tmp_path), LocalFolder(tmp_path)):
        loaded = load_generation_config(source, model_config)
        assert loaded.max_new_tokens == 9 and loaded.eos_token_id == [5, 6] and loaded.pad_token_id is None


# --- generate and its options --------------------------------------------------------------------------------------


def test_model_generation_config_is_built_from_the_model_config_and_settable(tmp_path):
    _, model = both(tmp_path)
    assert model.generation_config.eos_token_id == EOS and model.generation_config.is_set("eos_token_id")
    assert model.generation_config is model.generation_config
    model.generation_config = GenerationConfig(max_new_tokens=3)
    assert model.generate(make_batch()["input_ids"][:1]).shape == (1, 9 + 3)
    with pytest.raises(GenerationError, match="generation_config must be a zoo.GenerationConfig"):
        model.generation_config = {"max_new_tokens": 3}


def test_the_checkpoint_generation_config_gives_the_defaults_as_in_transformers(tmp_path):
    hf, model = both(tmp_path)
    hf.generation_config = transformers.GenerationConfig(max_new_tokens=7, do_sample=True, top_k=5, temperature=0.9,
                                                        eos_token_id=[EOS, 9], pad_token_id=PAD)
    hf.generation_config.save_pretrained(tmp_path)
    model.generation_config = load_generation_config(tmp_path, model.config)
    batch = make_batch(seed=7)
    before = model.generation_config.to_dict()
    assert_same(zoo_generate(model, batch), hf_generate(hf, batch))
    assert_same(zoo_generate(model, batch, top_k=0, max_new_tokens=4), hf_generate(hf, batch, top_k=0, max_new_tokens=4))
    override = GenerationConfig(do_sample=False, max_new_tokens=5)  # its unset fields still come from the model's
    expected = hf_generate(hf, batch, generation_config=transformers.GenerationConfig(do_sample=False,
                                                                                       max_new_tokens=5))
    assert_same(zoo_generate(model, batch, generation_config=override), expected)
    assert_same(zoo_generate(model, batch, generation_config=override, num_beams=2),
                hf_generate(hf, batch, generation_config=transformers.GenerationConfig(do_sample=False,
                                                                                        max_new_tokens=5), num_beams=2))
    assert model.generation_config.to_dict() == before and override.to_dict()["num_beams"] == 1  # never changed


def test_a_transformers_generation_config_is_accepted(pair):
    hf, model = pair
    batch = make_batch(seed=8)
    theirs = transformers.GenerationConfig(max_new_tokens=6, num_beams=2, eos_token_id=EOS, pad_token_id=PAD)
    assert_same(zoo_generate(model, batch, generation_config=theirs), hf_generate(hf, batch, generation_config=theirs))


def test_an_unknown_option_names_the_closest_supported_one(pair):
    _, model = pair
    ids = make_batch()["input_ids"]
    with pytest.raises(UnknownGenerationOptionError, match="did you mean 'max_new_tokens'") as caught:
        model.generate(ids, max_new_token=5)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert "supported options: " in str(caught.value) and "num_beams" in str(caught.value)
    with pytest.raises(TypeError, match="generate\\(\\) got an unknown option 'beams'; did you mean 'num_beams'"):
        model.generate(ids, beams=2)
    with pytest.raises(UnknownGenerationOptionError, match="'assistant_model' is an option of transformers"):
        model.generate(ids, assistant_model=model)


def test_options_of_transformers_zoo_does_not_implement(pair):
    hf, model = pair
    ids = make_batch()["input_ids"]
    with pytest.raises(UnknownGenerationOptionError, match=r"penalty_alpha=0.6: zoo's generate does not implement"):
        model.generate(ids, max_new_tokens=3, penalty_alpha=0.6, top_k=4)
    with pytest.raises(UnknownGenerationOptionError, match="num_beam_groups=2"):
        model.generate(ids, max_new_tokens=3, num_beams=4, num_beam_groups=2, diversity_penalty=1.0)
    # their "off" values, as old generation_config.json files hold them, change nothing
    assert torch.equal(model.generate(ids, max_new_tokens=4, num_beam_groups=1, diversity_penalty=0.0),
                       model.generate(ids, max_new_tokens=4))
    # options that cannot change the output (zoo has one cache, compiles nothing) are taken and change nothing
    common = dict(max_new_tokens=4, eos_token_id=EOS, pad_token_id=PAD)
    expected = hf_generate(hf, ids, cache_implementation="static", **common)
    assert_same(zoo_generate(model, ids, cache_implementation="static", disable_compile=True, **common), expected)


def test_sampling_options_without_sampling_are_warned_about(pair, caplog):
    _, model = pair
    with caplog.at_level("WARNING", logger="zoo.generation"):
        model.generate(make_batch()["input_ids"], max_new_tokens=2, temperature=0.5, length_penalty=2.0)
    assert "temperature only act when sampling" in caplog.text and "length_penalty only act in beam search" in caplog.text


def test_max_new_tokens_zero_returns_the_prompt(pair):
    _, model = pair
    batch = make_batch()
    out = model.generate(**batch, max_new_tokens=0, return_dict_in_generate=True, output_scores=True)
    assert torch.equal(out.sequences, batch["input_ids"]) and out.scores == ()
    beams = model.generate(**batch, max_new_tokens=0, num_beams=2, num_return_sequences=2)
    assert torch.equal(beams, batch["input_ids"].repeat_interleave(2, dim=0))


def test_none_means_what_it_means_in_transformers(pair):
    """An option given as None is unset (its default), except top_k=None, which turns top-k off, as in transformers'
    generate; a file's nulls read the same way."""
    hf, model = pair
    batch = make_batch(seed=9)
    common = dict(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, do_sample=True, temperature=None,
                  top_p=None, max_length=None, top_k=None, repetition_penalty=None)
    assert_same(zoo_generate(model, batch, **common), hf_generate(hf, batch, **common))
    config = GenerationConfig.from_dict({"max_length": None, "temperature": None, "top_k": None})
    assert (config.max_length, config.temperature, config.top_k) == (20, 1.0, None)
    assert not config.is_set("max_length") and config.is_set("top_k")
