/*
 * fm_gemm_transpose_avx.h - transposing copies for packing GEMM operands, on 256-bit AVX
 * registers (8 x 8 float, 4 x 4 double blocks).
 *
 * Included by the AVX2 and AVX-512 micro-kernel files inside their target region; the
 * functions are static inline, so each file keeps only those it uses. fm_transpose_pack_*
 * turn `rows` strided rows of `cols` contiguous elements into `cols` rows of a panel `width`
 * wide: dst[j * width + i] = src[i * lds + j], zero for rows <= i < width. Nothing outside
 * the source rows and the panel is read or written.
 */
#ifndef FM_GEMM_TRANSPOSE_AVX_H
#define FM_GEMM_TRANSPOSE_AVX_H

static inline __m256i fm_lanes_ps(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i fm_lanes_pd(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* Stores the first n lanes of v (plain stores: masked stores are slow on some CPUs). */
static inline void fm_store_lanes_ps(float *d, __m256 v, int64_t n) {
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(d, h);
        h = _mm256_extractf128_ps(v, 1);
        d += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)d, h);
        h = _mm_movehl_ps(h, h);
        d += 2;
        n -= 2;
    }
    if (n >= 1) _mm_store_ss(d, h);
}

static inline void fm_store_lanes_pd(double *d, __m256d v, int64_t n) {
    __m128d h = _mm256_castpd256_pd128(v);
    if (n >= 2) {
        _mm_storeu_pd(d, h);
        h = _mm256_extractf128_pd(v, 1);
        d += 2;
        n -= 2;
    }
    if (n >= 1) _mm_store_sd(d, h);
}

static inline void fm_transpose_8x8_ps(__m256 r[8]) {
    /* r (8 x 8) := r^T */
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

static inline void fm_transpose_4x4_pd(__m256d r[4]) {
    /* r (4 x 4) := r^T */
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* One body for both types: T x T register blocks of type V. */
#define FM_TRANSPOSE_PACK_BODY(T, V, ZERO, LOADU, LOADM, STOREU, STOREN, LANES, TRANSPOSE)     \
    for (int64_t i0 = 0; i0 < width; i0 += T) {                                              \
        const int64_t rb = rows - i0 < 0 ? 0 : (rows - i0 < T ? rows - i0 : T);              \
        const int64_t wb = width - i0 < T ? width - i0 : T;                                  \
        for (int64_t j0 = 0; j0 < cols; j0 += T) {                                           \
            const int64_t cb = cols - j0 < T ? cols - j0 : T;                                \
            V r[T];                                                                          \
            for (int i = 0; i < T; i++) {                                                    \
                const REAL_T *s = src + (i0 + i) * lds + j0;                                 \
                r[i] = i >= rb ? ZERO() : (cb == T ? LOADU(s) : LOADM(s, LANES(cb)));        \
            }                                                                                \
            TRANSPOSE(r);                                                                    \
            for (int j = 0; j < cb; j++) {                                                   \
                REAL_T *d = dst + (j0 + j) * width + i0;                                     \
                if (wb == T)                                                                 \
                    STOREU(d, r[j]);                                                         \
                else                                                                         \
                    STOREN(d, r[j], wb);                                                     \
            }                                                                                \
        }                                                                                    \
    }

static inline void fm_transpose_pack_ps(const float *src, int64_t lds, int64_t rows,
                                        int64_t cols, float *dst, int64_t width) {
    /* dst (cols x width) := [src (rows x cols); 0]^T */
#define REAL_T float
    FM_TRANSPOSE_PACK_BODY(8, __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_maskload_ps,
                           _mm256_storeu_ps, fm_store_lanes_ps, fm_lanes_ps,
                           fm_transpose_8x8_ps)
#undef REAL_T
}

static inline void fm_transpose_pack_pd(const double *src, int64_t lds, int64_t rows,
                                        int64_t cols, double *dst, int64_t width) {
    /* dst (cols x width) := [src (rows x cols); 0]^T */
#define REAL_T double
    FM_TRANSPOSE_PACK_BODY(4, __m256d, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_maskload_pd,
                           _mm256_storeu_pd, fm_store_lanes_pd, fm_lanes_pd,
                           fm_transpose_4x4_pd)
#undef REAL_T
}

#undef FM_TRANSPOSE_PACK_BODY
#endif /* FM_GEMM_TRANSPOSE_AVX_H */
