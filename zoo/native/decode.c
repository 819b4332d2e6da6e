/*
 * One decoding step of a GPT-2-style transformer (pre-norm blocks: LayerNorm -> fused q/k/v -> multi-head
 * attention over a key/value cache -> output projection, LayerNorm -> MLP; tied or untied output embedding) for a
 * few sequences of one new token each, in a single OpenMP parallel region.
 *
 * Why it exists: at batch 1 a decoding step reads every weight once, so its time is bounded by memory bandwidth.
 * Eager PyTorch reaches ~0.77 of that bound on 2 cores: each of the ~60 ops per layer is its own parallel region
 * whose start, end and bookkeeping read no weight. Here a step is one region; the threads stream their share of
 * each matrix and meet at a barrier only where the next op needs the whole of the previous one's output (five times
 * a layer). The region runs on torch's own OpenMP pool (the module is loaded after torch, whose libgomp has the
 * same soname), so no second set of threads competes for the cores.
 *
 * The maths is GPT-2's (transformers' modeling_gpt2.py, the forward pass of zoo/plugins/gpt2/modeling.py). In float32
 * only the summation order inside the products differs from torch's, so logits agree to float rounding. In bfloat16
 * (a checkpoint streams half the bytes) the kernel computes in float32 and rounds to bf16 wherever the bf16 forward
 * pass produces a bf16 tensor: the embedding sum, each LayerNorm's output, each projection's output (its bias
 * joining the float32 sum first, as addmm adds it), the attention output, the activation's output, the residual
 * stream after each addition, the logits; and inside attention where torch's bf16 kernels round the probabilities
 * (common.h's attend). Products accumulate in float32, as torch's bf16 kernels do. tests/test_native.py holds it to
 * the bf16 forward pass.
 *
 * How the work is shared: each thread streams one contiguous block of rows of every (in, out) weight (a block of
 * the input dimension) into its own partial product; a thread streaming its own contiguous range reads memory about
 * 5-10% faster than threads taking interleaved column blocks of each row (measured on 2 cores). The partial
 * products are added where they are consumed: every thread adds them up for the attention heads, MLP rows or
 * residual values it needs next, so no extra barrier is spent on a reduction. Each thread keeps its own copy of the
 * residual stream, updated identically by all (same values, same order), so the LayerNorms need no barrier either.
 * Two sets of partial buffers alternate, so a phase never overwrites partials another thread is still reading.
 *
 * Layouts are the published checkpoints': Conv1D weights (in, out) row-major, the output embedding (vocab, hidden),
 * keys/values (batch, heads, capacity, head_dim) as zoo.generation.KVCache keeps them, all of one dtype: float32 or
 * bfloat16 (the model struct's weight kind). bf16 Conv1D weights are read in place and widened to float32 as they
 * stream (a shift of each 16-bit value into a float's upper half, vectorized): at a few rows the step is bound by
 * reading the weights, so the widening costs nothing visible and the (in, out) scheme above stays as it is. The
 * output embedding's rows are multiplied with vdpbf16ps where the processor has AVX512-BF16 (as decode_llama.c).
 *
 * int8 (ZOO_WEIGHTS_INT8, zoo/quantization.py's from_pretrained(quantization="int8")): the projections and the output
 * embedding are int8 (out, in) rows, one float32 scale per row (the model's bf16 scales are passed as float32 copies,
 * exactly), the rest (embeddings, LayerNorms, biases, the cache) float32 or bf16 as the model's dtype. At batch 1
 * such a step reads about a quarter of the float32 bytes, so it is bound by them even more plainly. (out, in) rows
 * do not fit the (in, out) block scheme above: each thread computes its own block of output rows whole (a row dot
 * each, as decode_llama.c's row products: common.h's rows_i8, AVX-512 where present), into a shared output that the
 * next phase reads after the barrier, so no partial sums are added up; the barriers are the same five a layer. Each
 * int8 weight is widened to float32 exactly, products accumulate in float32, the row's scale multiplies the sum,
 * the bias is added after. In float32 nothing is rounded: the result is the float32 product with the dequantized
 * weights q * scale, which tests/test_native.py holds to a float64 model with those weights. In bf16 the kernel
 * rounds where the bf16 model's int8 forward pass does (Int8Linear's outputs are bf16): the scaled product, as
 * torch's _weight_int8pack_mm rounds it, then the sum with the bias, and everywhere the float bf16 path rounds.
 * Int8Linear's own fast path on a float32 model also rounds the activations (and its product) to bf16 for that torch
 * kernel; this kernel does not (it keeps float32 activations), so it is closer to the dequantized product.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common.h"

typedef struct {
    const void *ln1_w, *ln1_b, *attn_w, *attn_b, *proj_w, *proj_b;
    const void *ln2_w, *ln2_b, *fc_w, *fc_b, *mlp_w, *mlp_b;
    const float *attn_s, *proj_s, *fc_s, *mlp_s; /* int8 weights: one float32 scale per output row; else NULL */
    void *keys, *values; /* (B, heads, capacity, head_dim) */
    float scale;         /* attention scale of this layer */
} zoo_layer;

