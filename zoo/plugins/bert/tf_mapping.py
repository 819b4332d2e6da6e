"""BERT's TensorFlow names: Google's original release (TF1 ``bert_model.ckpt``) and transformers' TF classes
(``tf_model.h5``), declared as data for zoo.convert (see zoo/convert/mapping.py for how a layout reads).

Google's names are those of google-research/bert modeling.py, run_pretraining.py (``cls/predictions``,
``cls/seq_relationship``), run_classifier.py (``output_weights``/``output_bias`` at the top level, ``[num_labels,
hidden]``) and run_squad.py (``cls/squad``), as transformers' ``load_tf_weights_in_bert`` read them. Their
``output_weights`` are used through ``tf.matmul(x, w, transpose_b=True)``, so they are already ``[out, in]`` and
are not transposed; every ``kernel`` is ``[in, out]`` and is.
"""

from __future__ import annotations

from zoo.convert.mapping import KERAS_LEAVES, KERAS_RENAMES, TFLayout, TFMapping

#: The heads of a checkpoint, by a key only that head has (the first match wins).
_HEADS = (
    ("pretraining", r"^cls\.seq_relationship\."),
    ("masked-lm", r"^cls\.predictions\."),
    ("question-answering", r"^qa_outputs\."),
    ("sequence-classification", r"^classifier\."),
)

GOOGLE_BERT = TFLayout(
    name="google-bert",
    description="Google's BERT release: bert/embeddings/word_embeddings, bert/encoder/layer_0/..., cls/...",
    detect=r"^bert/embeddings/word_embeddings$",
    renames=(
        (r"^output_(weights|bias)$", r"classifier/output_\1"),  # run_classifier.py's head
        (r"^cls/squad/", "qa_outputs/"),  # run_squad.py's head
        (r"^(bert/embeddings/\w+_embeddings)$", r"\1/weight"),  # embedding tables are bare variables
        (r"/layer_(\d+)/", r"/layer/\1/"),
    ),
    leaves={**KERAS_LEAVES, "output_weights": ("weight", "none"), "output_bias": ("bias", "none")},
    tasks=_HEADS,
    num_labels=r"^classifier\.weight$",
)

TRANSFORMERS_TF_BERT = TFLayout(
    name="transformers-tf-bert",
    description="transformers' TFBert* classes (tf_model.h5): tf_bert_model/bert/encoder/layer_._0/...",
    detect=r"^(tf_\w+/)?bert/embeddings/word_embeddings/weight$",
    renames=KERAS_RENAMES,
    tasks=_HEADS,
)

TF_MAPPING = TFMapping(
    model_type="bert",
    layouts=(GOOGLE_BERT, TRANSFORMERS_TF_BERT),
    release_configs={"bert_config.json": "zoo.convert.release:from_bert_config"},
    release_tokenizer="zoo.convert.release:bert_release_tokenizer",
)
