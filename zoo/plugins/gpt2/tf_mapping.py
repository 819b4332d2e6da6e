"""GPT-2's TensorFlow names: OpenAI's release (TF1 ``model.ckpt`` of openai/gpt-2's model.py) and transformers'
TF classes (``tf_model.h5``), declared as data for zoo.convert (see zoo/convert/mapping.py).

OpenAI's ``conv1d`` weights ``w`` are ``[1, in, out]``: with the leading axis dropped they are the ``[in, out]``
that transformers' (and zoo's) Conv1D store, so nothing is transposed; the LM head is the word embeddings
(``model/wte``), tied. transformers' TFConv1D stores ``weight`` ``[in, out]`` too and its ``bias`` as ``[1, out]``.
"""

from __future__ import annotations

from zoo.convert.mapping import KERAS_LEAVES, KERAS_RENAMES, TFLayout, TFMapping

OPENAI_GPT2 = TFLayout(
    name="openai-gpt2",
    description="OpenAI's GPT-2 release: model/wte, model/wpe, model/h0/attn/c_attn/w, model/ln_f/g",
    detect=r"^model/wte$",
    renames=(
        (r"^model/", "transformer/"),
        (r"^transformer/(wte|wpe)$", r"transformer/\1/w"),  # embedding tables are bare variables
        (r"/h(\d+)/", r"/h/\1/"),
    ),
    leaves={"w": ("weight", "squeeze"), "g": ("weight", "none"), "b": ("bias", "none")},
    tasks=(("causal-lm", r"^transformer\.wte\."),),  # the LM head is the (tied) word embeddings
)

TRANSFORMERS_TF_GPT2 = TFLayout(
    name="transformers-tf-gpt2",
    description="transformers' TFGPT2* classes (tf_model.h5): tf_gpt2_lm_head_model/transformer/h_._0/...",
    detect=r"^(tf_\w+/)?transformer/(wte|wpe|h_\._\d+)/",
    renames=KERAS_RENAMES,
    leaves={**KERAS_LEAVES, "bias": ("bias", "squeeze")},  # TFConv1D's bias is [1, out]
    tasks=(("sequence-classification", r"^score\."), ("causal-lm", r"^transformer\.wte\.")),
)

TF_MAPPING = TFMapping(
    model_type="gpt2",
    layouts=(OPENAI_GPT2, TRANSFORMERS_TF_GPT2),
    release_configs={"hparams.json": "zoo.convert.release:from_gpt2_hparams"},
    release_tokenizer="zoo.convert.release:gpt2_release_tokenizer",
)
