"""DistilBERT's TensorFlow names: transformers' TFDistilBert* classes in ``tf_model.h5``, declared as data for
zoo.convert (see zoo/convert/mapping.py in zoo-hub); a third-party plugin supports TF import this way.
"""

from __future__ import annotations

from zoo.convert.mapping import KERAS_RENAMES, TFLayout, TFMapping

TRANSFORMERS_TF_DISTILBERT = TFLayout(
    name="transformers-tf-distilbert",
    description="transformers' TFDistilBert* classes (tf_model.h5): tf_distil_bert_model/distilbert/transformer/"
                "layer_._0/...",
    detect=r"^(tf_\w+/)?distilbert/embeddings/",
    renames=KERAS_RENAMES,
    tasks=(
        ("masked-lm", r"^vocab_projector\."),
        ("question-answering", r"^qa_outputs\."),
        ("sequence-classification", r"^pre_classifier\."),
        ("token-classification", r"^classifier\."),
    ),
)

TF_MAPPING = TFMapping(model_type="distilbert", layouts=(TRANSFORMERS_TF_DISTILBERT,))
