/* The LMU memory: discretisation, the impulse-response cache, the op (FFT
 * convolution plus the carried state's term) and its double reference. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fftconv.h"
#include "ops/internal.h"
#include "ops/lmu.h"

/* ------------------------------------------------------- discretisation */
/* c = a b, n x n, row-major, double. */
static void matmul_d(const double *a, const double *b, double *c, int64_t n)
{
    memset(c, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) {
            const double v = a[i * n + k];
            for (int64_t j = 0; j < n; j++) c[i * n + j] += v * b[k * n + j];
        }
}

/* e = exp(x), n x n: x scaled by 2^-s to a 1-norm <= 1/2, a degree-18
 * Taylor series (remainder < 0.5^19 / 19! relative), squared s times. */
static void expm_d(const double *x, double *e, int64_t n)
{
    double norm = 0;
    for (int64_t j = 0; j < n; j++) {
        double col = 0;
        for (int64_t i = 0; i < n; i++) col += fabs(x[i * n + j]);
        norm = fmax(norm, col);
    }
    int s = 0;
    while (norm > 0.5) {
        norm /= 2;
        s++;
    }
    const size_t bytes = (size_t)(n * n) * sizeof(double);
    double *xs = malloc(bytes), *term = malloc(bytes), *tmp = malloc(bytes);
    sl_require(xs && term && tmp, "sl_lmu_discretize", "memory for the matrix exponential");
    for (int64_t i = 0; i < n * n; i++) xs[i] = ldexp(x[i], -s);
    memset(e, 0, bytes);
    memset(term, 0, bytes);
    for (int64_t i = 0; i < n; i++) e[i * n + i] = term[i * n + i] = 1.0;
    for (int k = 1; k <= 18; k++) {
        matmul_d(term, xs, tmp, n);
        for (int64_t i = 0; i < n * n; i++) {
            term[i] = tmp[i] / k;
            e[i] += term[i];
        }
    }
    for (int k = 0; k < s; k++) {
        matmul_d(e, e, tmp, n);
        memcpy(e, tmp, bytes);
    }
    free(xs);
    free(term);
    free(tmp);
}

void sl_lmu_discretize(int64_t q, double theta, double *Abar, double *Bbar)
{
    const int64_t n = q + 1;
    double *aug = calloc((size_t)(n * n), sizeof(double));
    double *e = malloc((size_t)(n * n) * sizeof(double));
    sl_require(aug && e, "sl_lmu_discretize", "memory for the augmented system");
    for (int64_t i = 0; i < q; i++) {
        const double r = (2.0 * (double)i + 1.0) / theta;
        for (int64_t j = 0; j < q; j++)
            aug[i * n + j] = r * (i < j ? -1.0 : ((i - j + 1) % 2 == 0 ? 1.0 : -1.0));
        aug[i * n + q] = r * (i % 2 == 0 ? 1.0 : -1.0);
    }
    expm_d(aug, e, n);
    for (int64_t i = 0; i < q; i++) {
        memcpy(Abar + i * q, e + i * n, (size_t)q * sizeof(double));
        Bbar[i] = e[i * n + q];
    }
    free(aug);
    free(e);
}

/* ------------------------------------------------- impulse-response cache */
/* One table per (q, theta, length), lengths powers of two from 64; never
 * moved or freed, so a recorded op's pointer outlives any later call. */
typedef struct impulse {
    int64_t q, len;
    double theta;
    float *H;
    struct impulse *next;
} impulse;

static pthread_mutex_t impulse_lock = PTHREAD_MUTEX_INITIALIZER;
static impulse *impulse_list;

const float *sl_lmu_impulse(int64_t q, double theta, int64_t L)
{
    pthread_mutex_lock(&impulse_lock);
    impulse *p = impulse_list;
    while (p && !(p->q == q && p->theta == theta && p->len >= L)) p = p->next;
    if (!p) {
        int64_t len = 64;
        while (len < L) len *= 2;
        p = malloc(sizeof *p);
        double *A = malloc((size_t)(q * q) * sizeof(double));
        double *h = malloc((size_t)q * sizeof(double)), *g = malloc((size_t)q * sizeof(double));
        float *H = malloc((size_t)(len * q) * sizeof(float));
        sl_require(p && A && h && g && H, "sl_lmu_impulse", "memory for the impulse response");
        sl_lmu_discretize(q, theta, A, h);
        for (int64_t l = 0; l < len; l++) {
            for (int64_t i = 0; i < q; i++) H[l * q + i] = (float)h[i];
            for (int64_t i = 0; i < q; i++) {
                double acc = 0;
                for (int64_t j = 0; j < q; j++) acc += A[i * q + j] * h[j];
                g[i] = acc;
            }
            memcpy(h, g, (size_t)q * sizeof(double));
        }
        free(A);
        free(h);
        free(g);
        *p = (impulse){.q = q, .len = len, .theta = theta, .H = H, .next = impulse_list};
        impulse_list = p;
    }
    pthread_mutex_unlock(&impulse_lock);
    return p->H;
}

