"""Llama-family benchmark: zoo, transformers and llama.cpp decoding the same Qwen2.5-0.5B-shaped checkpoint.

One run, side by side, on one checkpoint of a real small model's shape (Qwen2.5-0.5B: hidden 896, 24 layers,
14 heads / 2 KV heads, intermediate 4864, vocab 151936, tied embeddings, rope_theta 1e6, rms_norm_eps 1e-6,
q/k/v biases; model_type qwen2). The weights are random (transformers' ``Qwen2ForCausalLM`` and its own init,
seed 0), saved once under benchmarks/.cache/ in float32 and, rounded, in bfloat16; llama.cpp reads the same weights
from GGUF files made once from those folders by llama.cpp's own converter (``convert_hf_to_gguf.py --outtype
bf16|f32``, optionally f16). The converter needs a tokenizer and refuses byte-level BPE tokenizers it does not know,
so each folder gets a small SentencePiece model (``tokenizer.model``, 300 pieces trained on generated text), which
the converter pads to the model's vocabulary; text is never used: the prompt is 128 random ids from a fixed seed,
the same ids for all three libraries. Batch 1, 128 new tokens, greedy, CPU, bf16 and fp32.

What is timed, per library and dtype, in interleaved repetitions (zoo, transformers, llama.cpp, then again), each
figure the median over the repetitions:

- prefill: the prompt alone, up to the first new token (``generate(max_new_tokens=1)``; llama.cpp: ``reset()``,
  ``eval(prompt)`` and the arg-max of the last logits) -> prefill tokens/s;
- decode: the same call with 128 new tokens minus the prefill call of the same repetition, over 127 steps ->
  decode tokens/s. llama.cpp decodes by ``eval([token])`` and a greedy pick from its logits per step (numpy's
  arg-max over the vocabulary, ~0.1 ms, left in: it is what a caller of its Python API pays);
- the limits, measured in the same run: memory bandwidth (the best of 3 sums over a 1 GiB buffer,
  bench_generate.SumBandwidth) read just before and just after every timed 128-token call, the higher of the two;
  bytes read per decoded token = every parameter in the model's dtype (the tied embedding once, as the LM head)
  plus the KV cache at the mean decoding position; limit tokens/s = bandwidth / bytes, and each call's decode
  tokens/s is divided by the limit read around it (median over the calls). The matmul peak: ``F.linear`` (x @ W.T)
  and ``torch.matmul`` (x @ W, W stored (in, out)) at the prefill's shapes (128 x 896 -> 4864, 128 x 4864 -> 896,
  128 x 896 -> 896, 128 x 896 -> 128) in the dtype, best of 10 each, before and after the timed calls; the peak is
  the highest. Prefill FLOPs = 2 x the non-embedding matmul parameters x 128 + the attention's causal products
  (QK^T and PV over the keys each query sees) + the LM head on the last position.

Targets (issue): zoo's decode >= 2x transformers' and >= llama.cpp's at the same precision (BF16 GGUF against bf16,
F32 against fp32), zoo's decode >= 0.8 of the bandwidth limit, zoo's prefill >= 0.8 of the matmul peak; and, in
fp32, zoo's greedy ids equal transformers' (llama.cpp's may part from them after a near-tie: the length they agree
for is printed).

``python benchmarks/bench_llama.py`` (both dtypes, 3 repetitions; a repetition of all three libraries at both dtypes
is about a minute on an idle 2-core machine, and the first run also spends a few minutes making the checkpoints and
GGUF files); ``--layers 2`` keeps the widths and shrinks the depth for a quick check of the whole run. A benchmark
measures and never asserts: exit status 0 whatever the figures, MISS rows included; a library that cannot run
(llama-cpp-python or the converter missing, a model type zoo does not know yet) gets a MISS row that says why.

llama.cpp runs in a child process of its own (:func:`isolated`), asked for each call over a pipe: in one process
with torch, the two OpenMP users slowed each other and everything after them (benchmarks/README.md has the
figures); zoo and transformers share torch and run in this one.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench_generate import CACHE, SumBandwidth, best_time, log  # also sets the offline environment

SEED = 0
PROMPT_TOKENS = 128
NEW_TOKENS = 128
TARGET_VS_TRANSFORMERS = 2.0  # zoo decode tok/s / transformers'
TARGET_VS_LLAMA_CPP = 1.0  # zoo decode tok/s / llama.cpp's at the same precision
TARGET_BANDWIDTH = 0.8  # zoo decode tok/s / bandwidth-limit tok/s
TARGET_MATMUL = 0.8  # zoo prefill GFLOP/s / matmul peak
if TYPE_CHECKING:
    import torch

DEFAULT_LLAMA_CPP_SRC = Path("/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp")

# Qwen2.5-0.5B's config.json, less its bos/eos ids: without them nothing stops a greedy run early.
QWEN2_5_0_5B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=True,
    use_sliding_window=False, max_window_layers=24, attention_dropout=0.0, initializer_range=0.02,
    bos_token_id=None, eos_token_id=None, pad_token_id=None,
)
DTYPES = {"bf16": "bfloat16", "fp32": "float32"}
GGUF_TYPES = {"bf16": "bf16", "fp32": "f32"}  # the GGUF of the same precision as each dtype


# --- checkpoints -----------------------------------------------------------------------------------------------------


def folder_for(dtype: str, layers: int) -> Path:
    depth = "" if layers == QWEN2_5_0_5B["num_hidden_layers"] else f"-{layers}layers"
    return CACHE / f"qwen2.5-0.5b-shape{depth}-{dtype}"


def sentencepiece_model() -> bytes:
    """A 300-piece SentencePiece BPE model trained on generated words: only there for llama.cpp's converter."""
    import sentencepiece

    rng = random.Random(SEED)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(500)]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))) for _ in range(3000)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=300,
                                             model_type="bpe", minloglevel=2)
    return model.getvalue()


