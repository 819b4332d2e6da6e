/*
 * Fused elementwise ops of the PyTorch forward pass of Llama-style decoders (zoo/layers): RMSNorm, the gated MLP's
 * act(gate) * up, and rotary positions applied to queries and keys while they are copied into attention's layout.
 *
 * Why it exists: in a prompt's forward pass (the prefill) the projections run at the GEMM's rate, and what eats the
 * rest is the elementwise ops between them. Eager PyTorch spells RMSNorm as seven ops (to float32, pow, mean, add,
 * rsqrt, mul, to the dtype, mul), the rotation as six per tensor (mul, slice, neg, cat, mul, add) and the gate as two;
 * each reads and writes its whole tensor and opens its own parallel region. Here each is one pass over its input
 * (benchmarks/bench_llama.py's prefill: ~7% of a float32 prompt, ~20% of a bf16 one).
 *
 * The maths and the rounding points are the forward pass's (zoo/layers/norm.py, mlp.py, rotary.py; transformers'
 * modeling_llama.py): in bfloat16 a value is rounded to bf16 wherever the torch op that makes it returns a bf16
 * tensor, and computed in float32 between; in float32 only the summation order of RMSNorm's mean differs (and exp's
 * last bit in the activations). tests/test_native_ops.py holds each op to its torch spelling.
 *
 * Tensors are float32 or bf16 (one flag per call: all of a call's tensors have the model's dtype), addressed by
 * element strides, so the views the fused projections return (q, k and v side by side in one row) are read in place.
 */
#include <math.h>
#include <stdint.h>
#include <omp.h>

#include "common.h"

int zoo_ops_abi_version(void) { return 1; }

/* The workers below carry ZOO_HOT (one clone per vector width) and the exported functions only open the parallel
 * region: gcc outlines a parallel region's body into a function of its own, which would not inherit the clones and
 * would run its loops (and exp's floorf, a libm call there) on SSE2. */

/* rows [lo, hi) of zoo_ops_rms_norm */
ZOO_HOT static void rms_rows(const void *x, int64_t inner, int64_t xa, int64_t xb, int64_t n, const void *w, float eps,
                             void *out, int bf16, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
        const int64_t off = (r / inner) * xa + (r % inner) * xb;
        float sum[16] = {0}, tail = 0.0f;
        int64_t j = 0;
        if (bf16) {
            const uint16_t *row = (const uint16_t *)x + off, *weight = (const uint16_t *)w;
            for (; j + 16 <= n; j += 16)
                for (int l = 0; l < 16; l++) sum[l] += from_bf16(row[j + l]) * from_bf16(row[j + l]);
            for (; j < n; j++) tail += from_bf16(row[j]) * from_bf16(row[j]);
            for (int s = 8; s > 0; s >>= 1)
                for (int l = 0; l < s; l++) sum[l] += sum[l + s];
            const float scale = 1.0f / sqrtf((sum[0] + tail) / (float)n + eps);
            uint16_t *o = (uint16_t *)out + r * n;
            for (int64_t i = 0; i < n; i++)
                o[i] = to_bf16(from_bf16(weight[i]) * from_bf16(to_bf16(from_bf16(row[i]) * scale)));
        } else {
            const float *row = (const float *)x + off, *weight = (const float *)w;
            for (; j + 16 <= n; j += 16)
                for (int l = 0; l < 16; l++) sum[l] += row[j + l] * row[j + l];
            for (; j < n; j++) tail += row[j] * row[j];
            for (int s = 8; s > 0; s >>= 1)
                for (int l = 0; l < s; l++) sum[l] += sum[l + s];
            const float scale = 1.0f / sqrtf((sum[0] + tail) / (float)n + eps);
            float *o = (float *)out + r * n;
            for (int64_t i = 0; i < n; i++) o[i] = weight[i] * (row[i] * scale);
        }
    }
}

