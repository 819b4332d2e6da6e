"""Fine-tuning end to end: a tiny BERT checkpoint gets a new classification head, learns a toy task, is saved with
its tokenizer, and reloads in zoo and in transformers with the same predictions."""

from __future__ import annotations

import logging

import torch
import transformers

import zoo
from tests.checkpoints import make_bert

TEXTS = ["i love python", "i hate bugs", "i love the world", "i hate the bugs", "hello world is love",
         "bugs and hate", "i love hello", "the bugs i hate"]
LABELS = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])


def test_a_few_steps_lower_the_loss_and_the_saved_model_predicts_the_same(tmp_path, caplog):
    make_bert(tmp_path / "base", "base", seed=0)
    caplog.set_level(logging.WARNING)
    model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=2)
    assert any("classifier.weight" in r.getMessage() for r in caplog.records if r.name.startswith("zoo"))
    tokenizer = zoo.AutoTokenizer.from_pretrained(tmp_path / "base")
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert batch["attention_mask"].min() == 0

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return model(**batch, labels=LABELS).loss.item()

    before = eval_loss()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(12):
        optimizer.zero_grad()
        loss = model(**batch, labels=LABELS).loss
        loss.backward()
        optimizer.step()
    after = eval_loss()
    assert after < before * 0.8, (before, after)
    assert model.config.problem_type == "single_label_classification"

    out = tmp_path / "finetuned"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with torch.no_grad():
        expected = model(**batch).logits
    again = zoo.AutoModelForSequenceClassification.from_pretrained(out)
    again_tokenizer = zoo.AutoTokenizer.from_pretrained(out)
    assert again.config.num_labels == 2 and again.config.problem_type == "single_label_classification"
    again_batch = again_tokenizer(TEXTS, padding=True, return_tensors="pt")
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    hf_batch = hf_tokenizer(TEXTS, padding=True, return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(again_batch[key], batch[key]) and torch.equal(hf_batch[key], batch[key]), key
    with torch.no_grad():
        ours, theirs = again(**again_batch).logits, hf(**hf_batch).logits
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(theirs, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))
    assert (ours.argmax(-1) == LABELS).float().mean() >= 0.75  # it did learn the toy task