def checkpoints(layers: int) -> dict[str, Path]:
    """Both folders (float32 and bfloat16, the same random weights), made once by transformers and reused."""
    folders = {dtype: folder_for(dtype, layers) for dtype in DTYPES}
    if all((f / "model.safetensors").is_file() for f in folders.values()):
        return folders
    log(f"creating the Qwen2.5-0.5B-shaped checkpoints ({layers} layers) in {CACHE} (once)")
    import torch
    import transformers

    torch.manual_seed(SEED)
    config = transformers.Qwen2Config(**{**QWEN2_5_0_5B, "num_hidden_layers": layers})
    model = transformers.Qwen2ForCausalLM(config).eval()
    model.generation_config.bos_token_id = model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = None
    for dtype in ("fp32", "bf16"):  # float32 first: the bfloat16 folder holds the same weights, rounded
        folder = folders[dtype]
        model.to(getattr(torch, DTYPES[dtype]))
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        model.save_pretrained(tmp)
        for stale in [*folder.glob("*"), *CACHE.glob(f"{folder.name}.*.gguf")]:  # from an interrupted run
            stale.unlink()
        if folder.exists():
            folder.rmdir()
        tmp.replace(folder)
    del model
    gc.collect()
    return folders


def converter_path(src: str | None) -> tuple[Path | None, str]:
    """llama.cpp's convert_hf_to_gguf.py under ``src`` (else $LLAMA_CPP_SRC, else the default), or why not."""
    source = src or os.environ.get("LLAMA_CPP_SRC") or (str(DEFAULT_LLAMA_CPP_SRC)
                                                        if DEFAULT_LLAMA_CPP_SRC.is_dir() else None)
    if source is None:
        return None, ("no llama.cpp source tree to convert with: pass --llama-cpp-src DIR or set LLAMA_CPP_SRC "
                      "(the vendor/llama.cpp folder of llama-cpp-python's sdist)")
    path = Path(source) / "convert_hf_to_gguf.py"
    if not path.is_file():
        return None, f"{path} does not exist; point --llama-cpp-src at a llama.cpp source tree"
    return path, ""