typedef struct {
    int32_t n_layer, hidden, heads, inner, vocab, activation;
    int32_t weights;                  /* the projections' and output embedding's kind: ZOO_WEIGHTS_F32, _BF16, _INT8 */
    int32_t dtype;                    /* every other tensor's (the cache's too): ZOO_WEIGHTS_F32 or _BF16; for a float
                                       * kind, the same as weights */
    int32_t upcast;                   /* reorder_and_upcast_attn: a float32 softmax cast to the model's dtype */
    int32_t widen;                    /* 1: the portable loops even where vector instructions run (tests both): bf16
                                       * output embedding widened, not on vdpbf16ps; int8 rows without AVX-512 */
    int32_t stepwise;                 /* 1: the activation is several torch ops, each rounding (bf16 models) */
    float eps;
    int64_t capacity;                 /* positions the cache holds */
    int64_t wte_rows, wpe_rows;       /* token ids and positions must be below these */
    const void *wte, *wpe;            /* (wte_rows, hidden), (wpe_rows, hidden) */
    const void *lnf_w, *lnf_b;
    const void *head_w, *head_b;      /* (vocab, hidden), bias or NULL */
    const float *head_s;              /* int8 head: (vocab,) float32 scales; else NULL */
    const zoo_layer *layers;
} zoo_model;

int zoo_abi_version(void) { return 3; }

/* whether bf16 output-embedding rows run on vdpbf16ps here (else they are widened to float32) */
int zoo_bf16_dot(void) { return bf16_dot_supported(); }

/* whether int8 rows run on AVX-512 here (else a portable loop) */
int zoo_int8_vector(void) { return int8_vector_supported(); }

/* out = (x - mean) / sqrt(var + eps) * w + b over n values, computed in float32 and held in the model's dtype (one
 * rounding, as torch's LayerNorm rounds its bf16 output); out16 (bf16 models, or NULL) gets the same values as bf16 */
static void layer_norm(const float *x, int64_t n, const void *w, const void *b, float eps, int bf16, float *out,
                       uint16_t *out16) {
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) { double d = x[i] - mean; var += d * d; }
    var /= (double)n;
    float m = (float)mean, rstd = (float)(1.0 / sqrt(var + (double)eps));
    if (!bf16) {
        const float *wf = (const float *)w, *bf = (const float *)b;
        for (int64_t i = 0; i < n; i++) out[i] = (x[i] - m) * rstd * wf[i] + bf[i];
        return;
    }
    const uint16_t *wh = (const uint16_t *)w, *bh = (const uint16_t *)b;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t v = to_bf16((x[i] - m) * rstd * from_bf16(wh[i]) + from_bf16(bh[i]));
        out[i] = from_bf16(v);
        if (out16) out16[i] = v;
    }
}

/* Software prefetch of the next block of weight rows into L2, spread over the pass through the current one.
 * Measured on 2 cores against a plain sum's bandwidth (GPT-2's shapes, interleaved runs): 0.92 of it with the
 * next 8 rows prefetched into L2, 0.85 without, and worse with prefetches into L1 (they evict the output row). */
#define ZOO_PREFETCH(p) __builtin_prefetch((p), 0, 2)

/* part[r, :] = x[r, lo:hi] @ W[lo:hi, :] for rows r < B: weight rows lo..hi of a (K, N) row-major W, streamed once.
 * Eight weight rows per pass over the (L1-resident) output row: eight concurrent streams keep enough reads in
 * flight (best of 25 on 2 cores, GPT-2's shapes: 8 rows 0.95 of a plain sum's bandwidth, 4 rows 0.90-0.94 and
 * weaker on the narrow 768-wide matrices, 1 row 0.75). x has row stride ldx. W is float32 or (bf16 = 1) bf16,
 * widened as it is read; bf16 is a constant in each caller below, so each gets its own vectorized loop. */
