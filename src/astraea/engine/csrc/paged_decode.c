/* Decode attention over paged KV, read in place.
 *
 * One query token per sequence attends to its context, which lives in fixed-size blocks of
 * a layer's cache ([2 * kv_heads, num_slots, head_dim], K heads then V heads; slot = block *
 * block_size + offset). Per (sequence, KV head) the GQA group's queries share each K/V row:
 * a block's scores, an online-softmax rescale, then the block's V rows weighted into the
 * accumulators. Nothing is gathered or padded, so a step reads each context once.
 *
 * Built at first use by astraea/engine/paged_decode.py with the machine's own flags
 * (-march=native): the AVX2 + FMA path where the CPU has them, plain C otherwise; OpenMP
 * splits the (sequence, KV head) pairs over the caller's team.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2 1
#endif

#define MAX_GROUP 16
#define MAX_DIM 256
#define MAX_BLOCK 64

typedef struct {
    const float *cache;      /* the layer's cache */
    long head_stride;        /* floats between two heads' planes (num_slots * head_dim) */
    int kv_heads, group, dim, block_size;
    float scale;
} Layer;

/* Scores of `group` queries against `n` key rows, then softmax state update; returns the
 * probabilities in p[g * MAX_BLOCK + t] (zero past n). */
static void block_scores_scalar(const Layer *L, const float *qs, const float *k, int n,
                                float *m, float *l, float *acc, float *p) {
    for (int g = 0; g < L->group; g++) {
        const float *qg = qs + g * L->dim;
        float *pg = p + g * MAX_BLOCK;
        float bmax = -INFINITY;
        for (int t = 0; t < n; t++) {
            const float *kt = k + (long)t * L->dim;
            float s = 0.0f;
            for (int j = 0; j < L->dim; j++) s += qg[j] * kt[j];
            pg[t] = s;
            if (s > bmax) bmax = s;
        }
        float mn = m[g] > bmax ? m[g] : bmax;
        float c = m[g] == -INFINITY ? 0.0f : expf(m[g] - mn);
        float sum = 0.0f;
        for (int t = 0; t < n; t++) {
            pg[t] = expf(pg[t] - mn);
            sum += pg[t];
        }
        l[g] = l[g] * c + sum;
        m[g] = mn;
        if (c != 1.0f)
            for (int j = 0; j < L->dim; j++) acc[g * MAX_DIM + j] *= c;
    }
}

#ifdef HAVE_AVX2
/* e^x for x <= 0 (range reduction by ln 2, degree-6 polynomial; relative error ~2e-7). */
static inline __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.0f / 720.0f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 120.0f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 24.0f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 6.0f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 dot_partial(const float *a, const float *b, int dim) {
    __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
    __m256 s1 = _mm256_setzero_ps();
    int j = 8;
    for (; j + 8 < dim; j += 16) {
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s1);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), s0);
    }
    if (j < dim) s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s1);
    return _mm256_add_ps(s0, s1);
}

static inline __attribute__((always_inline)) void block_scores_avx2(
    const Layer *L, int dim, const float *qs, const float *k, int n, float *m, float *l,
    float *acc, float *p) {
    for (int g = 0; g < L->group; g++) {
        const float *qg = qs + g * dim;
        float *pg = p + g * MAX_BLOCK;
        int t = 0;
        for (; t + 4 <= n; t += 4) {  /* four rows' sums in one horizontal reduction */
            __m256 a0 = dot_partial(qg, k + (long)t * dim, dim);
            __m256 a1 = dot_partial(qg, k + (long)(t + 1) * dim, dim);
            __m256 a2 = dot_partial(qg, k + (long)(t + 2) * dim, dim);
            __m256 a3 = dot_partial(qg, k + (long)(t + 3) * dim, dim);
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            _mm_storeu_ps(pg + t, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        }
        for (; t < n; t++) pg[t] = hsum(dot_partial(qg, k + (long)t * dim, dim));
        int padded = (n + 7) & ~7;
        for (t = n; t < padded; t++) pg[t] = -INFINITY;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (t = 0; t < padded; t += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(pg + t));
        __m128 mx = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
        mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
        float bmax = _mm_cvtss_f32(mx);
        float mn = m[g] > bmax ? m[g] : bmax;
        float c = m[g] == -INFINITY ? 0.0f : expf(m[g] - mn);
        __m256 vmn = _mm256_set1_ps(mn), vsum = _mm256_setzero_ps();
        for (t = 0; t < padded; t += 8)
            _mm256_storeu_ps(pg + t, exp_neg(_mm256_sub_ps(_mm256_loadu_ps(pg + t), vmn)));
        for (t = n; t < padded; t++) pg[t] = 0.0f;  /* exp_neg clamps: -inf is not 0 there */
        for (t = 0; t < padded; t += 8) vsum = _mm256_add_ps(vsum, _mm256_loadu_ps(pg + t));
        float sum = hsum(vsum);
        l[g] = l[g] * c + sum;
        m[g] = mn;
        if (c != 1.0f) {
            __m256 vc = _mm256_set1_ps(c);
            for (int j = 0; j < dim; j += 8)
                _mm256_storeu_ps(acc + g * MAX_DIM + j, _mm256_mul_ps(vc, _mm256_loadu_ps(acc + g * MAX_DIM + j)));
        }
    }
}

static inline __attribute__((always_inline)) void block_values_avx2(
    const Layer *L, int dim, const float *v, int n, const float *p, float *acc) {
    for (int g = 0; g < L->group; g++) {
        const float *pg = p + g * MAX_BLOCK;
        float *ag = acc + g * MAX_DIM;
        for (int j0 = 0; j0 < dim; j0 += 64) {  /* up to 8 accumulators held in registers */
            int w = dim - j0 < 64 ? dim - j0 : 64;
            __m256 r[8];
            for (int j = 0; j < w; j += 8) r[j / 8] = _mm256_loadu_ps(ag + j0 + j);
            for (int t = 0; t < n; t++) {
                __m256 pt = _mm256_set1_ps(pg[t]);
                const float *vt = v + (long)t * dim + j0;
                for (int j = 0; j < w; j += 8) r[j / 8] = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + j), r[j / 8]);
            }
            for (int j = 0; j < w; j += 8) _mm256_storeu_ps(ag + j0 + j, r[j / 8]);
        }
    }
}
#endif