/* ---------------------------------------------------------------- kernels */
void sl_lmu_step(const float *A, const float *Bv, int64_t q, int64_t U, float *m, const float *u,
                 float *scratch)
{
    for (int64_t j = 0; j < U; j++) {
        float *mj = m + j * q;
        for (int64_t i = 0; i < q; i++) {
            float acc = Bv[i] * u[j];
            for (int64_t k = 0; k < q; k++) acc += A[i * q + k] * mj[k];
            scratch[i] = acc;
        }
        memcpy(mj, scratch, (size_t)q * sizeof(float));
    }
}

/* The convolution's operands: ub: [B, T, U*q] (u_j repeated q times) when
 * u is given, k: [U*q, T] (H's taps, the same for every j). */
static void conv_operands(const sl_lmu_desc *d, const float *u, float *ub, float *k)
{
    const int64_t T = d->T, q = d->q, C = d->U * q, R = d->B * T;
#pragma omp parallel for schedule(static) if (C * T >= SL_PAR_MIN)
    for (int64_t c = 0; c < C; c++)
        for (int64_t l = 0; l < T; l++) k[c * T + l] = d->H[l * q + c % q];
    if (!u) return;
#pragma omp parallel for schedule(static) if (R * C >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) ub[r * C + c] = u[r * d->U + c / q];
}

static sl_fftconv_desc conv_desc(const sl_lmu_desc *d)
{
    return (sl_fftconv_desc){.B = d->B, .T = d->T, .C = d->U * d->q, .causal = true,
                             .seqs = d->seqs};
}

void sl_lmu_memory_fwd(const sl_lmu_desc *d, const float *u, const float *s0, float *m,
                       float *s_final)
{
    const int64_t T = d->T, q = d->q, C = d->U * q, N = sl_seq_count(d->seqs, d->B);
    float *ub = malloc((size_t)(d->B * T * C) * sizeof(float)),
          *k = malloc((size_t)(C * T) * sizeof(float));
    sl_require(ub && k, "sl_lmu_memory", "memory for the convolution's operands");
    conv_operands(d, u, ub, k);
    const sl_fftconv_desc fd = conv_desc(d);
    if (T > 0) sl_fftconv_fwd(&fd, ub, k, m);
    free(ub);
    free(k);
    /* The state's term A_bar^(t+1) m_0, one (sequence, input) pair per
     * work item; g = A_bar c as a sum of A_bar's columns (At = A_bar^T,
     * so each column is contiguous and the update vectorises). */
    float *At = malloc((size_t)(q * q) * sizeof(float));
    sl_require(At != NULL, "sl_lmu_memory", "memory for A_bar^T");
    for (int64_t a = 0; s0 && a < q; a++)
        for (int64_t b = 0; b < q; b++) At[b * q + a] = d->A[a * q + b];
#pragma omp parallel for schedule(static) if (s0 && N * T * C * q >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * d->U; w++) {
        const int64_t i = w / d->U, j = w % d->U;
        const int64_t st = sl_seq_start(d->seqs, i, T), len = sl_seq_len(d->seqs, i, T);
        float c[q], g[q];
        if (s0) memcpy(c, s0 + i * C + j * q, (size_t)q * sizeof(float));
        for (int64_t t = 0; s0 && t < len; t++) {
            memset(g, 0, sizeof g);
            for (int64_t b = 0; b < q; b++) {
                const float cb = c[b], *col = At + b * q;
#pragma omp simd
                for (int64_t a = 0; a < q; a++) g[a] += col[a] * cb;
            }
            memcpy(c, g, (size_t)q * sizeof(float));
            float *mt = m + (st + t) * C + j * q;
            for (int64_t a = 0; a < q; a++) mt[a] += c[a];
        }
        if (!s_final) continue;
        float *sf = s_final + i * C + j * q;
        if (len > 0) memcpy(sf, m + (st + len - 1) * C + j * q, (size_t)q * sizeof(float));
        else if (s0) memcpy(sf, s0 + i * C + j * q, (size_t)q * sizeof(float));
        else memset(sf, 0, (size_t)q * sizeof(float));
    }
    free(At);
}

void sl_lmu_memory_bwd(const sl_lmu_desc *d, const float *dm, float *du, float *ds0)
{
    const int64_t T = d->T, q = d->q, U = d->U, C = U * q, N = sl_seq_count(d->seqs, d->B);
    const int64_t R = d->B * T;
    float *g = malloc((size_t)(R * C) * sizeof(float));
    sl_require(g != NULL, "sl_lmu_memory", "memory for the gradient");
    memcpy(g, dm, (size_t)(R * C) * sizeof(float));
    /* s_final is each sequence's last m (s0 for an empty one). */
    for (int64_t i = 0; d->ds_final && i < N; i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), len = sl_seq_len(d->seqs, i, T);
        const float *df = d->ds_final + i * C;
        if (len > 0)
            for (int64_t c = 0; c < C; c++) g[(st + len - 1) * C + c] += df[c];
        else if (ds0)
            for (int64_t c = 0; c < C; c++) ds0[i * C + c] += df[c];
    }
    if (du && T > 0) {
        float *k = malloc((size_t)(C * T) * sizeof(float));
        float *dub = calloc((size_t)(R * C), sizeof(float));
        sl_require(k && dub, "sl_lmu_memory", "memory for the gradient");
        conv_operands(d, NULL, NULL, k);
        const sl_fftconv_desc fd = conv_desc(d);
        sl_fftconv_bwd(&fd, NULL, k, g, dub, NULL);
#pragma omp parallel for schedule(static) if (R * C >= SL_PAR_MIN)
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < U; j++) {
                float acc = 0;
                for (int64_t a = 0; a < q; a++) acc += dub[r * C + j * q + a];
                du[r * U + j] += acc;
            }
        free(k);
        free(dub);
    }
    /* ds0 = sum_t (A_bar^T)^(t+1) g_t, backwards: r <- A_bar^T (r + g_t). */
