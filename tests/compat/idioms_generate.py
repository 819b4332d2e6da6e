"""generate() idioms on the GPT-2 checkpoint: greedy under every length option, end-of-sequence lists, the logits
processors, seeded sampling with each sampling processor, beam search (several num_beams, length_penalty and
early_stopping settings, sequences_scores), return_dict_in_generate with scores and logits, stop strings, a user
logits processor, a streamer, and generation_config.json read, used and written back.

Token ids an idiom bans, forces or stops at are read off the library's own greedy continuation first, so each option
changes the output (a ban on a token greedy decoding never picks would prove nothing).
"""

from __future__ import annotations

import contextlib
import io

import torch

from tests.compat.idiom import fields, idiom, raised

PROMPT = "Once upon a time"
PROMPTS = ["Hello world! The quick", "What is the capital of France?", "I love"]


def _lm(lib, folder):
    """The model and a generation-ready tokenizer (pad = eos, left padding), as every causal-LM tutorial sets up."""
    tok = lib.AutoTokenizer.from_pretrained(folder)
    tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return lib.AutoModelForCausalLM.from_pretrained(folder), tok


def _inputs(tok, batch=False):
    return tok(PROMPTS if batch else PROMPT, return_tensors="pt", padding=batch)


def _continuation(model, inputs, n=10):
    """The ids greedy decoding adds to the first prompt (the random checkpoint never picks its eos this early)."""
    out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


# --- greedy and lengths ----------------------------------------------------------------------------------------------