/* weight c of row q of the current block: float32, or bf16 widened (its bits shifted into a float's upper half) */
#define ZOO_W(q, c) (bf16 ? from_bf16(h##q[c]) : f##q[c])

static inline __attribute__((always_inline)) void matmul_block_of(const float *restrict x, int64_t ldx, int B,
                                                                  const void *W, int64_t N, int64_t lo, int64_t hi,
                                                                  float *restrict part, const int bf16) {
    /* typed restrict row pointers of both kinds (the unused kind compiles away): the loops vectorize unversioned */
    const float *restrict wf = (const float *)W;
    const uint16_t *restrict wh = (const uint16_t *)W;
    const int64_t line = bf16 ? 32 : 16; /* weights a cache line holds */
    for (int r = 0; r < B; r++) memset(part + r * N, 0, (size_t)N * sizeof(float));
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        const float *restrict f0 = wf + i * N, *restrict f1 = f0 + N, *restrict f2 = f1 + N, *restrict f3 = f2 + N;
        const float *restrict f4 = f3 + N, *restrict f5 = f4 + N, *restrict f6 = f5 + N, *restrict f7 = f6 + N;
        const uint16_t *restrict h0 = wh + i * N, *restrict h1 = h0 + N, *restrict h2 = h1 + N, *restrict h3 = h2 + N;
        const uint16_t *restrict h4 = h3 + N, *restrict h5 = h4 + N, *restrict h6 = h5 + N, *restrict h7 = h6 + N;
        const int prefetch = i + 16 <= hi; /* the next block is this thread's too */
        for (int r = 0; r < B; r++) {
            const float *xr = x + r * ldx + i;
            const float x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3], x4 = xr[4], x5 = xr[5], x6 = xr[6], x7 = xr[7];
            float *restrict y = part + r * N;
            int64_t j = 0;
            for (; j + 16 <= N; j += 16) {
                if (prefetch && r == 0 && j % line == 0) /* the same columns of the next 8 rows: one line each */
                    for (int q = 0; q < 8; q++)
                        ZOO_PREFETCH(bf16 ? (const void *)(h0 + (8 + q) * N + j)
                                          : (const void *)(f0 + (8 + q) * N + j));
                for (int64_t c = j; c < j + 16; c++)
                    y[c] = y[c] + x0 * ZOO_W(0, c) + x1 * ZOO_W(1, c) + x2 * ZOO_W(2, c) + x3 * ZOO_W(3, c) +
                           x4 * ZOO_W(4, c) + x5 * ZOO_W(5, c) + x6 * ZOO_W(6, c) + x7 * ZOO_W(7, c);
            }
            for (; j < N; j++)
                y[j] = y[j] + x0 * ZOO_W(0, j) + x1 * ZOO_W(1, j) + x2 * ZOO_W(2, j) + x3 * ZOO_W(3, j) +
                       x4 * ZOO_W(4, j) + x5 * ZOO_W(5, j) + x6 * ZOO_W(6, j) + x7 * ZOO_W(7, j);
        }
    }
    for (; i < hi; i++) {
        const float *restrict f0 = wf + i * N;
        const uint16_t *restrict h0 = wh + i * N;
        for (int r = 0; r < B; r++) {
            const float x0 = x[r * ldx + i];
            float *restrict y = part + r * N;
            for (int64_t j = 0; j < N; j++) y[j] = y[j] + x0 * ZOO_W(0, j);
        }
    }
}
#undef ZOO_W

ZOO_HOT static void matmul_block_f32(const float *restrict x, int64_t ldx, int B, const void *W, int64_t N,
                                     int64_t lo, int64_t hi, float *restrict part) {
    matmul_block_of(x, ldx, B, W, N, lo, hi, part, 0);
}

ZOO_HOT static void matmul_block_bf16(const float *restrict x, int64_t ldx, int B, const void *W, int64_t N,
                                      int64_t lo, int64_t hi, float *restrict part) {
    matmul_block_of(x, ldx, B, W, N, lo, hi, part, 1);
}