static void block_values_scalar(const Layer *L, const float *v, int n, const float *p, float *acc) {
    for (int g = 0; g < L->group; g++)
        for (int t = 0; t < n; t++) {
            float pt = p[g * MAX_BLOCK + t];
            const float *vt = v + (long)t * L->dim;
            for (int j = 0; j < L->dim; j++) acc[g * MAX_DIM + j] += pt * vt[j];
        }
}

static inline __attribute__((always_inline)) void one_head(
    const Layer *L, int dim, const float *q, const int32_t *table, int len, float *out) {
    float qs[MAX_GROUP * MAX_DIM], acc[MAX_GROUP * MAX_DIM], p[MAX_GROUP * MAX_BLOCK];
    float m[MAX_GROUP], l[MAX_GROUP];
    (void)dim;
    for (int g = 0; g < L->group; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        for (int j = 0; j < L->dim; j++) {
            qs[g * L->dim + j] = q[g * L->dim + j] * L->scale;
            acc[g * MAX_DIM + j] = 0.0f;
        }
    }
    const float *kbase = L->cache, *vbase = L->cache + (long)L->kv_heads * L->head_stride;
    int blocks = (len + L->block_size - 1) / L->block_size;
    for (int b = 0; b < blocks; b++) {
        int n = len - b * L->block_size;
        if (n > L->block_size) n = L->block_size;
        long off = (long)table[b] * L->block_size * L->dim;
#ifdef HAVE_AVX2
        if (b + 1 < blocks) {  /* the next block lies elsewhere: no stream for the prefetcher */
            long nxt = (long)table[b + 1] * L->block_size * L->dim;
            for (long c = 0; c < (long)L->block_size * L->dim; c += 16) {
                _mm_prefetch((const char *)(kbase + nxt + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(vbase + nxt + c), _MM_HINT_T0);
            }
        }
        if (dim % 8 == 0) {
            block_scores_avx2(L, dim, qs, kbase + off, n, m, l, acc, p);
            block_values_avx2(L, dim, vbase + off, n, p, acc);
            continue;
        }
#endif
        block_scores_scalar(L, qs, kbase + off, n, m, l, acc, p);
        block_values_scalar(L, vbase + off, n, p, acc);
    }
    for (int g = 0; g < L->group; g++) {
        float inv = l[g] > 0.0f ? 1.0f / l[g] : 0.0f;
        for (int j = 0; j < L->dim; j++) out[g * L->dim + j] = acc[g * MAX_DIM + j] * inv;
    }
}

/* Limits of the fixed-size scratch buffers; the caller checks shapes against them. */
int astraea_paged_decode_limits(int *max_group, int *max_dim, int *max_block) {
    *max_group = MAX_GROUP;
    *max_dim = MAX_DIM;
    *max_block = MAX_BLOCK;
#ifdef HAVE_AVX2
    return 1;
#else
    return 0;
#endif
}

/* Sequences [begin, end): q row i at q + i * q_row_stride ([heads, head_dim] contiguous),
 * its block table at tables + i * table_stride, its context length lengths[i]; output row i
 * at out + i * heads * head_dim. Returns 0, -1 for shapes beyond the limits, or -2 for a
 * block id outside the cache (checked first, so a bad table fails its step instead of
 * reading another job's memory or past the pool). */
int astraea_paged_decode(const float *q, long q_row_stride, const float *cache, long head_stride,
                         const int32_t *tables, long table_stride, const int32_t *lengths,
                         int begin, int end, int heads, int kv_heads, int head_dim,
                         int block_size, float scale, float *out) {
    if (kv_heads <= 0 || heads % kv_heads || heads / kv_heads > MAX_GROUP || head_dim > MAX_DIM ||
        block_size > MAX_BLOCK)
        return -1;
    long num_blocks = head_stride / ((long)block_size * head_dim);
    for (int i = begin; i < end; i++) {
        if (lengths[i] < 1) return -2;
        const int32_t *table = tables + (long)i * table_stride;
        for (int b = 0; b < (lengths[i] + block_size - 1) / block_size; b++)
            if (table[b] < 0 || table[b] >= num_blocks) return -2;
    }
    Layer L = {cache, head_stride, kv_heads, heads / kv_heads, head_dim, block_size, scale};
    long items = (long)(end - begin) * kv_heads;
    /* Built with -fopenmp this joins the caller's OpenMP team (torch's own runtime, already
     * loaded), sized by torch.set_num_threads; dynamic, since contexts differ in length. */
#pragma omp parallel for schedule(dynamic, 1)
    for (long item = 0; item < items; item++) {
        int i = begin + (int)(item / kv_heads), h = (int)(item % kv_heads);
        Layer Lh = L;
        Lh.cache = cache + (long)h * head_stride;
        const float *qh = q + (long)i * q_row_stride + (long)h * L.group * head_dim;
        float *oh = out + (long)i * heads * head_dim + (long)h * L.group * head_dim;
        if (head_dim == 64)
            one_head(&Lh, 64, qh, tables + (long)i * table_stride, lengths[i], oh);
        else
            one_head(&Lh, head_dim, qh, tables + (long)i * table_stride, lengths[i], oh);
    }
    return 0;
}
