/*
 * What zoo's decoding kernels share (decode.c: GPT-2-style blocks; decode_llama.c: Llama-style ones): the dispatch of
 * hot loops to the widest vector unit, work splitting over threads, a vectorizable exp, dot products (float32, and
 * bf16 widened to float32), the MLP activations and single-query attention over a float32 or bf16 key/value cache.
 * Everything here is static, so each kernel compiles its own copy.
 */
#ifndef ZOO_NATIVE_COMMON_H
#define ZOO_NATIVE_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* one build, dispatched at load time to the widest vector unit the processor has */
#define ZOO_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ZOO_HOT
#endif

enum { ZOO_GELU_TANH = 0, ZOO_GELU_ERF = 1, ZOO_RELU = 2, ZOO_SILU = 3, ZOO_GELU_FAST = 4, ZOO_QUICK_GELU = 5 };

static void split(int64_t n, int64_t align, int tid, int nth, int64_t *lo, int64_t *hi) {
    /* thread tid's block of [0, n), block edges on multiples of align (whole vectors per thread) */
    int64_t units = (n + align - 1) / align;
    int64_t a = units * tid / nth, b = units * (tid + 1) / nth;
    *lo = a * align < n ? a * align : n;
    *hi = b * align < n ? b * align : n;
}

static inline float dot(const float *restrict a, const float *restrict b, int64_t n) {
    float acc[16] = {0};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[k + l] * b[k + l];
    float tail = 0.0f;
    for (; k < n; k++) tail += a[k] * b[k];
    for (int s = 8; s > 0; s >>= 1)
        for (int l = 0; l < s; l++) acc[l] += acc[l + s];
    return acc[0] + tail;
}

/* exp(x) as 2^n * e^r, |r| <= ln2/2, with Cephes' degree-5 polynomial for e^r (about 1 ulp): written without libm
 * calls so that the activation loops below vectorize (glibc's scalar tanhf over every MLP value cost ~0.3 ms per
 * GPT-2 token, 2% of a step). x is clamped to where float's exp is finite and normal. */
static inline float exp_approx(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (p * r * r + r + 1.0f) * scale;
}

/* h = act(h) over n values. The tanh GELUs use 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), the same function. */
__attribute__((unused)) ZOO_HOT static void activate(float *restrict h, int64_t n, int kind) {
    switch (kind) {
    case ZOO_GELU_TANH:
        for (int64_t j = 0; j < n; j++) {
            const float x = h[j], u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
            h[j] = x / (1.0f + exp_approx(-2.0f * u));
        }
        break;
    case ZOO_GELU_FAST:
        for (int64_t j = 0; j < n; j++) {
            const float x = h[j], u = x * 0.7978845608f * (1.0f + 0.044715f * x * x);
            h[j] = x / (1.0f + exp_approx(-2.0f * u));
        }
        break;
    case ZOO_GELU_ERF:
        for (int64_t j = 0; j < n; j++) h[j] = 0.5f * h[j] * (1.0f + erff(h[j] * 0.7071067811865476f));
        break;
    case ZOO_RELU:
        for (int64_t j = 0; j < n; j++) h[j] = h[j] > 0.0f ? h[j] : 0.0f;
        break;
    case ZOO_SILU:
        for (int64_t j = 0; j < n; j++) h[j] = h[j] / (1.0f + exp_approx(-h[j]));
        break;
    case ZOO_QUICK_GELU:
        for (int64_t j = 0; j < n; j++) h[j] = h[j] / (1.0f + exp_approx(-1.702f * h[j]));
        break;
    default:
        break;
    }
}

/* bf16 -> float32: the bf16 bits are the float's upper half */
static inline float from_bf16(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* dot of a bf16 row with float32 values, the row widened on the fly (bf16 keys; bf16 weights without AVX512-BF16) */
static inline float dot_bf16(const uint16_t *restrict w, const float *restrict x, int64_t n) {
    float acc[16] = {0};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) acc[l] += from_bf16(w[k + l]) * x[k + l];
    float tail = 0.0f;
    for (; k < n; k++) tail += from_bf16(w[k]) * x[k];
    for (int s = 8; s > 0; s >>= 1)
        for (int l = 0; l < s; l++) acc[l] += acc[l + s];
    return acc[0] + tail;
}

/* Single-query attention of one head over cached positions 0..past (the new key/value already stored at past),
 * skipping masked positions and those outside the window; writes head_dim float32 outputs. */
ZOO_HOT static void attend(const float *restrict q, const void *keys, const void *values, int bf16, int64_t past,
                           int64_t hd, float scale, const uint8_t *restrict mask, int64_t window,
                           float *restrict scores, float *restrict out) {
    const int64_t first = window > 0 && past + 1 > window ? past + 1 - window : 0;
    float best = -INFINITY;
    for (int64_t s = 0; s <= past; s++) {
        float v = -INFINITY;
        if (s >= first && !(mask && !mask[s]))
            v = (bf16 ? dot_bf16((const uint16_t *)keys + s * hd, q, hd) : dot((const float *)keys + s * hd, q, hd)) *
                scale;
        scores[s] = v;
        best = v > best ? v : best;
    }
    float total = 0.0f;
    for (int64_t s = 0; s <= past; s++) {
        const float e = exp_approx(scores[s] - best);
        scores[s] = scores[s] == -INFINITY ? 0.0f : e;
        total += scores[s];
    }
    for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int64_t s = 0; s <= past; s++) {
        const float e = scores[s];
        if (e == 0.0f) continue;
        if (bf16) {
            const uint16_t *restrict v = (const uint16_t *)values + s * hd;
            for (int64_t d = 0; d < hd; d++) out[d] += e * from_bf16(v[d]);
        } else {
            const float *restrict v = (const float *)values + s * hd;
            for (int64_t d = 0; d < hd; d++) out[d] += e * v[d];
        }
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int64_t d = 0; d < hd; d++) out[d] *= inv;
}

#endif