static void matmul_block(const float *restrict x, int64_t ldx, int B, const void *W, int bf16, int64_t N, int64_t lo,
                         int64_t hi, float *restrict part) {
    (bf16 ? matmul_block_bf16 : matmul_block_f32)(x, ldx, B, W, N, lo, hi, part);
}

/* out[j] = sum over threads t of parts[t][j], for j in [lo, hi), + bias[j], held in the model's dtype (the bias
 * joins the float32 sum before the one rounding, as addmm adds it); parts[t] = base + t * stride */
static void gather(const float *base, int64_t stride, int nth, const void *bias, int bf16, int64_t lo, int64_t hi,
                   float *out) {
    for (int64_t j = lo; j < hi; j++) {
        float v = base[j];
        for (int t = 1; t < nth; t++) v += base[t * stride + j];
        out[j - lo] = held(bias ? v + load(bias, bf16, j) : v, bf16);
    }
}

/* x[r, :] += (sum over threads of the partials for row r) + bias: a projection's output added to the residual
 * stream, for rows r < B of width n, both the output and the sum held in the model's dtype; tmp holds n floats */
static void add_partials(float *x, const float *base, int64_t stride, int nth, const void *bias, int bf16, int B,
                         int64_t n, float *tmp) {
    for (int r = 0; r < B; r++) {
        gather(base + r * n, stride, nth, bias, bf16, 0, n, tmp);
        for (int64_t c = 0; c < n; c++) x[r * n + c] = held(x[r * n + c] + tmp[c], bf16);
    }
}

/* v[j] rounded to bf16, over n values */
ZOO_HOT static void hold_bf16(float *restrict v, int64_t n) {
    for (int64_t j = 0; j < n; j++) v[j] = from_bf16(to_bf16(v[j]));
}

/* What the threads of one step share: the model, the step's inputs, and the buffers every thread reads */
typedef struct {
    const zoo_model *m;
    int B;
    int64_t past;
    const uint8_t *mask;
    int64_t mask_stride;
    int bf16;          /* the model's dtype is bf16 (activations held as bf16, bf16 cache) */
    int dp;            /* bf16 output embedding on vdpbf16ps */
    int vector;        /* int8 rows on AVX-512 */
    int softmax;       /* where attention rounds its probabilities (common.h's attend) */
    float *parts[2];   /* float weights: two sets of per-thread partial products, part_stride apart; int8: parts[0]
                        * the (B, 3C) q/k/v and then the (B, I) MLP hidden layer, parts[1] the (B, C) outputs of the
                        * attention and MLP projections */
    int64_t part_stride;
    float *att;        /* (B, C) attention output */
} zoo_step;

/* One thread's own buffers: the residual stream, its LayerNorm, a block of the MLP hidden layer, a head's q/k/v,
 * attention scores, and the final LayerNorm as bf16 */
typedef struct {
    int tid, nth;
    float *x, *normed, *hid, *qkv, *scores;
    uint16_t *normed16;
} zoo_thread;

/* logits[r, v] = E[v, :] . h[r, :] + bias[v] for v in [lo, hi), held in the model's dtype: the output embedding,
 * (vocab, hidden) row-major, each thread streaming its own contiguous block of rows. One long contiguous stream per
 * thread is what the hardware prefetcher serves best: float32 rows read at a plain sum's rate (0.97-1.0 of it on 2
 * cores), and software prefetching them only costs (0.81-0.90). bf16 rows run on vdpbf16ps where dp (over h16, the
 * same values as bf16, ZOO_DP_ROWS rows a call), else widened; int8 rows through rows_i8 (which does prefetch: a
 * byte carries four times a float32's work), their scales applied. */
static void output_embedding(const zoo_step *s, const float *h, const uint16_t *h16, float *logits, int64_t lo,
                             int64_t hi) {
    const zoo_model *m = s->m;
    const int64_t C = m->hidden, V = m->vocab;
    const int B = s->B;
    if (m->weights == ZOO_WEIGHTS_INT8)
        rows_i8(s->vector, (const int8_t *)m->head_w, m->head_s, C, h, C, B, lo, hi, logits, V, s->bf16);
    else if (!s->bf16)
        rows_f32((const float *)m->head_w, C, h, B, lo, hi, logits, V);
#ifdef ZOO_HAVE_BF16_PATH
    else if (s->dp)
        for (int r = 0; r < B; r += ZOO_DP_ROWS)
            rows_bf16_dp((const uint16_t *)m->head_w, C, h16 + r * C, B - r < ZOO_DP_ROWS ? B - r : ZOO_DP_ROWS, lo,
                         hi, logits + r * V, V);
#endif
    else
        rows_bf16_widened((const uint16_t *)m->head_w, C, h, B, lo, hi, logits, V);
    finish_rows(logits, V, B, lo, hi, m->head_b, s->bf16);
}