/* out[r, :] = w * (x[r, :] * rsqrt(mean(x[r, :]^2) + eps)) over rows r = (a, b): x at a * xa + b * xb (element
 * strides), out contiguous (rows, n). bf16: x widened, the normalised row rounded to bf16 before the weight
 * multiplies it (RMSNorm casts back to the input dtype first), the product rounded. */
void zoo_ops_rms_norm(const void *x, int64_t outer, int64_t inner, int64_t xa, int64_t xb, int64_t n, const void *w,
                      float eps, void *out, int bf16) {
    const int64_t rows = outer * inner;
#pragma omp parallel if (rows * n >= 16384)
    {
        int64_t lo, hi;
        split(rows, 1, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        rms_rows(x, inner, xa, xb, n, w, eps, out, bf16, lo, hi);
    }
}

#ifdef ZOO_HAVE_BF16_PATH
#define ZOO_AVX512 __attribute__((target("avx512f,avx512bw")))
/* 16 bf16 values widened, and 16 floats rounded to bf16 as to_bf16 rounds (nearest even, NaN kept quiet); the
 * scalar loops' selects are not vectorized in gcc 12's AVX-512 clones (see silu_avx512) */
ZOO_AVX512 static inline __m512 load16_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
ZOO_AVX512 static inline __m512 round16_bf16(__m512 f) { /* the bf16 value, as a float */
    const __m512i u = _mm512_castps_si512(f), high = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i biased = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    const __m512i rounded = _mm512_and_si512(biased, high);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i quiet = _mm512_or_si512(_mm512_and_si512(u, high), _mm512_set1_epi32(0x400000));
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(rounded, nan, quiet));
}
ZOO_AVX512 static inline void store16_bf16(uint16_t *p, __m512 rounded) { /* rounded: from round16_bf16 */
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(rounded), 16)));
}

/* a[i] widened from g[i]; o[i] = bf16(bf16(a[i]) * u[i]): the gate's bf16 loops over whole vectors; return how many
 * values they did */
ZOO_AVX512 static int64_t widen_bf16_avx512(const uint16_t *g, float *a, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(a + i, load16_bf16(g + i));
    return i;
}
ZOO_AVX512 static int64_t gate_bf16_avx512(const float *a, const uint16_t *u, uint16_t *o, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        store16_bf16(o + i, round16_bf16(_mm512_mul_ps(round16_bf16(_mm512_loadu_ps(a + i)), load16_bf16(u + i))));
    return i;
}

/* one bf16 vector's rotation, 16 channel pairs at a time (half a multiple of 16): rotary_range's bf16 loop */
ZOO_AVX512 static void rotate_bf16_avx512(const uint16_t *p, const uint16_t *c, const uint16_t *s, uint16_t *y,
                                          int64_t half) {
    for (int64_t i = 0; i < half; i += 16) {
        const __m512 first = load16_bf16(p + i), second = load16_bf16(p + i + half);
        const __m512 neg = _mm512_sub_ps(_mm512_setzero_ps(), second);
        store16_bf16(y + i, round16_bf16(_mm512_add_ps(round16_bf16(_mm512_mul_ps(first, load16_bf16(c + i))),
                                                       round16_bf16(_mm512_mul_ps(neg, load16_bf16(s + i))))));
        store16_bf16(y + i + half,
                     round16_bf16(_mm512_add_ps(round16_bf16(_mm512_mul_ps(second, load16_bf16(c + i + half))),
                                                round16_bf16(_mm512_mul_ps(first, load16_bf16(s + i + half))))));
    }
}
#endif

#ifdef ZOO_HAVE_BF16_PATH
/* silu over n values, 16 at a time: common.h's exp_approx op for op (this file compiles without FMA contraction, so
 * the scalar loop rounds the same products and sums). gcc 12 vectorizes activate()'s loops in the default clone but
 * not in the AVX-512 one (it turns exp's clamp into branches there), and the gate is most of a prompt's elementwise
 * work. */