# Runs the converter in this process after the Python source in argv[1] (a patch, e.g. of its pre-tokenizer table)
RUN_PATCHED = ("import runpy, sys; from pathlib import Path; here = Path(sys.argv[2]).parent; "
               "sys.path[:0] = [str(here), str(here / 'gguf-py')]; exec(sys.argv[1]); sys.argv = sys.argv[2:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")


def gguf_file(folder: Path, outtype: str, converter: Path, patch: str = "") -> tuple[Path | None, str]:
    """``folder`` converted by llama.cpp's converter at ``outtype`` (made once, beside the folder), or why not.
    ``patch``: Python source run in the converter's process before it starts (see RUN_PATCHED)."""
    path = folder.with_name(f"{folder.name}.{outtype}.gguf")
    if path.is_file():
        return path, ""
    log(f"converting {folder.name} to {path.name} with {converter} (once)")
    if not any((folder / name).is_file() for name in ("tokenizer.model", "tokenizer.json")):
        (folder / "tokenizer.model").write_bytes(sentencepiece_model())  # what the converter reads the vocabulary from
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    launch = [sys.executable, "-c", RUN_PATCHED, patch] if patch else [sys.executable]
    done = subprocess.run([*launch, str(converter), str(folder), "--outtype", outtype, "--outfile", str(tmp)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return None, f"llama.cpp's converter failed (exit {done.returncode}): {tail}"
    tmp.replace(path)
    return path, ""


# --- the three libraries ---------------------------------------------------------------------------------------------


@dataclass
class Library:
    """One row of the table: how to generate ``n`` greedy tokens (returns the new ids), or why it cannot."""

    name: str
    generate: Callable[[int], list[int]] | None = None
    why_not: str = ""
    close: Callable[[], None] = lambda: None
    prefill: list[float] = field(default_factory=list)  # seconds, per repetition
    full: list[float] = field(default_factory=list)
    readings: list[float] = field(default_factory=list)  # bandwidth (bytes/s) around each full call
    ids: list[int] | None = None
    weight_bytes: int = 0  # zoo rows: the bytes a step reads: parameters and buffers, each storage once, no row-read embedding

    def decode_tps(self, new: int) -> list[float]:
        return [(new - 1) / (f - p) for f, p in zip(self.full, self.prefill)]


def _serve(conn, module: str, factory: str, args: tuple) -> None:
    """The child side of :func:`isolated`: make the Library, then generate on request until told to stop (None)."""
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        made = getattr(importlib.import_module(module), factory)(*args)
        lib = made() if callable(made) else made  # a loader (bench_anchors' ct2_loader) or the Library itself
    except Exception as exc:
        conn.send(("error", f"could not load: {first_line(exc)}"))
        return
    conn.send(("ready", lib.name, lib.why_not, lib.generate is not None))
    while (n := conn.recv()) is not None:
        try:
            conn.send(("ok", lib.generate(n)))
        except Exception as exc:
            conn.send(("error", first_line(exc)))
    lib.close()


def isolated(name: str, module: str, factory: str, *args: object) -> Library:
    """The engine ``module.factory(*args)`` makes (a Library, or a function returning one), loaded and run in a child
    process of its own; the returned row's ``generate`` asks the child and waits (a pipe round trip, ~0.1 ms, inside
    the timing). Why: an engine with its own OpenMP runtime and thread pool (CTranslate2, llama.cpp) changes the
    state of the process it runs in; after one CTranslate2 generate, zoo's bf16 GPT-2 decode in the same process ran
    ~15% slower for the rest of the run (72-75 against 85-90 tok/s; a sleep in its place changed nothing). Each
    engine in its own process measures each engine, not the one before it. A child that dies (a segfault) makes a
    MISS row, not the end of the run."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from this one's threads
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, module, factory, args), daemon=True)
    process.start()
    child.close()

    def ask(message: object) -> tuple:
        parent.send(message)
        return parent.recv()

    try:
        reply = parent.recv()
    except EOFError:
        process.join(5)
        return Library(name, why_not=f"its process ended while loading (exit status {process.exitcode})")
    if reply[0] == "error":
        process.join(5)
        return Library(name, why_not=reply[1])
    _, child_name, why_not, ready = reply
    if not ready:
        parent.send(None)
        process.join(5)
        return Library(child_name, why_not=why_not)

    def generate(n: int) -> list[int]:
        try:
            kind, value = ask(n)
        except (EOFError, BrokenPipeError):
            raise RuntimeError(f"its process ended (exit status {process.exitcode})") from None
        if kind == "error":
            raise RuntimeError(value)
        return value

    def close() -> None:
        try:
            parent.send(None)
        except (BrokenPipeError, OSError):
            pass
        process.join(30)
        if process.is_alive():
            process.kill()

    return Library(child_name, generate, close=close)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def load_zoo(folder: Path, dtype: torch.dtype, prompt: torch.Tensor, label: str = "zoo", **load: object) -> Library:
    """zoo's model as a row named ``label``; ``load``: more from_pretrained keywords (bench_anchors: quantization)."""
    try:
        import zoo

        model = zoo.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **load).eval()
    except Exception as exc:  # the benchmark goes on without it and says why
        return Library(label, why_not=f"zoo could not load the checkpoint: {first_line(exc)}")
    path = "forward"
    try:
        step = model.decoding_step(model.new_kv_cache(1, prompt.shape[1] + 1))
        path = type(step).__name__ if step is not None else "forward"
    except Exception as exc:
        path = f"unknown ({first_line(exc)})"
    log(f"{label} decodes through {path}")
    tensors = {t.data_ptr(): t for t in (*model.parameters(), *model.buffers())}  # tied weights once
    # an input embedding matrix that is not also the output projection is read one row a token, not whole (an
    # untied model's, or an int8 model's float one beside its int8 output copy)
    embedding = model.get_input_embeddings().weight
    if getattr(model.get_output_embeddings(), "weight", None) is not embedding:
        tensors.pop(embedding.data_ptr(), None)
    tensors = tensors.values()

    def generate(n: int) -> list[int]:
        out = model.generate(prompt, max_new_tokens=n, do_sample=False, eos_token_id=[])
        return out[0, prompt.shape[1]:].tolist()

    return Library(f"{label} ({path})" if path != "forward" else label, generate,
                   weight_bytes=sum(t.numel() * t.element_size() for t in tensors))


def load_transformers(folder: Path, dtype: torch.dtype, prompt: torch.Tensor) -> tuple[Library, int]:
    """transformers' model and the bytes of its parameters (``parameters()`` yields the tied embedding once)."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()  # also bench_anchors' GPT-2
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    model.generation_config.eos_token_id = None  # exactly n new tokens, no early stop
    model.generation_config.pad_token_id = None
    mask = torch.ones_like(prompt)

    def generate(n: int) -> list[int]:
        out = model.generate(prompt, attention_mask=mask, max_new_tokens=n, do_sample=False)
        return out[0, prompt.shape[1]:].tolist()

    return Library("transformers", generate), weight_bytes


def load_llama_cpp(path: Path, label: str, threads: int, prompt_ids: list[int], n_ctx: int) -> Library:
    import numpy as np
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    n_vocab = llm.n_vocab()

    def pick() -> int:  # greedy: the arg-max of the logits of the last evaluated position
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        return int(logits.argmax())

    def generate(n: int) -> list[int]:
        llm.reset()  # forget the previous call's KV cache: the prompt is computed again
        llm.eval(prompt_ids)
        ids = [pick()]
        for _ in range(n - 1):
            llm.eval([ids[-1]])  # one llama_decode of one token per step
            ids.append(pick())
        return ids

    return Library(f"llama.cpp {label}", generate, close=llm.close)


# --- limits ----------------------------------------------------------------------------------------------------------


def prefill_shapes(config: dict) -> list[tuple[int, int]]:
    """(in, out) of the decoder's matmuls at the prefill."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    kv = config["num_key_value_heads"] * hidden // config["num_attention_heads"]
    return [(hidden, inter), (inter, hidden), (hidden, hidden), (hidden, kv)]


def matmul_rates(dtype: torch.dtype, tokens: int, shapes: list[tuple[int, int]]) -> dict[str, float]:
    """FLOP/s of F.linear and torch.matmul at each shape in ``dtype``, best of 10."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(SEED)
    rates = {}
    with torch.inference_mode():
        for n_in, n_out in shapes:
            x = torch.randn(tokens, n_in).to(dtype)  # (T, in)
            weight = torch.randn(n_out, n_in).to(dtype)  # (out, in): nn.Linear's layout
            weight_t = weight.t().contiguous()  # (in, out)
            flops = 2 * tokens * n_in * n_out
            rates[f"F.linear {tokens}x{n_in}->{n_out}"] = flops / best_time(lambda: F.linear(x, weight), 10)
            rates[f"matmul {tokens}x{n_in}->{n_out}"] = flops / best_time(lambda: torch.matmul(x, weight_t), 10)
    return rates


def prefill_flops(config: dict, layers: int, tokens: int) -> float:
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    matmul_params = layers * (2 * hidden * hidden + 2 * hidden * config["num_key_value_heads"] * head_dim
                              + 3 * hidden * config["intermediate_size"])  # q, o; k, v; gate, up, down
    causal_pairs = tokens * (tokens + 1) // 2  # (query, key) pairs a causal prompt computes
    attention = layers * heads * causal_pairs * 2 * (2 * head_dim)  # q.k and p.v, a multiply-add each
    return 2 * matmul_params * tokens + attention + 2 * hidden * config["vocab_size"]


def bytes_per_token(weight_bytes: int, config: dict, layers: int, element: int, position: float) -> float:
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    kv_per_position = 2 * layers * config["num_key_value_heads"] * head_dim * element  # keys and values
    return weight_bytes + kv_per_position * position


# --- the run ---------------------------------------------------------------------------------------------------------


def agreement(a: list[int] | None, b: list[int] | None) -> int:
    """How many leading ids two greedy runs share."""
    if a is None or b is None:
        return 0
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@dataclass
class Section:
    """The figures of one dtype."""

    dtype: str
    libraries: list[Library]
    rates: dict[str, float]  # FLOP/s of each matmul timing
    bytes_per_token: float
    weight_bytes: int
    flops: float  # of one prefill


def measure(dtype_name: str, args: argparse.Namespace, folders: dict[str, Path], converter: Path | None,
            why_no_llama: str, bandwidth: SumBandwidth) -> Section:
    """Load the three libraries at one dtype, time them interleaved, free them."""
    import torch

    dtype = getattr(torch, DTYPES[dtype_name])
    folder = folders[dtype_name]
    generator = torch.Generator().manual_seed(SEED)
    prompt = torch.randint(0, QWEN2_5_0_5B["vocab_size"], (1, args.prompt_tokens), generator=generator)  # (1, T)
    threads = torch.get_num_threads()

    log(f"{dtype_name}: loading zoo, transformers and llama.cpp")
    libraries = [load_zoo(folder, dtype, prompt)]
    hf, weight_bytes = load_transformers(folder, dtype, prompt)
    libraries.append(hf)
    ggufs = [(GGUF_TYPES[dtype_name].upper(), folder, GGUF_TYPES[dtype_name])]
    if dtype_name == "bf16" and args.with_f16:  # F16 from the float32 folder: one rounding, not two
        ggufs.append(("F16", folders["fp32"], "f16"))
    for label, source, outtype in ggufs:
        why, path = why_no_llama, None
        if not why:
            path, why = gguf_file(source, outtype, converter)
        if path is not None:  # in a process of its own (isolated: its runtime would slow the others)
            libraries.append(isolated(f"llama.cpp {label}", "bench_llama", "load_llama_cpp", path, label, threads,
                                      prompt[0].tolist(), max(512, args.prompt_tokens + args.new_tokens)))
            continue
        libraries.append(Library(f"llama.cpp {label}", why_not=why))

    log(f"{dtype_name}: warming up")
    with torch.inference_mode():
        for lib in libraries:
            if lib.generate is not None:
                try:
                    lib.generate(4)
                except Exception as exc:
                    lib.why_not, lib.generate = f"generate failed: {first_line(exc)}", None
    shapes = prefill_shapes(QWEN2_5_0_5B)
    rates = matmul_rates(dtype, args.prompt_tokens, shapes)

    log(f"{dtype_name}: timing {args.reps} x (prompt + {args.new_tokens} new tokens, prompt alone) per library, "
        f"interleaved, each long call between two bandwidth readings")
    with torch.inference_mode():
        for _ in range(args.reps):
            for lib in libraries:
                if lib.generate is None:
                    continue
                try:
                    before = bandwidth()
                    start = time.perf_counter()
                    ids = lib.generate(args.new_tokens)
                    lib.full.append(time.perf_counter() - start)
                    lib.readings.append(max(before, bandwidth()))
                    lib.ids = lib.ids or ids
                    start = time.perf_counter()
                    lib.generate(1)
                    lib.prefill.append(time.perf_counter() - start)
                except Exception as exc:  # keep the repetitions it completed, run no more of it
                    del lib.full[len(lib.prefill):], lib.readings[len(lib.prefill):]
                    lib.why_not, lib.generate = f"generate failed: {first_line(exc)}", None
    rates = {k: max(v, rates[k]) for k, v in matmul_rates(dtype, args.prompt_tokens, shapes).items()}

    for lib in libraries:  # free the models before the next dtype: the closures hold them
        lib.close()
        lib.generate, lib.close = None, (lambda: None)
    gc.collect()
    layers = args.layers
    position = args.prompt_tokens + args.new_tokens / 2  # the mean length of the cache a decoding step reads
    return Section(dtype_name, libraries, rates,
                   bytes_per_token(weight_bytes, QWEN2_5_0_5B, layers, dtype.itemsize, position), weight_bytes,
                   prefill_flops(QWEN2_5_0_5B, layers, args.prompt_tokens))


# --- the report ------------------------------------------------------------------------------------------------------


def verdict(value: float | None, target: float, why_not: str = "") -> str:
    if value is None:
        return f"MISS ({why_not})" if why_not else "MISS"
    return "PASS" if value >= target else "MISS"


def report(section: Section, args: argparse.Namespace) -> list[str]:
    """Print one dtype's figures; returns its target lines for the summary."""
    new, tokens = args.new_tokens, args.prompt_tokens
    libs = section.libraries
    ran = [lib for lib in libs if lib.full]
    peak = max(section.rates.values())
    readings = [r for lib in ran for r in lib.readings]
    print(f"--- {section.dtype} ---")
    print(f"bytes read per decoded token: {section.weight_bytes / 1e9:.3f} GB of parameters + "
          f"{(section.bytes_per_token - section.weight_bytes) / 1e6:.1f} MB of KV cache at the mean position "
          f"({tokens + new / 2:.0f}) = {section.bytes_per_token / 1e9:.3f} GB")
    if readings:
        print(f"memory bandwidth around the timed calls (1 GiB sum, best of 3, before and after each): "
              f"{min(readings) / 1e9:.1f}-{max(readings) / 1e9:.1f} GB/s -> limit "
              f"{min(readings) / section.bytes_per_token:.1f}-{max(readings) / section.bytes_per_token:.1f} tok/s")
    print("matmul rates at the prefill's shapes (best of 10, before and after): "
          + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in section.rates.items()) + " GFLOP/s")
    print(f"matmul peak {peak / 1e9:.0f} GFLOP/s; one prefill is {section.flops / 1e9:.2f} GFLOP "
          f"-> limit {peak / section.flops * tokens:.0f} prompt tok/s")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    figures = {}
    for lib in ran:
        decode = lib.decode_tps(new)
        fractions = [d / (r / section.bytes_per_token) for d, r in zip(decode, lib.readings)]
        figures[lib.name] = dict(prefill=tokens / med(lib.prefill), decode=med(decode), bandwidth=med(fractions),
                                 matmul=section.flops / med(lib.prefill) / peak, calls=fractions)
    zoo = next((lib for lib in libs if lib.name.startswith("zoo")), None)
    hf = next(lib for lib in libs if lib.name == "transformers")
    same = next(lib for lib in libs if lib.name.startswith("llama.cpp"))  # the same precision comes first

    header = ["library", "prefill tok/s", "x hf", "x llama", "decode tok/s", "ms/tok", "x hf", "x llama",
              "of bw limit", "of matmul peak"]
    def ratio(lib: Library, key: str, other: Library) -> str:
        return f"{figures[lib.name][key] / figures[other.name][key]:.2f}" if other.name in figures else "-"

    rows = []
    for lib in libs:
        if lib.name not in figures:
            rows.append([lib.name, f"MISS: {lib.why_not}"])
            continue
        f = figures[lib.name]
        rows.append([lib.name, f"{f['prefill']:.0f}", ratio(lib, "prefill", hf), ratio(lib, "prefill", same),
                     f"{f['decode']:.1f}", f"{1000 / f['decode']:.1f}", ratio(lib, "decode", hf),
                     ratio(lib, "decode", same), f"{f['bandwidth']:.2f}", f"{f['matmul']:.2f}"])
    widths = [max(len(header[i]), *(len(r[i]) for r in rows if len(r) > 2)) if i else
              max(len(header[0]), *(len(r[0]) for r in rows)) for i in range(len(header))]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) if len(r) > 2
              else f"{r[0].ljust(widths[0])}  {r[1]}")
    print(f"(medians of {args.reps} repetitions; x hf, x llama: this row's tok/s over transformers' and over "
          f"{same.name}'s; of bw limit: each call's decode tok/s over the limit read around it, median)")
    if zoo is not None and zoo.name in figures:
        print(f"zoo's decode fraction at each call: {', '.join(f'{x:.2f}' for x in figures[zoo.name]['calls'])}")

    d = section.dtype
    zf = figures.get(zoo.name) if zoo is not None else None
    why = "" if zf else (zoo.why_not if zoo is not None else "no zoo row")
    lines = []

    def target(what: str, value: float | None, goal: float, unit: str = "", why_not: str = why) -> None:
        shown = f"{value:.2f}{unit}" if value is not None else "-"
        lines.append(f"{d} {what:<34} {shown:>6} (target >= {goal}{unit}) {verdict(value, goal, why_not)}")

    hf_f, same_f = figures.get(hf.name), figures.get(same.name)
    target("zoo decode / transformers", zf["decode"] / hf_f["decode"] if zf and hf_f else None,
           TARGET_VS_TRANSFORMERS, "x", why or hf.why_not)
    target(f"zoo decode / {same.name}", zf["decode"] / same_f["decode"] if zf and same_f else None,
           TARGET_VS_LLAMA_CPP, "x", why or same.why_not)
    target("zoo decode / bandwidth limit", zf["bandwidth"] if zf else None, TARGET_BANDWIDTH)
    target("zoo prefill / matmul peak", zf["matmul"] if zf else None, TARGET_MATMUL)
    equal = zf is not None and hf_f is not None and zoo.ids == hf.ids
    agree = agreement(hf.ids, zoo.ids if zoo is not None else None)
    ids_line = (f"{d} greedy ids, zoo == transformers: {equal} (agree for {agree} of {new})"
                if zf and hf_f else f"{d} greedy ids, zoo == transformers: not compared ({why or hf.why_not})")
    if d == "fp32":
        ids_line += f" {'PASS' if equal else 'MISS'}"
    lines.append(ids_line)
    for lib in libs:
        if lib.name.startswith("llama.cpp") and lib.ids is not None:
            lines.append(f"{d} greedy ids, {lib.name} agrees with transformers for {agreement(hf.ids, lib.ids)} of "
                         f"{new}" + (f", with zoo for {agreement(zoo.ids, lib.ids)}" if zf else ""))
    print()
    return lines


