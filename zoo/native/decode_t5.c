/*
 * One decoding step of a T5-style decoder (T5, mT5, umT5) for a few sequences of one new token each, in a single
 * OpenMP parallel region: RMSNorm -> q/k/v -> self-attention over the key/value cache with the relative position
 * bias -> output projection; RMSNorm -> q -> cross-attention over the encoder's keys/values (computed once per
 * generate call, by the first decoder pass) under the encoder's padding mask -> output projection; RMSNorm -> the MLP
 * (wo(act(wi x)), or gated: wo(act(wi_0 x) * wi_1 x)); final RMSNorm -> (tied embeddings: scaled by d_model^-0.5)
 * -> output embedding. Float32 weights, read in place in nn.Linear's (out, in) layout.
 *
 * Why it exists: at batch 1 a decoding step of t5-small reads ~150 MB of weights, which this machine streams in a
 * few milliseconds, while eager PyTorch runs ~60 small ops a layer, each its own parallel region with its own
 * bookkeeping, and spends more time on that than on the weights (benchmarks/bench_t5.py). Here each thread streams
 * one contiguous block of rows of every matrix and the threads meet at a barrier only where the next op needs the
 * whole of the previous one's output (seven times a layer).
 *
 * The maths is that of the forward pass (zoo/plugins/t5/modeling.py, transformers' modeling_t5.py): scores are not
 * scaled, the self-attention bias of query position p against key j is the table's value for the distance p - j
 * (the caller computes the table with the model's own bucketing and embedding), and masked encoder positions get no
 * weight (the forward pass adds the float minimum, whose exponential is 0). Only the summation order inside
 * products differs. tests/test_native_t5.py holds it to the forward pass.
 *
 * Layouts: weights (out, in) row-major; the embedding and the output embedding (vocab, d_model); self keys/values
 * (batch, heads, capacity, d_kv) as zoo.generation.KVCache keeps them; cross keys/values (batch, heads, S_enc, d_kv);
 * position bias (heads, capacity) per layer, reversed: entry [h, capacity - 1 - d] is the bias of distance d.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common.h"

typedef struct {
    const float *self_norm, *q_w, *k_w, *v_w, *o_w;   /* self-attention */
    const float *cross_norm, *cq_w, *co_w;            /* cross-attention (its keys/values are below) */
    const float *ff_norm, *wi_w, *wi1_w, *wo_w;       /* MLP: wi1_w NULL when not gated (wi_w is then wi) */
    const float *bias;                                /* (heads, capacity), reversed: see above */
    float *keys, *values;                             /* (B, heads, capacity, d_kv) */
    const float *cross_keys, *cross_values;           /* (B, heads, enc_len, d_kv) */
} zoo_t5_layer;

typedef struct {
    int32_t n_layer, hidden, heads, d_kv, inner, vocab, activation, gated;
    float eps, out_scale;    /* RMSNorm epsilon; factor on the final normalised state (1 or d_model^-0.5) */
    int64_t capacity;        /* positions the self-attention cache holds */
    int64_t enc_len;         /* encoder positions */
    int64_t embed_rows;      /* token ids must be below this */
    const float *embed;      /* (embed_rows, hidden) */
    const float *norm;       /* final RMSNorm weight */
    const float *head_w;     /* (vocab, hidden) */
    const zoo_t5_layer *layers;
} zoo_t5_model;

int zoo_t5_abi_version(void) { return 1; }

/* y[r, j] = W[j, :] . x[r, :] for j in [lo, hi), rows r < B */
static void project(const float *W, int64_t K, const float *x, int B, int64_t lo, int64_t hi, float *y, int64_t ldy) {
    rows_f32(W, K, x, B, lo, hi, y, ldy);
}

/* T5's layer norm in float32: out = weight * (x * rsqrt(mean(x^2) + eps)) */
static void rms_norm(const float *x, int64_t n, const float *w, float eps, float scale, float *out) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float rstd = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * rstd) * scale;
}

/* x[r, lo:hi] += out[r, lo:hi]: each thread adds the columns it computed */
static void add_columns(float *x, const float *out, int B, int64_t C, int64_t lo, int64_t hi) {
    for (int r = 0; r < B; r++)
        for (int64_t c = lo; c < hi; c++) x[r * C + c] += out[r * C + c];
}

/*
 * One step for B rows (B <= 8): ids (B); the self-attention cache holds `past` positions and the new ones go at
 * index past; enc_mask NULL or (B, enc_stride) bytes over the encoder positions, 1 = attend. Writes logits
 * (B, vocab). Returns 0; or, with nothing written: -1 out of memory, -2 the cache is full, -3 a token id is out of
 * range, -4 more rows than the kernel takes.
 */