/* Attention for this thread's (row, head) items: q/k/v of the head (float weights: the partial products of
 * parts[0] added up with the bias; int8: read from parts[0], where they are whole), the new key and value into the
 * cache, attention over the cache, into att */
static void attention(const zoo_step *s, const zoo_thread *t, const zoo_layer *L) {
    const zoo_model *m = s->m;
    const int64_t C = m->hidden, H = m->heads, hd = C / H, past = s->past;
    const int bf16 = s->bf16, i8 = m->weights == ZOO_WEIGHTS_INT8;
    const size_t elt = bf16 ? sizeof(uint16_t) : sizeof(float); /* bytes a cached key/value takes */
    float *qkv = t->qkv;
    int64_t lo, hi;
    split((int64_t)s->B * H, 1, t->tid, t->nth, &lo, &hi);
    for (int64_t item = lo; item < hi; item++) {
        const int64_t r = item / H, h = item % H, at = ((r * H + h) * m->capacity) * hd;
        const float *row = s->parts[0] + r * 3 * C;
        float *out = s->att + r * C + h * hd;
        for (int which = 0; which < 3; which++) /* q, k, v of this head */
            if (i8)
                memcpy(qkv + which * hd, row + which * C + h * hd, (size_t)hd * sizeof(float));
            else
                gather(row, s->part_stride, t->nth, L->attn_b, bf16, which * C + h * hd, which * C + (h + 1) * hd,
                       qkv + which * hd);
        if (bf16) {
            uint16_t *k16 = (uint16_t *)L->keys + at + past * hd, *v16 = (uint16_t *)L->values + at + past * hd;
            for (int64_t d = 0; d < hd; d++) k16[d] = to_bf16(qkv[hd + d]), v16[d] = to_bf16(qkv[2 * hd + d]);
        } else {
            memcpy((float *)L->keys + at + past * hd, qkv + hd, (size_t)hd * sizeof(float));
            memcpy((float *)L->values + at + past * hd, qkv + 2 * hd, (size_t)hd * sizeof(float));
        }
        attend(qkv, (const char *)L->keys + at * elt, (const char *)L->values + at * elt, bf16, past, hd, L->scale,
               s->mask ? s->mask + r * s->mask_stride : NULL, 0, s->softmax, NULL, t->scores, out);
        if (bf16) hold_bf16(out, hd);
    }
}

/* h = act(h) over n values of the MLP hidden layer, held in the model's dtype */
static void activate_held(const zoo_model *m, int bf16, float *h, int64_t n) {
    if (bf16 && m->stepwise) {
        activate_bf16_stepwise(h, n, m->activation);
    } else {
        activate(h, n, m->activation);
        if (bf16) hold_bf16(h, n);
    }
}

/* One block, float32 or bf16 (in, out) weights: the block scheme of the header comment */
static void layer_float(const zoo_step *s, const zoo_thread *t, const zoo_layer *L) {
    const zoo_model *m = s->m;
    const int64_t C = m->hidden, I = m->inner;
    const int B = s->B, bf16 = s->bf16;
    float *x = t->x, *normed = t->normed, *hid = t->hid;
    float *mine0 = s->parts[0] + t->tid * s->part_stride, *mine1 = s->parts[1] + t->tid * s->part_stride;
    int64_t lo, hi;
    for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln1_w, L->ln1_b, m->eps, bf16, normed + r * C, NULL);
    split(C, 8, t->tid, t->nth, &lo, &hi);
    matmul_block(normed, C, B, L->attn_w, bf16, 3 * C, lo, hi, mine0); /* partial q/k/v, (B, 3C) */
#pragma omp barrier
    attention(s, t, L);
#pragma omp barrier
    split(C, 8, t->tid, t->nth, &lo, &hi);
    matmul_block(s->att, C, B, L->proj_w, bf16, C, lo, hi, mine1); /* partial attention output, (B, C) */
