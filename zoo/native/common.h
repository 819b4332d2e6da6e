/*
 * What zoo's decoding kernels share (decode.c: GPT-2-style blocks; decode_llama.c: Llama-style ones): the dispatch of
 * hot loops to the widest vector unit, work splitting over threads, a vectorizable exp, dot products (float32, and
 * bf16 widened to float32), the MLP activations, bf16 <-> float32 conversion and rounding as torch rounds, the row
 * products of an (out, in) matrix (float32; bf16 widened, or on AVX512-BF16's vdpbf16ps; int8 with per-row scales,
 * widened, on AVX-512 or a portable loop) and single-query attention over a float32 or bf16 key/value cache.
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

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define ZOO_HAVE_BF16_PATH 1
#endif

/* What the weights (and the cache) of a model are: a kernel's model struct holds one of these codes, so that another
 * kind is a new code rather than a new flag. ZOO_WEIGHTS_INT8 is a kind of the projection matrices only: int8 (out,
 * in) rows with one float32 scale per row (zoo/quantization.py's Int8Linear), the other tensors in a float kind. */
enum { ZOO_WEIGHTS_F32 = 0, ZOO_WEIGHTS_BF16 = 1, ZOO_WEIGHTS_INT8 = 2 };

/* How attention rounds its probabilities before they weight the values (see attend) */
enum { ZOO_SOFTMAX_F32 = 0, ZOO_SOFTMAX_BF16_EXP = 1, ZOO_SOFTMAX_BF16_PROBS = 2 };

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
 * calls so that the activation loops below vectorize (16 values at a time on AVX-512; glibc's scalar tanhf over
 * every MLP value cost ~0.3 ms per GPT-2 token, 2% of a step). x is clamped to where float's exp is finite and
 * normal. */
