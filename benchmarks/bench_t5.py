"""T5 decoding benchmark (issue 17): zoo's seq2seq ``generate`` against transformers' on a t5-small-shaped checkpoint.

One run, one process, side by side: a T5 of google-t5/t5-small's shape (d_model 512, 8 heads of 64, d_ff 2048
(relu), 6 + 6 layers, 32128-token vocabulary, tied embeddings; 60M parameters, transformers' own initialisation from
a fixed seed; created here once under benchmarks/.cache/), a 64-token input, 64 new tokens, greedy, fp32, CPU, at
batch 1 and batch 8. Reported per batch:

- tokens/s of zoo, of transformers and of zoo with its native kernel turned off (the PyTorch decoding step a
  machine without a C compiler gets): batch x 64 / wall time of the whole ``generate`` call (encoder and first
  decoder pass included), median of the interleaved repetitions; the ratio zoo / transformers is the median of the
  per-round ratios (target: >= 2);
- decode-only ms per step (the 64-token call minus a 1-token call, over 63) and the first call's cost (the encoder
  and the first decoder pass);
- the memory-bandwidth limit of a step: a step reads every decoder weight once (self-attention, the cross-attention
  query and output projections, the MLP, the output embedding; not the encoder, nor the cross-attention keys/values,
  computed once per call), so at batch 1 it takes at least those bytes / bandwidth. The bandwidth drifts, so every
  timed zoo call is paired with its own reading (the best of 3 sums over a 1 GiB fp32 buffer just before and just
  after it, the higher); zoo's decode-only steps/s against that limit, median over the calls, is printed beside;
- the ceiling of the ratio at the bandwidth measured: transformers' time against zoo's first call plus every step
  at the limit (at batch 1 a step is bound by the bandwidth, so below ~2x there no fp32 decoder reaches 2x);
- that the generated ids of all three are equal.

Run ``python benchmarks/bench_t5.py`` (about 2 minutes on 2 cores; ``--reps N``, ``--batch 1 --batch 8``,
``--threads N``). A benchmark measures and never asserts: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from pathlib import Path

from bench_generate import CACHE, SumBandwidth, log  # also sets the offline environment

SEED = 0
INPUT_TOKENS = 64
NEW_TOKENS = 64
TARGET_SPEEDUP = 2.0  # zoo tok/s / transformers tok/s


def t5_small_folder() -> Path:
    """The t5-small-shaped checkpoint (random weights, seed 0) saved by transformers; made once, reused."""
    folder = CACHE / "t5-small-random"
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        return folder
    log(f"creating the t5-small-shaped checkpoint in {folder} (once)")
    import torch
    import transformers

    torch.manual_seed(SEED)
    config = transformers.T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                                   feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=0,
                                   pad_token_id=0, eos_token_id=1)
    model = transformers.T5ForConditionalGeneration(config)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    del model
    gc.collect()
    if not folder.exists():  # a concurrent run may have won the race; its files are as good
        tmp.replace(folder)
    return folder


def step_bytes(model) -> int:
    """Bytes of weights one decoding step reads: the decoder's parameters but the cross-attention keys/values
    projections (used once per call) and the bias embedding (read once), plus the output embedding."""
    seen, total = set(), 0
    for name, p in model.named_parameters():
        decoder = name.startswith("decoder.") and "embed_tokens" not in name and "relative_attention_bias" not in name
        cross_kv = ".EncDecAttention.k." in name or ".EncDecAttention.v." in name
        if (decoder and not cross_kv or name.startswith("lm_head.")) and p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    if not any(n.startswith("lm_head.") for n, _ in model.named_parameters()):  # tied: lm_head is shared
        total += model.shared.weight.numel() * model.shared.weight.element_size()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed generate calls per library and batch")
    parser.add_argument("--batch", type=int, action="append", help="rows per call (default: 1 and 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    batches = args.batch or [1, 8]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    import zoo
    from zoo.native import t5 as native_t5

    folder = t5_small_folder()
    log("loading both models")
    hf = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    hf.generation_config.eos_token_id = None  # exactly NEW_TOKENS tokens from both, no early stop
    model = zoo.AutoModelForSeq2SeqLM.from_pretrained(folder)
    weight_bytes = step_bytes(model)
    kernel_available = native_t5.available
    sum_bandwidth = SumBandwidth()

    print(f"T5 of t5-small's shape (random weights), {INPUT_TOKENS}-token input, {NEW_TOKENS} new tokens, greedy, "
          f"fp32, CPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads, transformers {transformers.__version__}; zoo's T5 kernel: "
          f"{native_t5.status()}")
    print(f"weights a decoding step reads: {weight_bytes / 1e6:.1f} MB")
    verdicts = []
    for batch in batches:
        generator = torch.Generator().manual_seed(SEED + batch)
        ids = torch.randint(2, model.config.vocab_size, (batch, INPUT_TOKENS), generator=generator)
        mask = torch.ones_like(ids)

        def zoo_run(n, ids=ids, mask=mask):
            return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, eos_token_id=[])

        def zoo_off(n, ids=ids, mask=mask):
            native_t5.available = lambda: False  # what generate sees where zoo was built without a C compiler
            try:
                return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, eos_token_id=[])
            finally:
                native_t5.available = kernel_available

        def hf_run(n, ids=ids, mask=mask):
            return hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, do_sample=False, num_beams=1)

        runs = {"zoo": zoo_run, "transformers": hf_run}
        if kernel_available():
            runs["zoo, kernel off"] = zoo_off
        log(f"batch {batch}: warming up")
        with torch.inference_mode():
            outputs = {}
            for name, run in runs.items():
                run(4)
                outputs[name] = run(NEW_TOKENS)
        same = all(torch.equal(outputs["zoo"], out) for out in outputs.values())
        log(f"batch {batch}: timing {args.reps} rounds, interleaved, the first library alternating")
        full = {k: [] for k in runs}
        one = {k: [] for k in runs}
        readings, fractions = [], []
        with torch.inference_mode():
            for rep in range(args.reps):
                order = list(runs) if rep % 2 == 0 else list(reversed(runs))
                for name in order:
                    before = sum_bandwidth() if name == "zoo" else 0.0
                    start = time.perf_counter()
                    runs[name](NEW_TOKENS)
                    full[name].append(time.perf_counter() - start)
                    after = sum_bandwidth() if name == "zoo" else 0.0
                    start = time.perf_counter()
                    runs[name](1)
                    one[name].append(time.perf_counter() - start)
                    if name == "zoo":
                        bandwidth = max(before, after)
                        readings.append(bandwidth)
                        decode = (full[name][-1] - one[name][-1]) / (NEW_TOKENS - 1)
                        fractions.append((1 / decode) / (bandwidth / weight_bytes))
        tps = {k: batch * NEW_TOKENS / statistics.median(v) for k, v in full.items()}
        ratio = statistics.median(h / z for z, h in zip(full["zoo"], full["transformers"]))
        decode_ms = {k: (statistics.median(full[k]) - statistics.median(one[k])) / (NEW_TOKENS - 1) * 1e3
                     for k in runs}
        print()
        print(f"batch {batch}: memory bandwidth around zoo's calls {min(readings) / 1e9:.1f}-{max(readings) / 1e9:.1f} "
              f"GB/s -> a step takes at least {weight_bytes / max(readings) * 1e3:.2f}-"
              f"{weight_bytes / min(readings) * 1e3:.2f} ms")
        names = list(runs)
        rows = [
            (f"tokens/s, median of {args.reps}", {k: f"{tps[k]:.1f}" for k in names}),
            ("decode ms/step (median)", {k: f"{decode_ms[k]:.2f}" for k in names}),
            ("first call (encoder + 1 token) ms", {k: f"{statistics.median(one[k]) * 1e3:.1f}" for k in names}),
            ("decode steps/s / bandwidth limit", {"zoo": f"{statistics.median(fractions):.2f}"}),
        ]
        width = max(len(r[0]) for r in rows)
        columns = {k: max(8, len(k)) for k in names}
        print(f"{'':{width}}" + "".join(f"  {k:>{columns[k]}}" for k in names))
        for what, values in rows:
            print(f"{what:{width}}" + "".join(f"  {values.get(k, ''):>{columns[k]}}" for k in names))
        passed = ratio >= TARGET_SPEEDUP
        verdicts.append((batch, ratio, passed, same))
        print(f"speedup zoo / transformers: {ratio:.2f}x (median of per-round ratios; target >= {TARGET_SPEEDUP}) "
              f"{'PASS' if passed else 'MISS'}")
        # the best any decoder reading every weight once per step could do here: zoo's first call, then every
        # step at the bandwidth limit of the fastest reading
        ceiling = statistics.median(full["transformers"]) / (
            statistics.median(one["zoo"]) + (NEW_TOKENS - 1) * weight_bytes / max(readings))
        print(f"ceiling at this bandwidth (zoo's first call, then every step at the limit): {ceiling:.2f}x "
              f"transformers")
        if "zoo, kernel off" in tps:
            print(f"native kernel / zoo's PyTorch step: {tps['zoo'] / tps['zoo, kernel off']:.2f}x tokens/s")
        print(f"generated ids equal ({', '.join(names)}): {same} {'PASS' if same else 'MISS'}")
    print()
    for batch, ratio, passed, same in verdicts:
        print(f"summary batch {batch}: {ratio:.2f}x transformers {'PASS' if passed else 'MISS'}, ids equal {same}")


if __name__ == "__main__":
    main()
