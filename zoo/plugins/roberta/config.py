"""RobertaConfig: the fields of transformers' RobertaConfig (configuration_roberta.py), same names and defaults.

RoBERTa's config is BERT's plus the special-token ids of its byte-level BPE vocabulary, so it subclasses
:class:`~zoo.plugins.bert.config.BertConfig` and changes only the defaults that differ (a plain default keeps
BERT's constraints on the field). transformers' defaults are kept even where the published checkpoints differ
(roberta-base records ``max_position_embeddings`` 514, ``type_vocab_size`` 1, ``layer_norm_eps`` 1e-5): a
config.json that leaves a key out must mean the same in both libraries.
"""

from __future__ import annotations

from typing import ClassVar

from zoo.errors import ConfigError
from zoo.plugins.bert.config import BertConfig


class RobertaConfig(BertConfig):
    model_type: ClassVar[str] = "roberta"

    vocab_size: int = 50265
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    use_cache: bool = True

    def validate(self) -> None:
        super().validate()
        if self.pad_token_id is None:
            raise ConfigError("RoBERTa needs pad_token_id: its position ids count from pad_token_id + 1 and skip "
                              "padding; set pad_token_id in config.json (1 in the published checkpoints)")
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise ConfigError(f"RobertaConfig max_position_embeddings {self.max_position_embeddings} leaves no "
                              f"position for a token: positions start after pad_token_id + 1 = {self.pad_token_id + 1}; "
                              f"fix max_position_embeddings or pad_token_id in config.json")