static inline float exp_approx(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    /* floor(y) as trunc(y) - (trunc(y) > y), branch-free: under -ftrapping-math (gcc's default) gcc vectorizes
     * neither floorf nor a select of a computed value (t - 1); a float -> int conversion it does; |y| < 128 */
    const float y = x * 1.44269504088896341f + 0.5f, t = (float)(int32_t)y;
    const float n = t - (float)(t > y);
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

/* one value's MLP activation (the Llama and T5 kernels apply it per element as they gate) */
__attribute__((unused)) static inline float activation(float g, int kind) {
    switch (kind) {
    case ZOO_SILU: return g / (1.0f + exp_approx(-g));
    case ZOO_GELU_TANH: {
        const float u = 0.7978845608028654f * (g + 0.044715f * g * g * g);
        return g / (1.0f + exp_approx(-2.0f * u));
    }
    case ZOO_GELU_FAST: {
        const float u = g * 0.7978845608f * (1.0f + 0.044715f * g * g);
        return g / (1.0f + exp_approx(-2.0f * u));
    }
    case ZOO_QUICK_GELU: return g / (1.0f + exp_approx(-1.702f * g));
    case ZOO_GELU_ERF: return 0.5f * g * (1.0f + erff(g * 0.7071067811865476f));
    case ZOO_RELU: return g > 0.0f ? g : 0.0f;
    default: return g;
    }
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

/* round to nearest even, NaN kept quiet: torch's float -> bfloat16 conversion */
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    /* a select, not a branch: the loops that round whole rows vectorize */
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

/* the value as the model's dtype holds it: rounded to bf16 in a bf16 model, as is in float32 */
static inline float held(float f, int bf16) { return bf16 ? from_bf16(to_bf16(f)) : f; }

/* element i of a float32 or bf16 tensor, as float32 */
static inline float load(const void *p, int bf16, int64_t i) {
    return bf16 ? from_bf16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* Whether this processor multiplies bf16 pairs itself (vdpbf16ps): else bf16 weights are widened to float32 */
static inline int bf16_dot_supported(void) {
#ifdef ZOO_HAVE_BF16_PATH
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
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

/* h = act(h) over n bf16 values where zoo.activations spells the function as several torch ops on the tensor
 * (gelu_python: x * 0.5 * (1 + erf(x / sqrt 2)); gelu_fast: 0.5 * x * (1 + tanh(x * 0.7978845608 * (1 + 0.044715 * x
 * * x))); quick_gelu: x * sigmoid(1.702 * x)): each op's output rounded to bf16, as each of those ops returns a bf16
 * tensor (its Python scalar taken as float32, torch's opmath). Rare activations, so plain libm calls. Any other kind:
 * the one-kernel function (activate), rounded once. */
__attribute__((unused)) static void activate_bf16_stepwise(float *h, int64_t n, int kind) {
#define R(v) from_bf16(to_bf16(v))
    for (int64_t j = 0; j < n; j++) {
        const float x = h[j];
        switch (kind) {
        case ZOO_GELU_ERF: h[j] = R(R(x * 0.5f) * R(1.0f + R(erff(R(x / 1.4142135623730951f))))); break;
        case ZOO_GELU_FAST: {
            const float inner = R(R(x * 0.7978845608f) * R(1.0f + R(R(0.044715f * x) * x)));
            h[j] = R(R(0.5f * x) * R(1.0f + R(tanhf(inner))));
            break;
        }
        case ZOO_QUICK_GELU: h[j] = R(x * R(1.0f / (1.0f + expf(-R(1.702f * x))))); break;
        default: activate(h + j, 1, kind); h[j] = R(h[j]); break;
        }
    }
#undef R
}

/* --- row products of an (out, in) matrix: y[r, j] = W[j, :] . x[r, :] for j in [lo, hi), rows r < B ------------- */

/* Rows of x rows_f32 takes in registers at once on AVX-512 (more go through the per-row dots) */
#define ZOO_F32_BLOCK_ROWS 8

#ifdef ZOO_HAVE_BF16_PATH
/* the sum of a vector's 16 lanes in dot's order (halves added: lane l + lane l + 8, then + 4, + 2, + 1) */
__attribute__((target("avx512f"))) static inline float sum_lanes(__m512 v) {
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* y[r, j..j+N) for N (1 to 4) rows of W against B rows of x, one accumulator register per (row of W, row of x), so
 * every vector of W loaded serves all B inputs: dot's arithmetic (lane-wise FMA over blocks of 16, the same lane
 * sums, the same scalar tail), so a row's result does not depend on how many rows share the call. B and N are
 * constants at every call site, so the loops unroll and the accumulators stay in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void rows_f32_block(
    const float *restrict W, int64_t K, const float *restrict x, const int B, const int N, int64_t j,
    float *restrict y, int64_t ldy) {
    __m512 acc[4][ZOO_F32_BLOCK_ROWS];
    for (int n = 0; n < N; n++)
        for (int r = 0; r < B; r++) acc[n][r] = _mm512_setzero_ps();
    const int64_t full = K - K % 16;
    for (int64_t k = 0; k < full; k += 16) {
        __m512 w[4];
        for (int n = 0; n < N; n++) {
            w[n] = _mm512_loadu_ps(W + (j + n) * K + k);
            /* the same block of the rows two blocks on, into L2: with B inputs per load the loop runs slower
             * than the memory streams, and the hardware prefetcher alone left it waiting on each new row (t5-small's
             * step at B = 8: 13 -> 7-7.5 ms; one block ahead into L1 was ~5% slower, further ahead no better) */
            _mm_prefetch((const char *)(W + (j + n + 2 * N) * K + k), _MM_HINT_T1);
        }
        for (int r = 0; r < B; r++) {
            const __m512 v = _mm512_loadu_ps(x + r * K + k);
            for (int n = 0; n < N; n++) acc[n][r] = _mm512_fmadd_ps(w[n], v, acc[n][r]);
        }
    }
    for (int n = 0; n < N; n++)
        for (int r = 0; r < B; r++) {
            float tail = 0.0f;
            for (int64_t k = full; k < K; k++) tail = fmaf(W[(j + n) * K + k], x[r * K + k], tail);
            y[r * ldy + j + n] = sum_lanes(acc[n][r]) + tail;
        }
}

/* N rows of W at a time against b inputs: N * b accumulators, N loads of W and b of x per N * b FMAs (x is re-read
 * from L1, or from L2 for long rows, for every block of rows: the more rows a block, the fewer re-reads) */
#define ZOO_F32_ROWS_CASE(b, N)                                                               \
    case b:                                                                                   \
        for (; j + N <= hi; j += N) rows_f32_block(W, K, x, b, N, j, y, ldy);                 \
        for (; j < hi; j++) rows_f32_block(W, K, x, b, 1, j, y, ldy);                         \
        break;

/* rows_f32 for 1..ZOO_F32_BLOCK_ROWS inputs on AVX-512: W streams once per pair of its rows instead of once per row
 * of W and input (t5-small's decoding step at batch 8 ~2x faster); at one input, four rows at a time with the
 * prefetch two blocks ahead instead of dot's one row without it (t5-small's step at batch 1: 5.4-6.0 -> 3.7-4.1 ms,
 * Qwen2.5-0.5B-shaped fp32 decode 13.5-13.8 -> 14.4-14.8 tok/s, same bandwidth; the same sums, so the same bits) */
__attribute__((target("avx512f"))) static void rows_f32_avx512(const float *restrict W, int64_t K,
                                                              const float *restrict x, int B, int64_t lo, int64_t hi,
                                                              float *restrict y, int64_t ldy) {
    int64_t j = lo;
    switch (B) {
        ZOO_F32_ROWS_CASE(1, 4)
        ZOO_F32_ROWS_CASE(2, 4)
        ZOO_F32_ROWS_CASE(3, 4)
        ZOO_F32_ROWS_CASE(4, 4)
        ZOO_F32_ROWS_CASE(5, 4)
        ZOO_F32_ROWS_CASE(6, 4)
        ZOO_F32_ROWS_CASE(7, 3)
        ZOO_F32_ROWS_CASE(8, 3)
    default: break;
    }
}
#undef ZOO_F32_ROWS_CASE
#endif

__attribute__((unused)) ZOO_HOT static void rows_f32(const float *restrict W, int64_t K, const float *restrict x,
                                                     int B, int64_t lo, int64_t hi, float *restrict y, int64_t ldy) {
#ifdef ZOO_HAVE_BF16_PATH
    if (B >= 1 && B <= ZOO_F32_BLOCK_ROWS && __builtin_cpu_supports("avx512f")) {
        rows_f32_avx512(W, K, x, B, lo, hi, y, ldy);
        return;
    }
#endif
    for (int64_t j = lo; j < hi; j++)
        for (int r = 0; r < B; r++) y[r * ldy + j] = dot(W + j * K, x + r * K, K);
}

__attribute__((unused)) ZOO_HOT static void rows_bf16_widened(const uint16_t *restrict W, int64_t K,
                                                              const float *restrict x, int B, int64_t lo, int64_t hi,
                                                              float *restrict y, int64_t ldy) {
    for (int64_t j = lo; j < hi; j++)
        for (int r = 0; r < B; r++) y[r * ldy + j] = dot_bf16(W + j * K, x + r * K, K);
}

/* Rows a call of rows_bf16_dp takes (one accumulator register per row) */
#define ZOO_DP_ROWS 8
#define ZOO_BF16_AHEAD 4096 /* bytes rows_bf16_dp prefetches ahead of each load */

#ifdef ZOO_HAVE_BF16_PATH
/* y[r, j] = W[j, :] . x[r, :] with vdpbf16ps, 32 bf16 pairs an instruction; x in bf16 (B, K), B <= ZOO_DP_ROWS. One
 * row of W at a time, read once for all B inputs; at B = 1 two accumulators keep two dependency chains in flight.
 * Each load prefetches the line ZOO_BF16_AHEAD bytes on into L2, across row ends: the hardware prefetcher alone left
 * the loop waiting on memory (Qwen2.5-0.5B-shaped bf16 decode, 2 cores, 25-27 GB/s: 22.3-23.0 tok/s without, 24.8-26.0
 * at 4 KB ahead, 24.4-25.5 at 2 KB, 24.3-25.3 at 8 KB). */
__attribute__((unused, target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void rows_bf16_dp(const uint16_t *restrict W, int64_t K, const uint16_t *restrict x, int B, int64_t lo,
                         int64_t hi, float *restrict y, int64_t ldy) {
    const int64_t K32 = K & ~(int64_t)31;
    for (int64_t j = lo; j < hi; j++) {
        const uint16_t *restrict w = W + j * K;
        if (B == 1) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k + 64 <= K32; k += 64) {
                _mm_prefetch((const char *)(w + k) + ZOO_BF16_AHEAD, _MM_HINT_T1);
                _mm_prefetch((const char *)(w + k) + ZOO_BF16_AHEAD + 64, _MM_HINT_T1);
                a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(x + k), (__m512bh)_mm512_loadu_si512(w + k));
                a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(x + k + 32),
                                      (__m512bh)_mm512_loadu_si512(w + k + 32));
            }
            for (; k < K32; k += 32)
                a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(x + k), (__m512bh)_mm512_loadu_si512(w + k));
            float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
            for (; k < K; k++) s += from_bf16(w[k]) * from_bf16(x[k]);
            y[j] = s;
            continue;
        }
        __m512 acc[ZOO_DP_ROWS];
        for (int r = 0; r < B; r++) acc[r] = _mm512_setzero_ps();
        for (int64_t k = 0; k < K32; k += 32) {
            _mm_prefetch((const char *)(w + k) + ZOO_BF16_AHEAD, _MM_HINT_T1);
            const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + k);
            for (int r = 0; r < B; r++)
                acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_loadu_si512(x + r * K + k), wv);
        }
        for (int r = 0; r < B; r++) {
            float s = _mm512_reduce_add_ps(acc[r]);
            for (int64_t k = K32; k < K; k++) s += from_bf16(w[k]) * from_bf16(x[r * K + k]);
            y[r * ldy + j] = s;
        }
    }
}
#endif