#pragma omp parallel for schedule(static) if (ds0 && N * T * C * q >= SL_PAR_MIN)
    for (int64_t w = 0; w < (ds0 ? N * U : 0); w++) {
        const int64_t i = w / U, j = w % U;
        const int64_t st = sl_seq_start(d->seqs, i, T), len = sl_seq_len(d->seqs, i, T);
        float r[q], s[q];
        memset(r, 0, sizeof r);
        for (int64_t t = len - 1; t >= 0; t--) {
            const float *gt = g + (st + t) * C + j * q;
            for (int64_t a = 0; a < q; a++) s[a] = r[a] + gt[a];
            /* r = A_bar^T s as a sum of A_bar's rows (contiguous). */
            memset(r, 0, sizeof r);
            for (int64_t a = 0; a < q; a++) {
                const float sa = s[a], *row = d->A + a * q;
#pragma omp simd
                for (int64_t b = 0; b < q; b++) r[b] += row[b] * sa;
            }
        }
        for (int64_t a = 0; a < q; a++) ds0[i * C + j * q + a] += r[a];
    }
    free(g);
}

/* ---------------------------------------------------------------- the op */
/* Node: in = {u, s0}, desc: sl_lmu_desc (seqs kept in the arena). */
static void lmu_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *u = nd->in[0], *s0 = nd->in[1];
    sl_lmu_memory_bwd(nd->desc, nd->out->grad, u->requires_grad ? sl_grad(ctx, u) : NULL,
                      s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL);
}

sl_tensor *sl_lmu_memory(sl_ctx *ctx, sl_tensor *u, const sl_lmu_desc *base, sl_tensor *s0,
                         float *s_final, const sl_seqs *seqs)
{
    const int64_t B = u->shape[0], T = u->shape[1], U = sl_last(u), q = base->q;
    sl_require(!seqs || sl_seqs_check(seqs, u, "sl_lmu_memory") == SL_OK, "sl_lmu_memory",
               "valid packed bounds");
    const int64_t N = sl_seq_count(seqs, B);
    sl_require(!s0 || s0->n == N * U * q, "sl_lmu_memory", "s0 [N, U*q]");
    sl_lmu_desc d = *base;
    d.B = B;
    d.T = T;
    d.U = U;
    d.seqs = sl_seqs_keep(ctx, seqs);
    d.ds_final = s_final ? sl_state_final_grad(ctx, s_final) : NULL;
    sl_tensor *m = SL_NEW(ctx, B, T, U * q);
    sl_lmu_memory_fwd(&d, u->data, s0 ? s0->data : NULL, m->data, s_final);
    sl_node *nd = SL_RECORD(ctx, lmu_backward, m, u, s0);
    if (nd) SL_KEEP_DESC(ctx, nd, d);
    return m;
}

void sl_lmu_memory_ref(const sl_lmu_desc *d, double theta, const float *u, const float *s0,
                       double *m)
{
    const int64_t T = d->T, q = d->q, U = d->U, C = U * q;
    double *A = malloc((size_t)(q * q) * sizeof(double)), *Bb = malloc((size_t)q * sizeof(double)),
           *c = malloc((size_t)q * sizeof(double)), *g = malloc((size_t)q * sizeof(double));
    sl_require(A && Bb && c && g, "sl_lmu_memory_ref", "memory");
    sl_lmu_discretize(q, theta, A, Bb);
    for (int64_t i = 0; i < sl_seq_count(d->seqs, d->B); i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), len = sl_seq_len(d->seqs, i, T);
        for (int64_t j = 0; j < U; j++) {
            for (int64_t a = 0; a < q; a++) c[a] = s0 ? s0[i * C + j * q + a] : 0.0;
            for (int64_t t = st; t < st + len; t++) {
                for (int64_t a = 0; a < q; a++) {
                    double acc = Bb[a] * u[t * U + j];
                    for (int64_t b = 0; b < q; b++) acc += A[a * q + b] * c[b];
                    g[a] = acc;
                }
                memcpy(c, g, (size_t)q * sizeof(double));
                memcpy(m + t * C + j * q, c, (size_t)q * sizeof(double));
            }
        }
    }
    free(A);
    free(Bb);
    free(c);
    free(g);
}