@idiom
def greedy_with_max_length(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    out = model.generate(**_inputs(tok), max_length=30)
    return {"ids": out, "text": tok.batch_decode(out, skip_special_tokens=True)}


@idiom
def greedy_with_max_new_tokens_on_left_padded_batch(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    out = model.generate(**_inputs(tok, batch=True), max_new_tokens=12, pad_token_id=tok.pad_token_id)
    return {"ids": out, "text": tok.batch_decode(out, skip_special_tokens=True)}


@idiom
def greedy_with_input_ids_only_and_default_length(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2_json)
    return model.generate(tok(PROMPT, return_tensors="pt").input_ids)  # max_length 20 by default


@idiom
def min_new_tokens_holds_back_eos(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok)
    eos = _continuation(model, inputs)[1]
    return {"stopped": model.generate(**inputs, eos_token_id=eos, max_new_tokens=10),
            "held": model.generate(**inputs, eos_token_id=eos, min_new_tokens=5, max_new_tokens=10)}


@idiom
def min_length_holds_back_eos(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok)
    eos = _continuation(model, inputs)[2]
    return model.generate(**inputs, eos_token_id=eos, min_length=inputs["input_ids"].shape[1] + 6, max_length=25)


@idiom
def eos_token_id_list_stops_rows_and_pads(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok, batch=True)
    new = _continuation(model, inputs)
    return model.generate(**inputs, eos_token_id=[new[2], new[5]], pad_token_id=tok.pad_token_id, max_new_tokens=10)


@idiom
def repetition_penalty(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    return model.generate(**_inputs(tok, batch=True), repetition_penalty=1.5, max_new_tokens=12)


@idiom
def no_repeat_ngram_size(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    return model.generate(**_inputs(tok, batch=True), no_repeat_ngram_size=2, max_new_tokens=14)


@idiom
def bad_words_ids_single_and_multi_token(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok)
    new = _continuation(model, inputs)
    return model.generate(**inputs, bad_words_ids=[[new[0]], [new[2], new[3]]], max_new_tokens=10)


@idiom
def suppress_tokens(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok, batch=True)
    new = _continuation(model, inputs)
    return model.generate(**inputs, suppress_tokens=new[:3], max_new_tokens=10)


@idiom
def forced_bos_and_forced_eos_token_id(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    start = torch.tensor([[tok.bos_token_id]])  # forced_bos applies to the first generated position only
    forced_eos = tok.convert_tokens_to_ids("Ġthe")
    return {"bos": model.generate(start, forced_bos_token_id=7, max_new_tokens=6),
            "eos": model.generate(**_inputs(tok), forced_eos_token_id=forced_eos, max_new_tokens=6),
            "both": model.generate(start, forced_bos_token_id=9, forced_eos_token_id=forced_eos, max_length=8)}


@idiom
def unknown_generate_option_is_an_error_naming_it(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    return raised(lambda: model.generate(**_inputs(tok), max_new_tokenz=3), "max_new_tokenz")


# --- seeded sampling -------------------------------------------------------------------------------------------------


@idiom
def sampling_with_temperature_after_set_seed(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(0)
    return model.generate(**_inputs(tok, batch=True), do_sample=True, temperature=0.7, top_k=0, max_new_tokens=10)


@idiom
def sampling_with_top_k_after_manual_seed(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    torch.manual_seed(1)
    return model.generate(**_inputs(tok, batch=True), do_sample=True, top_k=5, max_new_tokens=10)


@idiom
def sampling_with_top_p(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(2)
    return model.generate(**_inputs(tok, batch=True), do_sample=True, top_k=0, top_p=0.8, max_new_tokens=10)


@idiom
def sampling_with_min_p(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(3)
    return model.generate(**_inputs(tok, batch=True), do_sample=True, top_k=0, min_p=0.1, max_new_tokens=10)


@idiom
def sampling_with_typical_p(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(4)
    return model.generate(**_inputs(tok, batch=True), do_sample=True, top_k=0, typical_p=0.9, max_new_tokens=10)


@idiom
def sampling_with_every_processor_at_once(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    torch.manual_seed(5)
    return model.generate(**_inputs(tok), do_sample=True, temperature=1.3, top_k=20, top_p=0.9,
                          repetition_penalty=1.2, no_repeat_ngram_size=3, max_new_tokens=12)


@idiom
def sampling_num_return_sequences(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(6)
    out = model.generate(**_inputs(tok, batch=True), do_sample=True, top_k=10, num_return_sequences=3,
                         max_new_tokens=8)
    return {"ids": out, "text": tok.batch_decode(out, skip_special_tokens=True)}


@idiom
def sampling_return_dict_with_scores(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    lib.set_seed(7)
    out = model.generate(**_inputs(tok), do_sample=True, top_k=4, temperature=0.9, max_new_tokens=5,
                         return_dict_in_generate=True, output_scores=True)
    return fields(out, "sequences", "scores")


# --- beam search -----------------------------------------------------------------------------------------------------


@idiom
def beam_search_two_beams(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    return model.generate(**_inputs(tok), num_beams=2, max_new_tokens=8)


@idiom
def beam_search_three_beams_length_penalty_half_batched(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok, batch=True)
    eos = _continuation(model, inputs)[3]
    return model.generate(**inputs, num_beams=3, length_penalty=0.5, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                          max_new_tokens=10)


def _beams_that_finish(lib, ckpt, **options):
    """Beam search with an end token greedy decoding reaches early, so hypotheses finish at different lengths and
    length_penalty / early_stopping decide which are kept."""
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok, batch=True)
    new = _continuation(model, inputs)
    out = model.generate(**inputs, eos_token_id=[new[1], new[4]], pad_token_id=tok.pad_token_id, max_new_tokens=9,
                         return_dict_in_generate=True, output_scores=True, **options)
    return fields(out, "sequences", "sequences_scores")


@idiom
def beam_search_four_beams_early_stopping_true(lib, ckpt):
    return _beams_that_finish(lib, ckpt, num_beams=4, length_penalty=2.0, early_stopping=True)


@idiom
def beam_search_four_beams_early_stopping_false(lib, ckpt):
    return _beams_that_finish(lib, ckpt, num_beams=4, length_penalty=1.0, early_stopping=False)


@idiom
def beam_search_early_stopping_never(lib, ckpt):
    return _beams_that_finish(lib, ckpt, num_beams=3, length_penalty=-0.5, early_stopping="never")


@idiom
def beam_search_num_return_sequences(lib, ckpt):
    return _beams_that_finish(lib, ckpt, num_beams=4, num_return_sequences=3, length_penalty=0.0)


@idiom
def beam_search_return_dict_scores_and_sequences_scores(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    out = model.generate(**_inputs(tok), num_beams=3, max_new_tokens=6, return_dict_in_generate=True,
                         output_scores=True, output_logits=True)
    return fields(out, "sequences", "sequences_scores", "scores", "logits")


@idiom
def beam_search_with_repetition_penalty_and_no_repeat_ngram(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    return model.generate(**_inputs(tok, batch=True), num_beams=3, repetition_penalty=1.3, no_repeat_ngram_size=2,
                          max_new_tokens=10)


# --- output objects, stop strings, user processors, streamers -------------------------------------------------------


@idiom
def greedy_return_dict_in_generate_with_scores_and_logits(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    out = model.generate(**_inputs(tok, batch=True), max_new_tokens=6, return_dict_in_generate=True,
                         output_scores=True, output_logits=True, repetition_penalty=1.4)
    return fields(out, "sequences", "scores", "logits")


@idiom
def stop_strings_with_tokenizer(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    inputs = _inputs(tok, batch=True)
    new = _continuation(model, inputs, n=14)
    # a stop string from the continuation's middle that decodes cleanly (byte-level pieces may not)
    stop = next(text for i in range(4, 12) if "\ufffd" not in (text := tok.decode(new[i:i + 2])) and text.strip())
    return {"one": model.generate(**inputs, stop_strings=stop, tokenizer=tok, max_new_tokens=14),
            "list": model.generate(**inputs, stop_strings=[stop, "zzz"], tokenizer=tok, max_new_tokens=14)}


class BanEveryOtherToken:
    """A user's logits processor, duck-typed as transformers' LogitsProcessor: ``(input_ids, scores) -> scores``."""

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, 1::2] = -float("inf")
        return scores


@idiom
def user_logits_processor_callable(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)

    def prefer_short_ids(input_ids, scores):
        return scores - torch.arange(scores.shape[-1]) * 0.01

    return {"class": model.generate(**_inputs(tok, batch=True), logits_processor=[BanEveryOtherToken()],
                                    max_new_tokens=8),
            "function": model.generate(**_inputs(tok), logits_processor=[prefer_short_ids], max_new_tokens=8)}


@idiom
def text_iterator_streamer_text(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2_json)
    inputs = _inputs(tok)
    streamer = lib.TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    out = model.generate(**inputs, streamer=streamer, max_new_tokens=12)
    with_prompt = lib.TextIteratorStreamer(tok)
    model.generate(**inputs, streamer=with_prompt, max_new_tokens=5)
    return {"text": "".join(streamer), "decoded": tok.decode(out[0, inputs["input_ids"].shape[1]:]),
            "with_prompt": "".join(with_prompt)}


@idiom
def text_streamer_prints_the_text(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        model.generate(**_inputs(tok), streamer=lib.TextStreamer(tok, skip_prompt=True), max_new_tokens=12)
    return printed.getvalue()


# --- generation config -----------------------------------------------------------------------------------------------

#: What the checkpoints' generation_config.json files set (tests/compat/checkpoints.py). Idioms compare the fields a
#: file or a constructor sets: an unset field reads None in transformers 5 (its default applies inside generate) and
#: may read the default itself elsewhere (docs/migrating.md); what generate does with it is compared by the ids.
FILE_FIELDS = ("max_new_tokens", "eos_token_id", "bos_token_id", "pad_token_id", "repetition_penalty",
               "no_repeat_ngram_size")
SAMPLING_FIELDS = ("do_sample", "top_k", "temperature", "max_new_tokens", "eos_token_id", "bos_token_id",
                   "pad_token_id")
CONSTRUCTED_FIELDS = ("do_sample", "top_p", "top_k", "temperature", "max_new_tokens", "eos_token_id",
                      "repetition_penalty")


@idiom
def generation_config_json_read_into_model_and_used(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2_generation_config)
    return {"config": fields(model.generation_config, *FILE_FIELDS),
            "default": model.generate(**_inputs(tok, batch=True)),
            "override": model.generate(**_inputs(tok, batch=True), max_new_tokens=3, repetition_penalty=1.0)}


@idiom
def generation_config_json_with_sampling_defaults(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2_sampling_config)
    lib.set_seed(11)
    sampled = model.generate(**_inputs(tok, batch=True))
    return {"config": fields(model.generation_config, *SAMPLING_FIELDS), "sampled": sampled,
            "greedy": model.generate(**_inputs(tok), do_sample=False)}


@idiom
def model_generation_config_without_a_file(lib, ckpt):
    model, _ = _lm(lib, ckpt.gpt2)  # no generation_config.json: the token ids come from config.json
    return fields(model.generation_config, "bos_token_id", "eos_token_id", "pad_token_id")


@idiom
def model_generation_config_edited_in_place(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    model.generation_config.max_new_tokens = 5
    model.generation_config.num_beams = 2
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.generate(**_inputs(tok, batch=True))


@idiom
def generation_config_object_passed_to_generate(lib, ckpt):
    model, tok = _lm(lib, ckpt.gpt2)
    config = lib.GenerationConfig(max_new_tokens=6, num_beams=2, no_repeat_ngram_size=2,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return {"as_is": model.generate(**_inputs(tok, batch=True), generation_config=config),
            "overridden": model.generate(**_inputs(tok, batch=True), generation_config=config, num_beams=1)}


@idiom
def generation_config_save_and_load_in_both_directions(lib, ckpt):
    config = lib.GenerationConfig(do_sample=True, top_p=0.9, top_k=7, temperature=0.6, max_new_tokens=5,
                                  eos_token_id=[0, 3], repetition_penalty=1.1)
    folder = ckpt.tmp()
    config.save_pretrained(folder)
    same, other = lib.GenerationConfig.from_pretrained(folder), ckpt.other(lib).GenerationConfig.from_pretrained(folder)
    return {"same": fields(same, *CONSTRUCTED_FIELDS), "other": fields(other, *CONSTRUCTED_FIELDS),
            "dict": {k: v for k, v in config.to_dict().items() if k in CONSTRUCTED_FIELDS}}


@idiom
def model_save_pretrained_writes_generation_config_back(lib, ckpt):
    model, _ = _lm(lib, ckpt.gpt2_generation_config)
    model.generation_config.num_beams = 2
    folder = ckpt.tmp()
    model.save_pretrained(folder)
    other = ckpt.other(lib).GenerationConfig.from_pretrained(folder)
    return {"files": sorted(p.name for p in folder.iterdir() if p.suffix == ".json"),
            "other": fields(other, *FILE_FIELDS, "num_beams")}