#pragma omp barrier
    add_partials(x, s->parts[1], s->part_stride, t->nth, L->proj_b, bf16, B, C, hid); /* hid: free until the MLP */
    for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln2_w, L->ln2_b, m->eps, bf16, normed + r * C, NULL);
    matmul_block(normed, C, B, L->fc_w, bf16, I, lo, hi, mine0); /* partial MLP hidden layer, (B, I) */
#pragma omp barrier
    split(I, 8, t->tid, t->nth, &lo, &hi);
    for (int r = 0; r < B; r++) { /* this thread's rows of the hidden layer, activated */
        gather(s->parts[0] + r * I, s->part_stride, t->nth, L->fc_b, bf16, lo, hi, hid + r * I + lo);
        activate_held(m, bf16, hid + r * I + lo, hi - lo);
    }
    matmul_block(hid, I, B, L->mlp_w, bf16, C, lo, hi, mine1); /* partial MLP output, (B, C) */
#pragma omp barrier
    add_partials(x, s->parts[1], s->part_stride, t->nth, L->mlp_b, bf16, B, C, hid); /* hid: this thread's only */
}

/* x[r, :] = x[r, :] + out[r, :] for rows r < B of width n, held in the model's dtype (each thread its own copy) */
static void add_residual(float *x, const float *out, int B, int64_t n, int bf16) {
    for (int64_t c = 0; c < (int64_t)B * n; c++) x[c] = held(x[c] + out[c], bf16);
}

/* One block, int8 (out, in) weights: each thread computes its block of output rows whole, into parts[0] / parts[1] */
static void layer_int8(const zoo_step *s, const zoo_thread *t, const zoo_layer *L) {
    const zoo_model *m = s->m;
    const int64_t C = m->hidden, I = m->inner;
    const int B = s->B, bf16 = s->bf16, v = s->vector;
    float *x = t->x, *normed = t->normed, *wide = s->parts[0], *narrow = s->parts[1];
    int64_t lo, hi;
    for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln1_w, L->ln1_b, m->eps, bf16, normed + r * C, NULL);
    split(3 * C, 16, t->tid, t->nth, &lo, &hi);
    rows_i8(v, (const int8_t *)L->attn_w, L->attn_s, C, normed, C, B, lo, hi, wide, 3 * C, bf16); /* q/k/v (B, 3C) */
    finish_rows(wide, 3 * C, B, lo, hi, L->attn_b, bf16);
#pragma omp barrier
    attention(s, t, L);
#pragma omp barrier
    split(C, 16, t->tid, t->nth, &lo, &hi);
    rows_i8(v, (const int8_t *)L->proj_w, L->proj_s, C, s->att, C, B, lo, hi, narrow, C, bf16); /* (B, C) */
    finish_rows(narrow, C, B, lo, hi, L->proj_b, bf16);
#pragma omp barrier
    add_residual(x, narrow, B, C, bf16);
    for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln2_w, L->ln2_b, m->eps, bf16, normed + r * C, NULL);
    split(I, 16, t->tid, t->nth, &lo, &hi); /* the hidden layer over wide: q/k/v were last read before a barrier */
    rows_i8(v, (const int8_t *)L->fc_w, L->fc_s, C, normed, C, B, lo, hi, wide, I, bf16);
    finish_rows(wide, I, B, lo, hi, L->fc_b, bf16);
    for (int r = 0; r < B; r++) activate_held(m, bf16, wide + r * I + lo, hi - lo);
#pragma omp barrier
    split(C, 16, t->tid, t->nth, &lo, &hi); /* into narrow: every thread added the attention output before the last
                                             * barrier */
    rows_i8(v, (const int8_t *)L->mlp_w, L->mlp_s, I, wide, I, B, lo, hi, narrow, C, bf16); /* MLP output (B, C) */
    finish_rows(narrow, C, B, lo, hi, L->mlp_b, bf16);
#pragma omp barrier
    add_residual(x, narrow, B, C, bf16); /* narrow is next written after the next layer's first barrier */
}

/*
 * One step for B rows: ids (B), positions (B) into wpe, the cache holds `past` positions (the new ones go at index
 * past), mask NULL or (B, mask_stride) bytes with 1 = attend over positions 0..past. Writes logits (B, vocab) as
 * float32 (in a bf16 model, bf16 values). Returns 0; or, with nothing written: -1 out of memory, -2 the cache is
 * full, -3 a token id or position is out of range (the embeddings are never read out of bounds), -4 a weight kind
 * this build does not read.
 */
