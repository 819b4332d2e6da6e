"""generate()'s options against transformers' generate on the same GPT-2 checkpoints, greedy and seeded sampling.

Each logits processor and warper, the length options (max_length, max_new_tokens, min_length, min_new_tokens),
EOS lists, num_return_sequences, user processors and criteria, and the output object with its per-step scores,
logits, hidden states and attentions: zoo's result must equal transformers' (ids exactly, tensors within 1e-5),
on left-padded batches, for two configs of the model.
"""

from __future__ import annotations

import pytest
import torch

from tests.generation.common import EOS, PAD, assert_same, both, hf_generate, make_batch, zoo_generate

MODELS = ["tiny-gelu_new", "relu-inverse-layer-idx-n_inner"]


@pytest.fixture(scope="module", params=MODELS)
def pair(request, tmp_path_factory):
    return both(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def batch():
    return make_batch(seed=1)


def generated(model, batch) -> list[int]:
    """The distinct tokens a free greedy run generates, first seen first: bans and biases made of them (and an EOS
    that is one of them) change the output, so no test passes by changing nothing."""
    free = model.generate(**batch, max_new_tokens=10, eos_token_id=[])
    order = free[:, 9:].t().flatten().tolist()  # step by step across the rows
    return list(dict.fromkeys(order))


# --- greedy: every processor -------------------------------------------------------------------------------------------

GREEDY = {
    "repetition-penalty": lambda t: dict(repetition_penalty=1.6),
    "repetition-reward": lambda t: dict(repetition_penalty=0.6),
    "no-repeat-bigram": lambda t: dict(no_repeat_ngram_size=2),
    "no-repeat-unigram": lambda t: dict(no_repeat_ngram_size=1),
    "bad-words": lambda t: dict(bad_words_ids=[[t[0]], [t[1], t[2]], [t[3], 5], [EOS]]),
    "sequence-bias": lambda t: dict(sequence_bias=[[[t[1]], 4.0], [[t[0], t[2]], -3.0], [[t[0]], -0.5]]),
    "suppress-tokens": lambda t: dict(suppress_tokens=t[:3]),
    "begin-suppress-tokens": lambda t: dict(begin_suppress_tokens=t[:3]),
    "forced-eos": lambda t: dict(forced_eos_token_id=EOS),
    "forced-eos-list": lambda t: dict(forced_eos_token_id=[EOS, 3]),
    "remove-invalid-values": lambda t: dict(remove_invalid_values=True, suppress_tokens=t[:2]),
    "renormalize": lambda t: dict(renormalize_logits=True, repetition_penalty=1.3),
    "everything": lambda t: dict(repetition_penalty=1.2, no_repeat_ngram_size=3, bad_words_ids=[[t[1]]],
                                 suppress_tokens=[t[2]]),
}


@pytest.mark.parametrize("make_options", GREEDY.values(), ids=GREEDY.keys())
def test_greedy_with_each_processor_matches_transformers(pair, batch, make_options):
    hf, model = pair
    common = dict(max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD, **make_options(generated(model, batch)))
    expected = hf_generate(hf, batch, **common)
    assert_same(zoo_generate(model, batch, **common), expected)
    assert not torch.equal(expected, zoo_generate(model, batch, max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD))


def test_eos_dependent_processors_with_a_likely_eos(pair, batch):
    """min_new_tokens, min_length and the exponential decay act on EOS: with an EOS the model does pick."""
    hf, model = pair
    eos = generated(model, batch)[1]
    for options in (dict(min_new_tokens=6), dict(min_length=9 + 5), dict(exponential_decay_length_penalty=(2, 1.6)),
                    dict(min_new_tokens=4, min_length=9 + 6), dict(bad_words_ids=[[eos], [5]])):
        common = dict(max_new_tokens=10, eos_token_id=eos, pad_token_id=PAD, **options)
        got = zoo_generate(model, batch, **common)
        assert_same(got, hf_generate(hf, batch, **common))
        if "min_new_tokens" in options:
            assert eos not in got[:, 9 : 9 + options["min_new_tokens"]].tolist(), options


def test_eos_list_stops_each_row_at_any_of_its_ids(pair, batch):
    hf, model = pair
    free = model.generate(**batch, max_new_tokens=10, eos_token_id=[])
    eos = [int(free[0, 9 + 3]), int(free[1, 9 + 1]), EOS]
    common = dict(max_new_tokens=10, eos_token_id=eos, pad_token_id=PAD)
    got = zoo_generate(model, batch, **common)
    assert_same(got, hf_generate(hf, batch, **common))
    for row in got[:, 9:].tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        if stop is not None:
            assert row[stop + 1 :] == [PAD] * (len(row) - stop - 1)
    assert got.shape[1] < 19 or any(t in eos for t in got[:, 9:].flatten().tolist())


# --- sampling: every warper ------------------------------------------------------------------------------------------

SAMPLING = {
    "defaults": dict(),
    "temperature": dict(temperature=0.7),
    "top_k": dict(top_k=10),
    "top_p": dict(top_k=0, top_p=0.8),
    "min_p": dict(top_k=0, min_p=0.1),
    "typical_p": dict(top_k=0, typical_p=0.8),
    "epsilon": dict(top_k=0, epsilon_cutoff=0.02),
    "eta": dict(top_k=0, eta_cutoff=0.01),
    "all-warpers": dict(temperature=1.3, top_k=20, top_p=0.9, min_p=0.02, typical_p=0.95),
    "penalty-and-ngrams": dict(repetition_penalty=1.2, no_repeat_ngram_size=2, top_p=0.9),
    "renormalize": dict(temperature=0.8, renormalize_logits=True),
    "return-sequences": dict(num_return_sequences=3, top_k=30),
    "return-sequences-top_p": dict(num_return_sequences=2, top_k=0, top_p=0.7, temperature=1.2),
}


@pytest.mark.parametrize("options", SAMPLING.values(), ids=SAMPLING.keys())
def test_seeded_sampling_with_each_warper_draws_what_transformers_draws(pair, batch, options):
    hf, model = pair
    common = dict(max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD, do_sample=True, **options)
    expected = hf_generate(hf, batch, **common)
    got = zoo_generate(model, batch, **common)
    assert_same(got, expected)
    assert got.shape[0] == 3 * options.get("num_return_sequences", 1)


# --- lengths ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "length"), [
    (dict(), 9 + 20),  # transformers' default: 20 new tokens
    (dict(max_length=14), 14),
    (dict(max_length=12, max_new_tokens=5), 9 + 5),  # max_new_tokens wins
    (dict(max_new_tokens=3), 9 + 3),
    (dict(max_length=30, min_length=25), 30),
], ids=["default", "max_length", "max_new_tokens-wins", "max_new_tokens", "min_length"])
def test_length_options_match_transformers(pair, batch, options, length):
    hf, model = pair
    expected = hf_generate(hf, batch, eos_token_id=None, pad_token_id=PAD, **options)  # None: no EOS
    for no_eos in (None, []):
        got = zoo_generate(model, batch, eos_token_id=no_eos, pad_token_id=PAD, **options)
        assert_same(got, expected)
        assert got.shape[1] == length