/* --- int8 rows: y[r, j] = (W[j, :] . x[r, :]) * scale[j], W int8 (out, in), x float32 (B rows of stride ldx) ---------
 * Each int8 weight is widened to float32 (exactly: |q| <= 127) and multiplied with float32 activations, accumulated
 * in float32; the row's scale multiplies the finished sum, and in a bf16 model (bf16 = 1) that product is rounded
 * to bf16, as torch's _weight_int8pack_mm rounds its bf16 output (the bias is added after, by finish_rows). At a few
 * rows the product is bound by reading the weights (one byte each), so the loops are written to stream: each thread
 * reads its own contiguous block of rows, every row once for all B inputs, and prefetches ZOO_I8_AHEAD bytes ahead
 * of where it reads into L2. Unlike the float32 output embedding's long rows (common.h's rows_f32, where the
 * hardware prefetcher alone reaches a plain sum's rate), the int8 blocks of GPT-2's layers are short (0.3-1.2 MB a
 * thread between barriers) and a byte carries four times the work: on 2 cores, GPT-2's 124 MB of int8 matrices
 * stream at 0.55 of a plain sum's rate without the prefetches, at 0.95-1.0 with them 4-8 KB ahead (1-2 KB: 0.6-0.8). */
#define ZOO_I8_AHEAD 4096
#define ZOO_I8_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 2)

