/*
 * One decoding step of a Llama-style transformer for a few sequences of one new token each, in a single OpenMP
 * parallel region: RMSNorm -> q/k/v projections (optional biases) -> optional per-head q/k RMSNorm (Qwen3) ->
 * rotary positions (full or partial) -> grouped-query attention over the key/value cache, with an optional sliding
 * window -> output projection; RMSNorm -> gated MLP (down(act(gate(x)) * up(x))); final RMSNorm -> output
 * embedding. Weights are float32 or bfloat16, read in place in the published layouts (nn.Linear's (out, in)).
 *
 * Why it exists: at batch 1 a decoding step reads every weight once, so its time is bounded by memory bandwidth, and
 * a bf16 checkpoint should stream half the bytes of an fp32 one. Eager PyTorch spends a parallel region (and its
 * bookkeeping) on every one of ~40 ops a layer, and its bf16 matrix-vector product runs large matrices on one core
 * (benchmarks/bench_llama.py). Here each thread streams one contiguous block of rows of every matrix (the layout
 * the hardware prefetcher serves best), and the threads meet at a barrier only where the next op needs the whole
 * of the previous one's output (six times a layer). With AVX512-BF16 the bf16 products run on vdpbf16ps (bf16
 * pairs multiplied exactly and accumulated in float32, as torch's bf16 kernels accumulate); elsewhere the bf16
 * weights are widened to float32 on the fly.
 *
 * The maths is that of the forward pass (zoo/plugins/llama/modeling.py, transformers' modeling_llama.py). In
 * float32 only the summation order inside products differs. In bfloat16 the kernel rounds to bf16 where the bf16
 * forward pass does (every projection's output, the residual stream after each addition, normalised activations,
 * rotated queries and keys, the attention output, the gated MLP product, the logits) and computes in float32
 * between, so it follows the same rounding points; tests/test_native_llama.py holds it to the forward pass.
 *
 * Layouts: weights (out, in) row-major; the embedding (vocab, hidden) and the output embedding (vocab, hidden);
 * keys/values (batch, kv_heads, capacity, head_dim) in the weights' dtype, as zoo.generation.KVCache keeps them.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common.h"

typedef struct {
    const void *attn_norm, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *q_norm, *k_norm, *o_w, *o_b;
    const void *mlp_norm, *gate_w, *gate_b, *up_w, *up_b, *down_w, *down_b; /* biases and q/k norms may be NULL */
    void *keys, *values;                                                     /* (B, kv_heads, capacity, head_dim) */
    int64_t window; /* sliding window: keys a query sees, itself included; 0 = all */
} zoo_rms_layer;

typedef struct {
    int32_t n_layer, hidden, heads, kv_heads, head_dim, inner, vocab, rotary_dim, activation, bf16;
    float eps, scale;        /* RMSNorm epsilon (also of the q/k norms); attention scale */
    int64_t capacity;        /* positions the cache holds */
    int64_t embed_rows;      /* token ids must be below this */
    const void *embed;       /* (embed_rows, hidden) */
    const void *norm;        /* final RMSNorm weight */
    const void *head_w;      /* (vocab, hidden): the output embedding, tied or not */
    const zoo_rms_layer *layers;
} zoo_rms_model;

int zoo_rms_abi_version(void) { return 1; }

int zoo_rms_bf16_dot(void) { return bf16_dot_supported(); }

/* bf16 conversion, rounding and the row products (rows_f32, rows_bf16_widened, rows_bf16_dp, finish_rows) are
 * common.h's, shared with decode.c */

/* The activations a projection reads: float32 values, and (bf16 models) the same values as bf16 for vdpbf16ps. */
typedef struct {
    const float *f;
    const uint16_t *h;
} zoo_input;

/* y[r, j] = W[j, :] . x[r, :] + bias[j] for j in [lo, hi), rows r < B, held in the model's dtype */
static void project(const zoo_rms_model *m, int dp, const void *W, const void *bias, int64_t K, zoo_input x, int B,
                    int64_t lo, int64_t hi, float *y, int64_t ldy) {
    if (!m->bf16)
        rows_f32((const float *)W, K, x.f, B, lo, hi, y, ldy);
#ifdef ZOO_HAVE_BF16_PATH
    else if (dp)
        rows_bf16_dp((const uint16_t *)W, K, x.h, B, lo, hi, y, ldy);
#endif
    else
        rows_bf16_widened((const uint16_t *)W, K, x.f, B, lo, hi, y, ldy);
    finish_rows(y, ldy, B, lo, hi, bias, m->bf16);
}