def test_default_length_stays_within_the_model_positions(pair):
    hf, model = pair
    prompt = make_batch(seed=3, batch=1, length=40)["input_ids"]  # 40 + 20 > 48 positions: 8 new tokens
    got = zoo_generate(model, prompt, eos_token_id=[])
    assert got.shape == (1, 48)
    assert_same(got, hf_generate(hf, prompt, eos_token_id=None))


def test_a_prompt_as_long_as_max_length_is_an_error(pair, batch):
    _, model = pair
    with pytest.raises(ValueError, match="the prompt has 9 tokens and max_length is 9"):
        model.generate(**batch, max_length=9)
    with pytest.raises(ValueError, match=r"max_length \(60\) exceeds the 48 positions"):
        model.generate(**batch, max_length=60)


def test_generation_starts_from_bos_without_a_prompt(pair):
    hf, model = pair
    assert_same(zoo_generate(model, None, max_new_tokens=6), hf_generate(hf, None, max_new_tokens=6))
    assert model.generate(max_new_tokens=2, eos_token_id=[])[0, 0] == model.generation_config.bos_token_id


def test_max_time_stops_after_the_token_that_ran_out_of_time(pair, batch):
    hf, model = pair
    common = dict(max_new_tokens=10, max_time=1e-9, eos_token_id=EOS, pad_token_id=PAD)
    got = zoo_generate(model, batch, **common)
    assert got.shape[1] == 9 + 1  # the budget is spent before the first token is chosen
    assert_same(got, hf_generate(hf, batch, **common))


# --- the output object ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    dict(),
    dict(repetition_penalty=1.4, renormalize_logits=True),
    dict(do_sample=True, temperature=0.8, top_k=15),
    dict(do_sample=True, num_return_sequences=2, top_p=0.9),
], ids=["greedy", "greedy-processed", "sampling", "sampling-return-sequences"])
def test_return_dict_with_scores_and_logits_matches_transformers(pair, batch, options):
    hf, model = pair
    common = dict(max_new_tokens=8, eos_token_id=EOS, pad_token_id=PAD, return_dict_in_generate=True,
                  output_scores=True, output_logits=True, **options)
    expected = hf_generate(hf, batch, **common)
    got = zoo_generate(model, batch, **common)
    assert_same(got, expected)
    assert len(got.scores) == got.sequences.shape[1] - 9 and got.scores[0].shape == (got.sequences.shape[0], 120)
    assert got.cache is not None and got.cache.length == got.sequences.shape[1] - 1
    only_ids = zoo_generate(model, batch, **{**common, "return_dict_in_generate": False})
    assert torch.equal(only_ids, got.sequences)
    neither = zoo_generate(model, batch, **{**common, "output_scores": False, "output_logits": False})
    assert neither.scores is None and neither.logits is None