/* Whether the AVX-512 int8 rows run here (else the portable loop, which the compiler vectorizes as it can) */
static inline int int8_vector_supported(void) {
#ifdef ZOO_HAVE_BF16_PATH
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static inline float dot_i8(const int8_t *restrict w, const float *restrict x, int64_t n) {
    float acc[16] = {0};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) acc[l] += (float)w[k + l] * x[k + l];
    float tail = 0.0f;
    for (; k < n; k++) tail += (float)w[k] * x[k];
    for (int s = 8; s > 0; s >>= 1)
        for (int l = 0; l < s; l++) acc[l] += acc[l + s];
    return acc[0] + tail;
}

__attribute__((unused)) ZOO_HOT static void rows_i8_plain(const int8_t *restrict W, const float *restrict scale,
                                                          int64_t K, const float *restrict x, int64_t ldx, int B,
                                                          int64_t lo, int64_t hi, float *restrict y, int64_t ldy,
                                                          int bf16) {
    for (int64_t j = lo; j < hi; j++) {
        for (int64_t k = 0; k < K; k += 64) ZOO_I8_PREFETCH(W + j * K + k + ZOO_I8_AHEAD);
        for (int r = 0; r < B; r++) y[r * ldy + j] = held(dot_i8(W + j * K, x + r * ldx, K) * scale[j], bf16);
    }
}

