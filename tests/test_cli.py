"""The zoo command: the main job (similarity) on the embedded checkpoint, plugins listing, error handling."""

from __future__ import annotations

import json

import pytest

from zoo.cli import main


def test_similarity_ranks_by_meaning(minilm, capsys):
    assert main(["similarity", "--model", str(minilm), "--json", "--top-k", "2", "-q", "A man is eating pasta.",
                 "A man is eating food.", "A monkey is playing drums.", "The girl is carrying a baby."]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["matches"][0]["sentence"] == "A man is eating food."
    assert row["matches"][0]["score"] > row["matches"][1]["score"]


def test_similarity_scores_equal_transformers_mean_pooling(minilm):
    import torch
    import transformers

    from zoo.embedding import SentenceEmbedder

    sentences = ["A man is eating food.", "Short.", "A much longer sentence with many more words in it, to pad."]
    ours = SentenceEmbedder(str(minilm)).encode(sentences)
    tok = transformers.AutoTokenizer.from_pretrained(minilm)
    model = transformers.AutoModel.from_pretrained(minilm).eval()
    batch = tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    theirs = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_plugins_lists_builtin_bert(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    bert = next(r for r in rows if r["name"] == "zoo.plugins.bert")
    assert "masked-lm" in bert["architectures"]["bert"] and bert["hooks"] == ["register_architectures"]
    assert main(["plugins"]) == 0
    assert "bert:" in capsys.readouterr().out


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["similarity", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and "does not exist" in err and "Traceback" not in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "similarity" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["similarity", "--help"]])
def test_help(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