ZOO_AVX512 static void silu_avx512(float *h, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 g = _mm512_loadu_ps(h + j);
        __m512 x = _mm512_sub_ps(_mm512_setzero_ps(), g);
        x = _mm512_min_ps(_mm512_set1_ps(88.3f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x)); /* NaN kept, as there */
        const __m512 y = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(0.5f));
        const __m512 t = _mm512_cvtepi32_ps(_mm512_cvttps_epi32(y));
        const __m512 f = _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(t, y, _CMP_GT_OQ), t, one); /* floor(y) */
        const __m512 r = _mm512_add_ps(_mm512_sub_ps(x, _mm512_mul_ps(f, _mm512_set1_ps(0.693359375f))),
                                       _mm512_mul_ps(f, _mm512_set1_ps(2.12194440e-4f)));
        __m512 p = _mm512_set1_ps(1.9875691500e-4f);
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
        const __m512 scale = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(f), _mm512_set1_epi32(127)), 23));
        const __m512 e = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), one),
                                       scale);
        _mm512_storeu_ps(h + j, _mm512_div_ps(g, _mm512_add_ps(one, e)));
    }
    activate(h + j, n - j, ZOO_SILU);
}
#endif

/* act(h) over n values: silu 16 at a time where the processor has AVX-512 */
static void activate_values(float *h, int64_t n, int kind, int wide) {
#ifdef ZOO_HAVE_BF16_PATH
    if (wide && kind == ZOO_SILU) {
        silu_avx512(h, n);
        return;
    }
#endif
    (void)wide;
    activate(h, n, kind);
}

/* a[i] = bf16 g[i] widened, 16 at a time where wide */
static void widen_bf16(const uint16_t *restrict g, float *restrict a, int64_t n, int wide) {
    int64_t i = 0;
#ifdef ZOO_HAVE_BF16_PATH
    if (wide) i = widen_bf16_avx512(g, a, n);
#endif
    (void)wide;
    for (; i < n; i++) a[i] = from_bf16(g[i]);
}

/* elements [lo, hi) of zoo_ops_gated's rows, in chunks of at most 256 within a row */
ZOO_HOT static void gated_range(const void *gate, const void *up, int64_t n, int64_t ld, void *out, int kind,
                                int stepwise, int bf16, int64_t lo, int64_t hi) {
    float a[256];
#ifdef ZOO_HAVE_BF16_PATH
    const int wide = __builtin_cpu_supports("avx512bw");
#else
    const int wide = 0;
#endif
    for (int64_t start = lo; start < hi;) {
        const int64_t r = start / n, c = start % n;
        int64_t len = n - c;
        if (len > hi - start) len = hi - start;
        if (len > 256) len = 256;
        if (bf16) {
            const uint16_t *restrict g = (const uint16_t *)gate + r * ld + c,
                           *restrict u = (const uint16_t *)up + r * ld + c;
            uint16_t *restrict o = (uint16_t *)out + r * n + c;
            widen_bf16(g, a, len, wide);
            if (stepwise)
                activate_bf16_stepwise(a, len, kind);
            else
                activate_values(a, len, kind, wide);
            int64_t i = 0;
#ifdef ZOO_HAVE_BF16_PATH
            if (wide)
                i = gate_bf16_avx512(a, u, o, len);
#endif
            for (; i < len; i++) o[i] = to_bf16(from_bf16(to_bf16(a[i])) * from_bf16(u[i]));
        } else {
            const float *restrict g = (const float *)gate + r * ld + c, *restrict u = (const float *)up + r * ld + c;
            float *restrict o = (float *)out + r * n + c;
            for (int64_t i = 0; i < len; i++) a[i] = g[i];
            activate_values(a, len, kind, wide);
            for (int64_t i = 0; i < len; i++) o[i] = a[i] * u[i];
        }
        start += len;
    }
}