/* Rows of x a pass over a weight row of rows_i8_avx512 takes (one accumulator register each) */
#define ZOO_I8_ROWS 8

#ifdef ZOO_HAVE_BF16_PATH
/* 16 int8 weights widened to float32: vpmovsxbd, vcvtdq2ps */
#define ZOO_I8_WIDEN(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define ZOO_I8_WIDEN_MASKED(m, p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8((m), (p))))

/* The same products on AVX-512: 16 weights widened per step and FMA'd with each input row. At B = 1 four
 * accumulators (64 weights an iteration) keep four dependency chains in flight, so the loads, not the FMA latency,
 * set the pace; the last K % 16 weights are a masked load (never read past the row). */
__attribute__((unused, target("avx512f,avx512bw,avx512vl")))
static void rows_i8_avx512(const int8_t *restrict W, const float *restrict scale, int64_t K, const float *restrict x,
                           int64_t ldx, int B, int64_t lo, int64_t hi, float *restrict y, int64_t ldy, int bf16) {
    const int64_t K16 = K & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (K - K16)) - 1u);
    for (int64_t j = lo; j < hi; j++) {
        const int8_t *restrict w = W + j * K;
        if (B == 1) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
                   a3 = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k + 64 <= K; k += 64) {
                ZOO_I8_PREFETCH(w + k + ZOO_I8_AHEAD); /* a cache line an iteration (never faults past the end) */
                a0 = _mm512_fmadd_ps(ZOO_I8_WIDEN(w + k), _mm512_loadu_ps(x + k), a0);
                a1 = _mm512_fmadd_ps(ZOO_I8_WIDEN(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
                a2 = _mm512_fmadd_ps(ZOO_I8_WIDEN(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
                a3 = _mm512_fmadd_ps(ZOO_I8_WIDEN(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
            }
            for (int64_t c = k; c < K; c += 64) ZOO_I8_PREFETCH(w + c + ZOO_I8_AHEAD);
            for (; k < K16; k += 16) a0 = _mm512_fmadd_ps(ZOO_I8_WIDEN(w + k), _mm512_loadu_ps(x + k), a0);
            if (tail)
                a1 = _mm512_fmadd_ps(ZOO_I8_WIDEN_MASKED(tail, w + K16), _mm512_maskz_loadu_ps(tail, x + K16), a1);
            const float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
            y[j] = held(s * scale[j], bf16);
            continue;
        }
        for (int r0 = 0; r0 < B; r0 += ZOO_I8_ROWS) {
            const int nb = B - r0 < ZOO_I8_ROWS ? B - r0 : ZOO_I8_ROWS;
            const float *restrict xr = x + r0 * ldx;
            __m512 acc[ZOO_I8_ROWS];
            for (int r = 0; r < nb; r++) acc[r] = _mm512_setzero_ps();
            if (r0 == 0)
                for (int64_t c = 0; c < K; c += 64) ZOO_I8_PREFETCH(w + c + ZOO_I8_AHEAD);
            for (int64_t k = 0; k < K16; k += 16) {
                const __m512 wv = ZOO_I8_WIDEN(w + k);
                for (int r = 0; r < nb; r++) acc[r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + r * ldx + k), acc[r]);
            }
            if (tail) {
                const __m512 wv = ZOO_I8_WIDEN_MASKED(tail, w + K16);
                for (int r = 0; r < nb; r++)
                    acc[r] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, xr + r * ldx + K16), acc[r]);
            }
            for (int r = 0; r < nb; r++) y[(r0 + r) * ldy + j] = held(_mm512_reduce_add_ps(acc[r]) * scale[j], bf16);
        }
    }
}
#undef ZOO_I8_WIDEN
#undef ZOO_I8_WIDEN_MASKED
#endif