int zoo_t5_decode_step(const zoo_t5_model *m, const int64_t *ids, int B, int64_t past, const uint8_t *enc_mask,
                       int64_t enc_stride, float *logits, int threads) {
    const int64_t C = m->hidden, H = m->heads, D = m->d_kv, I = m->inner, S = past + 1, E = m->enc_len;
    const int64_t QD = H * D, cap = m->capacity;
    if (B < 1 || B > ZOO_DP_ROWS) return -4;
    if (past < 0 || past >= cap) return -2;
    for (int r = 0; r < B; r++)
        if (ids[r] < 0 || ids[r] >= m->embed_rows) return -3;
    if (threads < 1) threads = 1;
    /* shared: residual stream x, q/k/v, attention output y, MLP hidden, projection outputs; per thread: normalised
     * x and attention scores */
    const int64_t wide = I > C ? I : C, longest = S > E ? S : E;
    const int64_t shared = (int64_t)B * (C + 3 * QD + QD + I + wide);
    const int64_t local = (int64_t)B * C + longest + D;
    float *buf = (float *)malloc(((size_t)shared + (size_t)threads * local) * sizeof(float) + 64);
    if (!buf) return -1;
    float *x = buf, *q = x + B * C, *k = q + B * QD, *v = k + B * QD, *y = v + B * QD, *hid = y + B * QD;
    float *out = hid + B * I, *locals = out + B * wide;

    for (int r = 0; r < B; r++) memcpy(x + r * C, m->embed + ids[r] * C, (size_t)C * sizeof(float));

#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        float *normed = locals + tid * local, *scores = normed + B * C, *head = scores + longest;
        int64_t lo, hi;
        for (int l = 0; l < m->n_layer; l++) {
            const zoo_t5_layer *L = &m->layers[l];
            /* self-attention: every thread normalises every row itself (no barrier, each reads its own copy) */
            for (int r = 0; r < B; r++) rms_norm(x + r * C, C, L->self_norm, m->eps, 1.0f, normed + r * C);
            split(QD, 16, tid, nth, &lo, &hi);
            project(L->q_w, C, normed, B, lo, hi, q, QD);
            project(L->k_w, C, normed, B, lo, hi, k, QD);
            project(L->v_w, C, normed, B, lo, hi, v, QD);
#pragma omp barrier
            /* each (row, head): its new key/value into the cache, then attention over the head's keys */
            split((int64_t)B * H, 1, tid, nth, &lo, &hi);
            for (int64_t item = lo; item < hi; item++) {
                const int64_t r = item / H, h = item % H, base = (r * H + h) * cap * D;
                memcpy(L->keys + base + past * D, k + r * QD + h * D, (size_t)D * sizeof(float));
                memcpy(L->values + base + past * D, v + r * QD + h * D, (size_t)D * sizeof(float));
                attend(q + r * QD + h * D, L->keys + base, L->values + base, 0, past, D, 1.0f, NULL, 0,
                       ZOO_SOFTMAX_F32, L->bias + h * cap + (cap - 1 - past), scores, y + r * QD + h * D);
            }
#pragma omp barrier
            split(C, 16, tid, nth, &lo, &hi);
            project(L->o_w, QD, y, B, lo, hi, out, C);
            add_columns(x, out, B, C, lo, hi);
#pragma omp barrier
            /* cross-attention over the encoder output's keys/values */
            for (int r = 0; r < B; r++) rms_norm(x + r * C, C, L->cross_norm, m->eps, 1.0f, normed + r * C);
            split(QD, 16, tid, nth, &lo, &hi);
            project(L->cq_w, C, normed, B, lo, hi, q, QD);
#pragma omp barrier
            split((int64_t)B * H, 1, tid, nth, &lo, &hi);
            for (int64_t item = lo; item < hi; item++) {
                const int64_t r = item / H, h = item % H, base = (r * H + h) * E * D;
                attend(q + r * QD + h * D, L->cross_keys + base, L->cross_values + base, 0, E - 1, D, 1.0f,
                       enc_mask ? enc_mask + r * enc_stride : NULL, 0, ZOO_SOFTMAX_F32, NULL, scores, head);
                memcpy(y + r * QD + h * D, head, (size_t)D * sizeof(float));
            }
#pragma omp barrier
            split(C, 16, tid, nth, &lo, &hi);
            project(L->co_w, QD, y, B, lo, hi, out, C);
            add_columns(x, out, B, C, lo, hi);
#pragma omp barrier
            /* MLP: each thread activates (and gates) its own block of the hidden units */
            for (int r = 0; r < B; r++) rms_norm(x + r * C, C, L->ff_norm, m->eps, 1.0f, normed + r * C);
            split(I, 16, tid, nth, &lo, &hi);
            project(L->wi_w, C, normed, B, lo, hi, hid, I);
            if (m->gated) project(L->wi1_w, C, normed, B, lo, hi, out, I);
            for (int r = 0; r < B; r++)
                for (int64_t j = lo; j < hi; j++) {
                    const float a = activation(hid[r * I + j], m->activation);
                    hid[r * I + j] = m->gated ? a * out[r * I + j] : a;
                }
#pragma omp barrier
            split(C, 16, tid, nth, &lo, &hi);
            project(L->wo_w, I, hid, B, lo, hi, out, C);
            add_columns(x, out, B, C, lo, hi);
#pragma omp barrier
        }
        for (int r = 0; r < B; r++) rms_norm(x + r * C, C, m->norm, m->eps, m->out_scale, normed + r * C);
        split(m->vocab, 16, tid, nth, &lo, &hi);
        project(m->head_w, C, normed, B, lo, hi, logits, m->vocab);
    }
    free(buf);
    return 0;
}