/* out[r, :] = act(gate[r, :]) * up[r, :], rows r < rows, gate/up rows ld elements apart (one fused product's two
 * halves), out contiguous (rows, n). bf16: the activation rounded (one torch op), then the product rounded; the
 * activations zoo.activations spells as several ops round after each (activate_bf16_stepwise) when stepwise. */
void zoo_ops_gated(const void *gate, const void *up, int64_t rows, int64_t n, int64_t ld, void *out, int kind,
                   int stepwise, int bf16) {
#pragma omp parallel if (rows * n >= 16384)
    {
        int64_t lo, hi;
        split(rows * n, 256, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        gated_range(gate, up, n, ld, out, kind, stepwise, bf16, lo, hi);
    }
}

/* vectors [lo, hi) (one (b, h, t) each, in the output's order) of zoo_ops_rotary */
ZOO_HOT static void rotary_range(const void *x, int64_t T, int64_t H, int64_t D, int64_t sb, int64_t st, int64_t sh,
                                 const void *cos, const void *sin, int64_t R, void *out, int bf16, int64_t lo,
                                 int64_t hi) {
    const int64_t half = R / 2;
#ifdef ZOO_HAVE_BF16_PATH
    const int wide = bf16 && half % 16 == 0 && __builtin_cpu_supports("avx512bw");
#else
    const int wide = 0;
#endif
    for (int64_t v = lo; v < hi; v++) {
        const int64_t t = v % T, bh = v / T, b = bh / H, h = bh % H;
        const int64_t in = b * sb + t * st + h * sh, angle = (b * T + t) * R, o = v * D;
        if (bf16) {
            const uint16_t *restrict p = (const uint16_t *)x + in, *restrict c = (const uint16_t *)cos + angle,
                                    *restrict s = (const uint16_t *)sin + angle;
            uint16_t *restrict y = (uint16_t *)out + o;
#ifdef ZOO_HAVE_BF16_PATH
            if (wide) {
                rotate_bf16_avx512(p, c, s, y, half);
                for (int64_t i = R; i < D; i++) y[i] = p[i];
                continue;
            }
#endif
            for (int64_t i = 0; i < half; i++) {
                const float first = from_bf16(p[i]), second = from_bf16(p[i + half]);
                y[i] = to_bf16(from_bf16(to_bf16(first * from_bf16(c[i]))) +
                               from_bf16(to_bf16(-second * from_bf16(s[i]))));
                y[i + half] = to_bf16(from_bf16(to_bf16(second * from_bf16(c[i + half]))) +
                                      from_bf16(to_bf16(first * from_bf16(s[i + half]))));
            }
            for (int64_t i = R; i < D; i++) y[i] = p[i];
        } else {
            const float *restrict p = (const float *)x + in, *restrict c = (const float *)cos + angle,
                                 *restrict s = (const float *)sin + angle;
            float *restrict y = (float *)out + o;
            for (int64_t i = 0; i < half; i++) {
                const float first = p[i], second = p[i + half];
                y[i] = first * c[i] + -second * s[i];
                y[i + half] = second * c[i + half] + first * s[i + half];
            }
            for (int64_t i = R; i < D; i++) y[i] = p[i];
        }
    }
}

/* Rotate the first R channels of each head of x (B, T, H, D: element strides sb, st, sh, channels contiguous) by
 * cos/sin (B, T, R contiguous) and write (B, H, T, D) contiguous: out = x * cos + rotate_half(x) * sin on the first R
 * channels, x on the rest. bf16: each product rounded, then the sum (three bf16 ops). */
void zoo_ops_rotary(const void *x, int64_t B, int64_t T, int64_t H, int64_t D, int64_t sb, int64_t st, int64_t sh,
                    const void *cos, const void *sin, int64_t R, void *out, int bf16) {
    const int64_t vectors = B * H * T;
#pragma omp parallel if (vectors * D >= 16384)
    {
        int64_t lo, hi;
        split(vectors, 1, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        rotary_range(x, T, H, D, sb, st, sh, cos, sin, R, out, bf16, lo, hi);
    }
}