/* rows_i8_avx512 where vector (int8_vector_supported(), not turned off), else rows_i8_plain */
__attribute__((unused)) static void rows_i8(int vector, const int8_t *W, const float *scale, int64_t K, const float *x,
                                            int64_t ldx, int B, int64_t lo, int64_t hi, float *y, int64_t ldy,
                                            int bf16) {
#ifdef ZOO_HAVE_BF16_PATH
    if (vector) {
        rows_i8_avx512(W, scale, K, x, ldx, B, lo, hi, y, ldy, bf16);
        return;
    }
#else
    (void)vector;
#endif
    rows_i8_plain(W, scale, K, x, ldx, B, lo, hi, y, ldy, bf16);
}

/* y[r, j] += bias[j] for j in [lo, hi), then held in the model's dtype: the bias joins the float32 sum before the
 * one rounding, as addmm adds it. One loop per case, so each vectorizes. */
__attribute__((unused)) ZOO_HOT static void finish_rows(float *restrict y, int64_t ldy, int B, int64_t lo, int64_t hi,
                                                        const void *bias, int bf16) {
    for (int r = 0; r < B; r++) {
        float *restrict row = y + r * ldy;
        if (bf16 && bias) {
            const uint16_t *restrict b = (const uint16_t *)bias;
            for (int64_t j = lo; j < hi; j++) row[j] = from_bf16(to_bf16(row[j] + from_bf16(b[j])));
        } else if (bf16) {
            for (int64_t j = lo; j < hi; j++) row[j] = from_bf16(to_bf16(row[j]));
        } else if (bias) {
            const float *restrict b = (const float *)bias;
            for (int64_t j = lo; j < hi; j++) row[j] += b[j];
        }
    }
}

/* Single-query attention of one head over cached positions 0..past (the new key/value already stored at past),
 * skipping masked positions and those outside the window; writes head_dim float32 outputs. `softmax` says where the
 * probabilities are rounded, as the forward pass being followed rounds them: ZOO_SOFTMAX_F32 nowhere (float32 models;
 * the Llama kernel); ZOO_SOFTMAX_BF16_EXP the exponentials e^(s - max) before they weight the values, normalised at
 * the end by their float32 sum (torch's CPU scaled_dot_product_attention on bf16, its flash kernel);
 * ZOO_SOFTMAX_BF16_PROBS the normalised probabilities (a float32 softmax cast to bf16, then the product with the
 * values: GPT-2's reorder_and_upcast_attn). `bias`, when given, is added to the scaled score of each position
 * (T5's relative position bias). */
ZOO_HOT static void attend(const float *restrict q, const void *keys, const void *values, int bf16, int64_t past,
                           int64_t hd, float scale, const uint8_t *restrict mask, int64_t window, int softmax,
                           const float *restrict bias, float *restrict scores, float *restrict out) {
    const int64_t first = window > 0 && past + 1 > window ? past + 1 - window : 0;
    float best = -INFINITY;
    for (int64_t s = 0; s <= past; s++) {
        float v = -INFINITY;
        if (s >= first && !(mask && !mask[s]))
            v = (bf16 ? dot_bf16((const uint16_t *)keys + s * hd, q, hd) : dot((const float *)keys + s * hd, q, hd)) *
                scale + (bias ? bias[s] : 0.0f);
        scores[s] = v;
        best = v > best ? v : best;
    }
    float total = 0.0f;
    for (int64_t s = 0; s <= past; s++) {
        const float e = exp_approx(scores[s] - best);
        scores[s] = scores[s] == -INFINITY ? 0.0f : e;
        total += scores[s];
    }
    if (softmax == ZOO_SOFTMAX_BF16_EXP)
        for (int64_t s = 0; s <= past; s++) scores[s] = from_bf16(to_bf16(scores[s]));
    else if (softmax == ZOO_SOFTMAX_BF16_PROBS && total > 0.0f)
        for (int64_t s = 0; s <= past; s++) scores[s] = from_bf16(to_bf16(scores[s] / total));
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
    if (softmax == ZOO_SOFTMAX_BF16_PROBS) return; /* already normalised */
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int64_t d = 0; d < hd; d++) out[d] *= inv;
}

#endif
