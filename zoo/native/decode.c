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
 * The maths is GPT-2's (transformers' modeling_gpt2.py, the forward pass of zoo/plugins/gpt2/modeling.py); only the
 * summation order inside the products differs from torch's, so logits agree to float rounding.
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
 * keys/values (batch, heads, capacity, head_dim) as zoo.generation.KVCache keeps them. float32 only.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common.h"

typedef struct {
    const float *ln1_w, *ln1_b, *attn_w, *attn_b, *proj_w, *proj_b;
    const float *ln2_w, *ln2_b, *fc_w, *fc_b, *mlp_w, *mlp_b;
    float *keys, *values; /* (B, heads, capacity, head_dim) */
    float scale;          /* attention scale of this layer */
} zoo_layer;

typedef struct {
    int32_t n_layer, hidden, heads, inner, vocab, activation;
    float eps;
    int64_t capacity;                 /* positions the cache holds */
    int64_t wte_rows, wpe_rows;       /* token ids and positions must be below these */
    const float *wte, *wpe;           /* (wte_rows, hidden), (wpe_rows, hidden) */
    const float *lnf_w, *lnf_b;
    const float *head_w, *head_b;     /* (vocab, hidden), bias or NULL */
    const zoo_layer *layers;
} zoo_model;

int zoo_abi_version(void) { return 1; }

static void layer_norm(const float *x, int64_t n, const float *w, const float *b, float eps, float *out) {
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) { double d = x[i] - mean; var += d * d; }
    var /= (double)n;
    float m = (float)mean, rstd = (float)(1.0 / sqrt(var + (double)eps));
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] - m) * rstd * w[i] + b[i];
}

/* Software prefetch of the next block of weight rows into L2, spread over the pass through the current one.
 * Measured on 2 cores against a plain sum's bandwidth (GPT-2's shapes, interleaved runs): 0.92 of it with the
 * next 8 rows prefetched into L2, 0.85 without, and worse with prefetches into L1 (they evict the output row). */
#define ZOO_PREFETCH(p) __builtin_prefetch((p), 0, 2)

/* part[r, :] = x[r, lo:hi] @ W[lo:hi, :] for rows r < B: weight rows lo..hi of a (K, N) row-major W, streamed once.
 * Eight weight rows per pass over the (L1-resident) output row: eight concurrent streams keep enough reads in
 * flight (best of 25 on 2 cores, GPT-2's shapes: 8 rows 0.95 of a plain sum's bandwidth, 4 rows 0.90-0.94 and
 * weaker on the narrow 768-wide matrices, 1 row 0.75). x has row stride ldx. */
ZOO_HOT static void matmul_block(const float *restrict x, int64_t ldx, int B, const float *restrict W, int64_t N,
                                 int64_t lo, int64_t hi, float *restrict part) {
    for (int r = 0; r < B; r++) memset(part + r * N, 0, (size_t)N * sizeof(float));
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        const float *restrict w0 = W + i * N, *restrict w1 = w0 + N, *restrict w2 = w1 + N, *restrict w3 = w2 + N;
        const float *restrict w4 = w3 + N, *restrict w5 = w4 + N, *restrict w6 = w5 + N, *restrict w7 = w6 + N;
        const int prefetch = i + 16 <= hi; /* the next block is this thread's too */
        for (int r = 0; r < B; r++) {
            const float *xr = x + r * ldx + i;
            const float x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3], x4 = xr[4], x5 = xr[5], x6 = xr[6], x7 = xr[7];
            float *restrict y = part + r * N;
            int64_t j = 0;
            for (; j + 16 <= N; j += 16) {
                if (prefetch && r == 0) /* the same 16 columns of the next 8 rows: one line each */
                    for (int q = 0; q < 8; q++) ZOO_PREFETCH(w0 + (8 + q) * N + j);
                for (int64_t c = j; c < j + 16; c++)
                    y[c] = y[c] + x0 * w0[c] + x1 * w1[c] + x2 * w2[c] + x3 * w3[c] + x4 * w4[c] + x5 * w5[c] +
                           x6 * w6[c] + x7 * w7[c];
            }
            for (; j < N; j++)
                y[j] = y[j] + x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j] + x4 * w4[j] + x5 * w5[j] +
                       x6 * w6[j] + x7 * w7[j];
        }
    }
    for (; i < hi; i++) {
        const float *restrict w0 = W + i * N;
        for (int r = 0; r < B; r++) {
            const float x0 = x[r * ldx + i];
            float *restrict y = part + r * N;
            for (int64_t j = 0; j < N; j++) y[j] = y[j] + x0 * w0[j];
        }
    }
}