def llama_cpp_status(args: argparse.Namespace) -> tuple[Path | None, str, str]:
    """(converter, why llama.cpp rows are skipped or "", llama-cpp-python's version and build)."""
    if args.skip_llama_cpp:
        return None, "skipped (--skip-llama-cpp)", "skipped"
    try:
        import llama_cpp
    except ImportError as exc:
        return None, (f"llama-cpp-python is not installed ({first_line(exc)}); see benchmarks/README.md for "
                      f"building it from source"), "not installed"
    try:
        import gguf  # noqa: F401  the converter's own dependency
        import sentencepiece  # noqa: F401  needed to write tokenizer.model
    except ImportError as exc:
        return None, f"llama.cpp's converter needs gguf and sentencepiece: {first_line(exc)}", llama_cpp.__version__
    converter, why = converter_path(args.llama_cpp_src)
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    features = " ".join(part.strip() for part in info.split("|") if "= 1" in part or "CPU" in part)
    return converter, why, f"{llama_cpp.__version__} ({features[:160]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("bf16", "fp32", "both"), default="both")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per library (interleaved)")
    parser.add_argument("--layers", type=int, default=QWEN2_5_0_5B["num_hidden_layers"],
                        help="decoder layers (default 24, the real depth; fewer for a quick check)")
    parser.add_argument("--threads", type=int, default=None, help="threads of all three (default: torch's choice)")
    parser.add_argument("--prompt-tokens", type=int, default=PROMPT_TOKENS)
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--skip-llama-cpp", action="store_true", help="no llama.cpp rows (MISS for its targets)")
    parser.add_argument("--llama-cpp-src", default=None,
                        help="llama.cpp source tree with convert_hf_to_gguf.py (default: $LLAMA_CPP_SRC, else "
                             f"{DEFAULT_LLAMA_CPP_SRC} if it exists)")
    parser.add_argument("--with-f16", action="store_true", help="add a llama.cpp F16 row beside BF16")
    parser.add_argument("--omp-wait-policy", choices=("default", "passive", "active"), default="default",
                        help="set OMP_WAIT_POLICY for all three (llama.cpp's process inherits it)")
    args = parser.parse_args()
    if args.new_tokens < 2 or args.prompt_tokens < 1 or args.reps < 1 or args.layers < 1:
        parser.error("--new-tokens must be >= 2 (decode = long call - prompt call), --prompt-tokens, --reps and "
                     "--layers >= 1")
    if args.omp_wait_policy != "default":  # read by OpenMP when torch loads, so set before the import
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    load_before = os.getloadavg()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    import zoo

    converter, why_no_llama, llama_version = llama_cpp_status(args)
    if why_no_llama:
        log(f"llama.cpp rows: MISS ({why_no_llama})")
    folders = checkpoints(args.layers)
    bandwidth = SumBandwidth()
    sections = [measure(d, args, folders, converter, why_no_llama, bandwidth)
                for d in (("bf16", "fp32") if args.dtype == "both" else (args.dtype,))]
    del bandwidth
    load_after = os.getloadavg()

    depth = "" if args.layers == QWEN2_5_0_5B["num_hidden_layers"] else \
        f", shrunk to {args.layers} layers (same widths; not the real model's figures)"
    print(f"Qwen2.5-0.5B-shaped qwen2 checkpoint (random weights, seed 0){depth}, batch 1, {args.prompt_tokens}-token "
          f"prompt, {args.new_tokens} new tokens, greedy, CPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads for all three libraries, OMP_WAIT_POLICY "
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after")
    print(f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"zoo {zoo.__version__}, llama-cpp-python {llama_version}")
    print()
    summary = []
    for section in sections:
        summary += report(section, args)
    print("targets:")
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