int zoo_decode_step(const zoo_model *m, const int64_t *ids, const int64_t *positions, int B, int64_t past,
                    const uint8_t *mask, int64_t mask_stride, float *logits, int threads) {
    const int64_t C = m->hidden, H = m->heads, hd = C / H, I = m->inner, S = past + 1;
    const int64_t N = 3 * C > I ? 3 * C : I; /* the widest projection output */
    const int i8 = m->weights == ZOO_WEIGHTS_INT8;
    if ((m->dtype != ZOO_WEIGHTS_F32 && m->dtype != ZOO_WEIGHTS_BF16) || (!i8 && m->weights != m->dtype)) return -4;
    if (i8 && (!m->head_s || !m->layers)) return -4;
    for (int l = 0; i8 && l < m->n_layer; l++) {
        const zoo_layer *L = &m->layers[l];
        if (!L->attn_s || !L->proj_s || !L->fc_s || !L->mlp_s) return -4;
    }
    const int bf16 = m->dtype == ZOO_WEIGHTS_BF16;
    if (past < 0 || past >= m->capacity) return -2;
    for (int r = 0; r < B; r++)
        if (ids[r] < 0 || ids[r] >= m->wte_rows || positions[r] < 0 || positions[r] >= m->wpe_rows) return -3;
    if (threads < 1) threads = 1;
    /* shared: the projections' outputs (float weights: two sets of per-thread partial products; int8: two outputs),
     * the attention output; per thread: the residual stream, its LayerNorm, a block of the MLP hidden layer, a
     * head's q/k/v, attention scores; and the final LayerNorm as bf16 */
    const int64_t part_stride = (int64_t)B * N, sets = i8 ? 1 : threads;
    const int64_t local = 2 * (int64_t)B * C + (int64_t)B * (I > C ? I : C) + 3 * hd + S;
    const size_t floats = (size_t)2 * sets * part_stride + (size_t)B * C + (size_t)threads * local;
    float *buf = (float *)malloc(floats * sizeof(float) + (size_t)threads * B * C * sizeof(uint16_t));
    if (!buf) return -1;
    zoo_step step = {
        .m = m, .B = B, .past = past, .mask = mask, .mask_stride = mask_stride, .bf16 = bf16,
        .dp = !i8 && bf16 && !m->widen && bf16_dot_supported(), .vector = i8 && !m->widen && int8_vector_supported(),
        /* torch's bf16 attention rounds its probabilities: SDPA the exponentials, the upcast path the softmax */
        .softmax = !bf16 ? ZOO_SOFTMAX_F32 : m->upcast ? ZOO_SOFTMAX_BF16_PROBS : ZOO_SOFTMAX_BF16_EXP,
        .parts = {buf, buf + sets * part_stride}, .part_stride = part_stride, .att = buf + 2 * sets * part_stride,
    };
    uint16_t *normed16_all = (uint16_t *)(buf + floats);

#pragma omp parallel num_threads(threads)
    {
        zoo_thread t;
        t.tid = omp_get_thread_num();
        t.nth = omp_get_num_threads();
        t.x = step.att + B * C + t.tid * local;
        t.normed = t.x + B * C;
        t.hid = t.normed + B * C;
        t.qkv = t.hid + B * (I > C ? I : C);
        t.scores = t.qkv + 3 * hd;
        t.normed16 = normed16_all + (int64_t)t.tid * B * C;
        int64_t lo, hi;
        for (int r = 0; r < B; r++)
            for (int64_t c = 0; c < C; c++)
                t.x[r * C + c] =
                    held(load(m->wte, bf16, ids[r] * C + c) + load(m->wpe, bf16, positions[r] * C + c), bf16);
        for (int l = 0; l < m->n_layer; l++) (i8 ? layer_int8 : layer_float)(&step, &t, &m->layers[l]);
        for (int r = 0; r < B; r++)
            layer_norm(t.x + r * C, C, m->lnf_w, m->lnf_b, m->eps, bf16, t.normed + r * C,
                       bf16 ? t.normed16 + r * C : NULL);
        split(m->vocab, 16, t.tid, t.nth, &lo, &hi);
        output_embedding(&step, t.normed, t.normed16, logits, lo, hi);
    }
    free(buf);
    return 0;
}