/* out[j] = sum over threads t of parts[t][j], for j in [lo, hi), + bias[j]; parts[t] = base + t * stride */
static void gather(const float *base, int64_t stride, int nth, const float *bias, int64_t lo, int64_t hi, float *out) {
    for (int64_t j = lo; j < hi; j++) {
        float v = base[j];
        for (int t = 1; t < nth; t++) v += base[t * stride + j];
        out[j - lo] = bias ? v + bias[j] : v;
    }
}

/* x[r, :] += (sum over threads of the partials for row r) + bias: a projection's output added to the residual
 * stream, for rows r < B of width n; tmp holds n floats */
static void add_partials(float *x, const float *base, int64_t stride, int nth, const float *bias, int B, int64_t n,
                         float *tmp) {
    for (int r = 0; r < B; r++) {
        gather(base + r * n, stride, nth, bias, 0, n, tmp);
        for (int64_t c = 0; c < n; c++) x[r * n + c] += tmp[c];
    }
}

/* y[r, v] = dot(E[v, :], h[r, :]) + bias[v] for v in [lo, hi): the output embedding, (vocab, hidden) row-major,
 * each thread streaming its own contiguous block of rows. One long contiguous stream per thread is what the
 * hardware prefetcher serves best: it reads at a plain sum's rate (0.97-1.0 of it on 2 cores), and software
 * prefetching here only costs (0.81-0.90). */
ZOO_HOT static void matmul_rows(const float *restrict h, int B, int64_t K, const float *restrict E,
                                const float *restrict bias, float *restrict y, int64_t V, int64_t lo, int64_t hi) {
    for (int64_t v = lo; v < hi; v++)
        for (int r = 0; r < B; r++) y[r * V + v] = dot(E + v * K, h + r * K, K) + (bias ? bias[v] : 0.0f);
}

/*
 * One step for B rows: ids (B), positions (B) into wpe, the cache holds `past` positions (the new ones go at index
 * past), mask NULL or (B, mask_stride) bytes with 1 = attend over positions 0..past. Writes logits (B, vocab).
 * Returns 0; or, with nothing written: -1 out of memory, -2 the cache is full, -3 a token id or position is out of
 * range (the embeddings are never read out of bounds).
 */