def test_hidden_states_and_attentions_per_step_match_transformers_eager(tmp_path):
    hf, model = both(tmp_path, attn_implementation="eager")
    batch = make_batch(seed=2)
    for extra in (dict(), dict(num_beams=2)):
        common = dict(max_new_tokens=5, eos_token_id=EOS, pad_token_id=PAD, return_dict_in_generate=True,
                      output_hidden_states=True, output_attentions=True, **extra)
        got = zoo_generate(model, batch, **common)
        assert_same(got, hf_generate(hf, batch, **common))
        assert got.hidden_states[0][0].shape[1] == 9 and got.hidden_states[1][0].shape[1] == 1


@pytest.mark.parametrize("extra", [dict(), dict(num_beams=3), dict(do_sample=True, top_k=20)],
                         ids=["greedy", "beams", "sampling"])
def test_without_a_cache_the_result_is_the_same(pair, batch, extra):
    hf, model = pair
    common = dict(max_new_tokens=8, eos_token_id=EOS, pad_token_id=PAD, use_cache=False, **extra)
    got = zoo_generate(model, batch, **common)
    assert_same(got, hf_generate(hf, batch, **common))
    assert torch.equal(got, zoo_generate(model, batch, **{**common, "use_cache": True}))


# --- constraints and the user's own processors and criteria ---------------------------------------------------------


def test_prefix_allowed_tokens_and_forced_bos(pair, batch):
    hf, model = pair

    def allowed(batch_id, ids):
        return [int(ids[-1]) % 50 + 2, 11 + batch_id, 13]

    for extra in (dict(), dict(num_beams=2), dict(do_sample=True, num_return_sequences=2)):
        common = dict(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, prefix_allowed_tokens_fn=allowed, **extra)
        assert_same(zoo_generate(model, batch, **common), hf_generate(hf, batch, **common))
    one = torch.tensor([[5]])  # forced_bos acts on a one-token prompt (the decoder start of an encoder-decoder)
    common = dict(max_new_tokens=5, forced_bos_token_id=7, begin_suppress_tokens=[3, 28], eos_token_id=EOS)
    got = zoo_generate(model, one, **common)
    assert got[0, 1] == 7
    assert_same(got, hf_generate(hf, one, **common))


def test_user_logits_processors_run_after_the_constraints_and_before_the_warpers(pair, batch):
    hf, model = pair
    seen = {"hf": [], "zoo": []}

    def recorder(name):
        def record(input_ids, scores):
            seen[name].append((input_ids.clone(), scores.clone()))
            return scores.masked_fill(torch.arange(scores.shape[-1]) % 3 == 0, -float("inf"))  # bans every third id
        return record

    common = dict(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, repetition_penalty=1.5, do_sample=True,
                  temperature=0.5, top_k=10)
    expected = hf_generate(hf, batch, logits_processor=[recorder("hf")], **common)
    got = zoo_generate(model, batch, logits_processor=[recorder("zoo")], **common)
    assert_same(got, expected)
    assert all(t % 3 for t in got[:, 9:].flatten().tolist() if t != PAD)
    assert len(seen["zoo"]) == len(seen["hf"]) == got.shape[1] - 9
    for (ids, scores), (hf_ids, hf_scores) in zip(seen["zoo"], seen["hf"]):
        assert torch.equal(ids, hf_ids)
        torch.testing.assert_close(scores, hf_scores, atol=1e-5, rtol=1e-5)  # penalised, not yet tempered


def test_user_stopping_criteria_are_ored_with_eos(pair, batch):
    hf, model = pair

    def multiple_of_seven(input_ids, scores):
        return input_ids[:, -1] % 7 == 0

    common = dict(max_new_tokens=12, eos_token_id=EOS, pad_token_id=PAD)
    got = zoo_generate(model, batch, stopping_criteria=[multiple_of_seven], **common)
    assert_same(got, hf_generate(hf, batch, stopping_criteria=[multiple_of_seven], **common))
    assert not torch.equal(got, zoo_generate(model, batch, **common)), "the criterion stopped nothing"


def test_bad_processors_and_criteria_are_clear_errors(pair, batch):
    _, model = pair
    with pytest.raises(ValueError, match="logits_processor must hold callables"):
        model.generate(**batch, max_new_tokens=2, logits_processor=[42])
    with pytest.raises(ValueError, match="stopping_criteria must hold callables"):
        model.generate(**batch, max_new_tokens=2, stopping_criteria=["eos"])


def test_processor_and_criterion_bases_refuse_a_subclass_without_call():
    from zoo.generation import LogitsProcessor, StoppingCriteria

    for base in (LogitsProcessor, StoppingCriteria):
        incomplete = type("Incomplete", (base,), {})
        with pytest.raises(TypeError, match="abstract"):
            incomplete()
        complete = type("Complete", (base,), {"__call__": lambda self, input_ids, scores, **kw: scores})
        assert complete()(None, "scores") == "scores"