/* out = weight * (x / rms(x)) over n values, rounded where the forward pass rounds (x * rsqrt in float32, cast to
 * the model's dtype, then times the weight in that dtype); also writes bf16 copies when out16 is given */
static void rms_norm(const float *x, int64_t n, const void *w, float eps, int bf16, float *out, uint16_t *out16) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float var = (float)(ss / (double)n);
    const float rstd = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < n; i++) {
        const float v = held(load(w, bf16, i) * held(x[i] * rstd, bf16), bf16);
        out[i] = v;
        if (out16) out16[i] = to_bf16(v);
    }
}

/* rotate_half rotary on the first rd of head_dim values, as the forward pass applies it (x * cos + rotate_half(x) *
 * sin, each product and the sum held in the model's dtype); cos/sin hold rd values */
static void rotate(float *x, int64_t rd, const float *cos, const float *sin, int bf16) {
    const int64_t half = rd / 2;
    for (int64_t i = 0; i < half; i++) {
        const float a = x[i], b = x[i + half];
        x[i] = held(held(a * cos[i], bf16) + held(-b * sin[i], bf16), bf16);
        x[i + half] = held(held(b * cos[i + half], bf16) + held(a * sin[i + half], bf16), bf16);
    }
}

/*
 * One step for B rows (B <= 8): ids (B); cos/sin (B, rotary_dim) of each row's position (the rotary scaling
 * applied, in the model's dtype's values); the cache holds `past` positions and the new ones go at index past;
 * mask NULL or (B, mask_stride) bytes, 1 = attend, over positions 0..past. Writes logits (B, vocab).
 * Returns 0; or, with nothing written: -1 out of memory, -2 the cache is full, -3 a token id is out of range,
 * -4 more rows than the kernel takes.
 */