int zoo_decode_step(const zoo_model *m, const int64_t *ids, const int64_t *positions, int B, int64_t past,
                    const uint8_t *mask, int64_t mask_stride, float *logits, int threads) {
    const int64_t C = m->hidden, H = m->heads, hd = C / H, I = m->inner, S = past + 1;
    const int64_t N = 3 * C > I ? 3 * C : I; /* the widest projection output */
    if (past < 0 || past >= m->capacity) return -2;
    for (int r = 0; r < B; r++)
        if (ids[r] < 0 || ids[r] >= m->wte_rows || positions[r] < 0 || positions[r] >= m->wpe_rows) return -3;
    if (threads < 1) threads = 1;
    /* shared: two sets of per-thread partial products, the attention output; per thread: the residual stream, its
     * LayerNorm, a block of the MLP hidden layer, a head's q/k/v, attention scores */
    const int64_t part_stride = (int64_t)B * N;
    const int64_t local = 2 * (int64_t)B * C + (int64_t)B * (I > C ? I : C) + 3 * hd + S;
    float *buf = (float *)malloc(((size_t)2 * threads * part_stride + (size_t)B * C + (size_t)threads * local) *
                                 sizeof(float));
    if (!buf) return -1;
    float *parts[2] = {buf, buf + threads * part_stride}, *att = buf + 2 * threads * part_stride;

#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        float *x = att + B * C + tid * local, *normed = x + B * C, *hid = normed + B * C;
        float *qkv = hid + B * (I > C ? I : C);
        float *scores = qkv + 3 * hd;
        float *mine0 = parts[0] + tid * part_stride, *mine1 = parts[1] + tid * part_stride;
        int64_t lo, hi;
        for (int r = 0; r < B; r++)
            for (int64_t c = 0; c < C; c++) x[r * C + c] = m->wte[ids[r] * C + c] + m->wpe[positions[r] * C + c];
        for (int l = 0; l < m->n_layer; l++) {
            const zoo_layer *L = &m->layers[l];
            for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln1_w, L->ln1_b, m->eps, normed + r * C);
            split(C, 8, tid, nth, &lo, &hi);
            matmul_block(normed, C, B, L->attn_w, 3 * C, lo, hi, mine0); /* partial q/k/v, (B, 3C) */
#pragma omp barrier
            split((int64_t)B * H, 1, tid, nth, &lo, &hi);
            for (int64_t item = lo; item < hi; item++) {
                const int64_t r = item / H, h = item % H, at = ((r * H + h) * m->capacity) * hd;
                const float *row = parts[0] + r * 3 * C;
                for (int which = 0; which < 3; which++) /* q, k, v of this head: partials + bias */
                    gather(row, part_stride, nth, L->attn_b, which * C + h * hd, which * C + (h + 1) * hd,
                           qkv + which * hd);
                memcpy(L->keys + at + past * hd, qkv + hd, (size_t)hd * sizeof(float));
                memcpy(L->values + at + past * hd, qkv + 2 * hd, (size_t)hd * sizeof(float));
                attend(qkv, L->keys + at, L->values + at, 0, past, hd, L->scale, mask ? mask + r * mask_stride : NULL,
                       0, scores, att + r * C + h * hd);
            }
#pragma omp barrier
            split(C, 8, tid, nth, &lo, &hi);
            matmul_block(att, C, B, L->proj_w, C, lo, hi, mine1); /* partial attention output, (B, C) */
#pragma omp barrier
            add_partials(x, parts[1], part_stride, nth, L->proj_b, B, C, hid); /* hid: free until the MLP */
            for (int r = 0; r < B; r++) layer_norm(x + r * C, C, L->ln2_w, L->ln2_b, m->eps, normed + r * C);
            matmul_block(normed, C, B, L->fc_w, I, lo, hi, mine0); /* partial MLP hidden layer, (B, I) */
#pragma omp barrier
            split(I, 8, tid, nth, &lo, &hi);
            for (int r = 0; r < B; r++) { /* this thread's rows of the hidden layer, activated */
                gather(parts[0] + r * I, part_stride, nth, L->fc_b, lo, hi, hid + r * I + lo);
                activate(hid + r * I + lo, hi - lo, m->activation);
            }
            matmul_block(hid, I, B, L->mlp_w, C, lo, hi, mine1); /* partial MLP output, (B, C) */
#pragma omp barrier
            add_partials(x, parts[1], part_stride, nth, L->mlp_b, B, C, hid); /* hid: read by this thread only */
        }
        for (int r = 0; r < B; r++) layer_norm(x + r * C, C, m->lnf_w, m->lnf_b, m->eps, normed + r * C);
        split(m->vocab, 16, tid, nth, &lo, &hi);
        matmul_rows(normed, B, C, m->head_w, m->head_b, logits, m->vocab, lo, hi);
    }
    free(buf);
    return 0;
}
