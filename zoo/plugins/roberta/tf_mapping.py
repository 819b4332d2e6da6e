"""RoBERTa's TensorFlow names: transformers' TFRoberta* classes in ``tf_model.h5`` (RoBERTa was released for
fairseq, so there is no TF1 release layout), declared as data for zoo.convert (see zoo/convert/mapping.py).
"""

from __future__ import annotations

from zoo.convert.mapping import KERAS_RENAMES, TFLayout, TFMapping

TRANSFORMERS_TF_ROBERTA = TFLayout(
    name="transformers-tf-roberta",
    description="transformers' TFRoberta* classes (tf_model.h5): tf_roberta_model/roberta/encoder/layer_._0/...",
    detect=r"^(tf_\w+/)?roberta/embeddings/",
    renames=KERAS_RENAMES,
    tasks=(
        ("masked-lm", r"^lm_head\."),
        ("question-answering", r"^qa_outputs\."),
        ("sequence-classification", r"^classifier\.out_proj\."),
        ("token-classification", r"^classifier\.weight$"),
    ),
)

TF_MAPPING = TFMapping(model_type="roberta", layouts=(TRANSFORMERS_TF_ROBERTA,))