int zoo_rms_decode_step(const zoo_rms_model *m, const int64_t *ids, const float *cos, const float *sin, int B,
                        int64_t past, const uint8_t *mask, int64_t mask_stride, float *logits, int threads) {
    const int64_t C = m->hidden, H = m->heads, G = m->kv_heads, D = m->head_dim, I = m->inner, S = past + 1;
    const int64_t QD = H * D, KD = G * D, rd = m->rotary_dim;
    const int bf16 = m->bf16, dp = bf16 && zoo_rms_bf16_dot();
    if (B < 1 || B > ZOO_DP_ROWS) return -4;
    if (past < 0 || past >= m->capacity) return -2;
    for (int r = 0; r < B; r++)
        if (ids[r] < 0 || ids[r] >= m->embed_rows) return -3;
    if (threads < 1) threads = 1;
    /* shared: residual stream x, q/k/v, attention output y (+ bf16), MLP hidden (+ bf16), projection outputs;
     * per thread: normalised x (+ bf16), attention scores */
    const int64_t wide = I > C ? I : C;
    const int64_t shared = (int64_t)B * (C + QD + 2 * KD + QD + I + wide);
    const int64_t local = (int64_t)B * C + S + D;
    float *buf = (float *)malloc(((size_t)shared + (size_t)threads * local) * sizeof(float) +
                                 ((size_t)B * (QD + I) + (size_t)threads * B * C) * sizeof(uint16_t) + 64);
    if (!buf) return -1;
    float *x = buf, *q = x + B * C, *k = q + B * QD, *v = k + B * KD, *y = v + B * KD, *hid = y + B * QD;
    float *out = hid + B * I, *locals = out + B * wide;
    uint16_t *y16 = (uint16_t *)(locals + threads * local), *hid16 = y16 + B * QD, *normed16_all = hid16 + B * I;
    const int64_t group = H / G;

    for (int r = 0; r < B; r++)
        for (int64_t c = 0; c < C; c++) x[r * C + c] = load(m->embed, bf16, ids[r] * C + c);

#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        float *normed = locals + tid * local, *scores = normed + B * C, *head = scores + S;
        uint16_t *normed16 = normed16_all + tid * B * C;
        const zoo_input hn = {normed, normed16}, yin = {y, y16}, min = {hid, hid16};
        int64_t lo, hi;
        for (int l = 0; l < m->n_layer; l++) {
            const zoo_rms_layer *L = &m->layers[l];
            /* every thread normalises every row itself: no barrier, and each reads its own copy */
            for (int r = 0; r < B; r++)
                rms_norm(x + r * C, C, L->attn_norm, m->eps, bf16, normed + r * C, bf16 ? normed16 + r * C : NULL);
            split(QD, 16, tid, nth, &lo, &hi);
            project(m, dp, L->q_w, L->q_b, C, hn, B, lo, hi, q, QD);
            split(KD, 16, tid, nth, &lo, &hi);
            project(m, dp, L->k_w, L->k_b, C, hn, B, lo, hi, k, KD);
            project(m, dp, L->v_w, L->v_b, C, hn, B, lo, hi, v, KD);
#pragma omp barrier
            /* keys: q/k norm, rotary, into the cache with the values */
            split((int64_t)B * G, 1, tid, nth, &lo, &hi);
            for (int64_t item = lo; item < hi; item++) {
                const int64_t r = item / G, g = item % G, at = ((r * G + g) * m->capacity + past) * D;
                float *kh = k + r * KD + g * D, *vh = v + r * KD + g * D;
                if (L->k_norm) rms_norm(kh, D, L->k_norm, m->eps, bf16, kh, NULL);
                rotate(kh, rd, cos + r * rd, sin + r * rd, bf16);
                for (int64_t d = 0; d < D; d++) {
                    if (bf16) {
                        ((uint16_t *)L->keys)[at + d] = to_bf16(kh[d]);
                        ((uint16_t *)L->values)[at + d] = to_bf16(vh[d]);
                    } else {
                        ((float *)L->keys)[at + d] = kh[d];
                        ((float *)L->values)[at + d] = vh[d];
                    }
                }
            }
#pragma omp barrier
            /* queries: q norm, rotary, attention over the group's keys */
            split((int64_t)B * H, 1, tid, nth, &lo, &hi);
            for (int64_t item = lo; item < hi; item++) {
                const int64_t r = item / H, h = item % H, g = h / group;
                const int64_t base = (r * G + g) * m->capacity * D;
                const size_t elt = bf16 ? sizeof(uint16_t) : sizeof(float);
                float *qh = q + r * QD + h * D;
                if (L->q_norm) rms_norm(qh, D, L->q_norm, m->eps, bf16, qh, NULL);
                rotate(qh, rd, cos + r * rd, sin + r * rd, bf16);
                attend(qh, (const char *)L->keys + base * elt, (const char *)L->values + base * elt, bf16, past, D,
                       m->scale, mask ? mask + r * mask_stride : NULL, L->window, ZOO_SOFTMAX_F32, NULL, scores, head);
                for (int64_t d = 0; d < D; d++) {
                    y[r * QD + h * D + d] = held(head[d], bf16);
                    if (bf16) y16[r * QD + h * D + d] = to_bf16(head[d]);
                }
            }
#pragma omp barrier
            /* output projection, added to the residual stream by the thread that owns each column */
            split(C, 16, tid, nth, &lo, &hi);
            project(m, dp, L->o_w, L->o_b, QD, yin, B, lo, hi, out, C);
            for (int r = 0; r < B; r++)
                for (int64_t c = lo; c < hi; c++) x[r * C + c] = held(x[r * C + c] + out[r * C + c], bf16);
#pragma omp barrier
            for (int r = 0; r < B; r++)
                rms_norm(x + r * C, C, L->mlp_norm, m->eps, bf16, normed + r * C, bf16 ? normed16 + r * C : NULL);
            /* gate and up over the same rows, so each thread activates and multiplies its own block */
            split(I, 16, tid, nth, &lo, &hi);
            project(m, dp, L->gate_w, L->gate_b, C, hn, B, lo, hi, hid, I);
            project(m, dp, L->up_w, L->up_b, C, hn, B, lo, hi, out, I);
            for (int r = 0; r < B; r++)
                for (int64_t j = lo; j < hi; j++) {
                    const float a = held(activation(hid[r * I + j], m->activation), bf16);
                    const float p = held(a * out[r * I + j], bf16);
                    hid[r * I + j] = p;
                    if (bf16) hid16[r * I + j] = to_bf16(p);
                }
#pragma omp barrier
            split(C, 16, tid, nth, &lo, &hi);
            project(m, dp, L->down_w, L->down_b, I, min, B, lo, hi, out, C);
            for (int r = 0; r < B; r++)
                for (int64_t c = lo; c < hi; c++) x[r * C + c] = held(x[r * C + c] + out[r * C + c], bf16);
#pragma omp barrier
        }
        for (int r = 0; r < B; r++)
            rms_norm(x + r * C, C, m->norm, m->eps, bf16, normed + r * C, bf16 ? normed16 + r * C : NULL);
        split(m->vocab, 16, tid, nth, &lo, &hi);
        project(m, dp, m->head_w, NULL, C, hn, B, lo, hi, logits, m->vocab);
    }
    free(buf);
    return 0;
}
