/* The FFT long convolution: the plan cache, the kernels, the op that
 * records them and the direct reference. A work item is one channel; it
 * walks the sequences (batch rows or packed sequences) with one kernel
 * spectrum, rebuilt only when the length changes. */
#include <fftw3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fftconv.h"
#include "ops/internal.h"

int64_t sl_fftconv_size(int64_t L)
{
    for (int64_t n = 2 * (L > 1 ? L : 1);; n += 2) {
        int64_t m = n;
        for (int64_t p = 2; p <= 7; p++)
            while (m % p == 0) m /= p;
        if (m == 1) return n;
    }
}

/* ------------------------------------------------------------ plan cache */
/* FFTW's planner is not thread-safe; its execute functions on new arrays
 * are. Plans are made once per size under this lock and kept for the
 * process's life (a list whose nodes never move). */
typedef struct plan_pair {
    int64_t n;
    fftwf_plan r2c, c2r;
    struct plan_pair *next;
} plan_pair;

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static plan_pair *plan_list;

/* Floats in one buffer of n/2 + 1 complex values, rounded to 64 bytes so
 * that every buffer carved after it keeps FFTW's SIMD alignment. */
static int64_t spec_floats(int64_t n) { return (2 * (n / 2 + 1) + 15) / 16 * 16; }

static const plan_pair *plan_get(int64_t n)
{
    pthread_mutex_lock(&plan_lock);
    plan_pair *p = plan_list;
    while (p && p->n != n) p = p->next;
    if (!p) {
        p = malloc(sizeof *p);
        /* aligned_alloc wants a multiple of the alignment: room for n rounded
         * up to 16 floats (spec_floats already is one); the spectrum still
         * starts at buf + n, where the plans expect it. */
        const int64_t nf = (n + 15) / 16 * 16 + spec_floats(n);
        float *buf = aligned_alloc(64, (size_t)nf * sizeof(float));
        sl_require(p && buf, "sl_fftconv", "memory for an FFT plan");
        fftwf_complex *spec = (fftwf_complex *)(buf + n);
        /* ESTIMATE: no timing runs, so the same plan (and bits) every run. */
        p->r2c = fftwf_plan_dft_r2c_1d((int)n, buf, spec, FFTW_ESTIMATE);
        p->c2r = fftwf_plan_dft_c2r_1d((int)n, spec, buf, FFTW_ESTIMATE);
        sl_require(p->r2c && p->c2r, "sl_fftconv", "an FFTW plan");
        free(buf);
        p->n = n;
        p->next = plan_list;
        plan_list = p;
    }
    pthread_mutex_unlock(&plan_lock);
    return p;
}

/* ---------------------------------------------------------------- kernels */
/* One thread's buffers for sizes up to nmax: a real signal and four
 * spectra (kernel, signal, product, accumulated dk). */
typedef struct fft_work {
    float *r;
    fftwf_complex *ks, *xs, *ps, *acc;
    float *block;
} fft_work;

static fft_work work_new(int64_t nmax)
{
    const int64_t sf = spec_floats(nmax), rf = (nmax + 15) / 16 * 16;
    fft_work w;
    w.block = aligned_alloc(64, (size_t)(rf + 4 * sf) * sizeof(float));
    sl_require(w.block != NULL, "sl_fftconv", "per-thread FFT buffers");
    w.r = w.block;
    w.ks = (fftwf_complex *)(w.block + rf);
    w.xs = (fftwf_complex *)(w.block + rf + sf);
    w.ps = (fftwf_complex *)(w.block + rf + 2 * sf);
    w.acc = (fftwf_complex *)(w.block + rf + 3 * sf);
    return w;
}

/* The plans of every sequence's size, resolved before the threads start. */
static const plan_pair **plans_for(const sl_fftconv_desc *d, int64_t *nmax)
{
    const int64_t N = sl_seq_count(d->seqs, d->B);
    const plan_pair **pp = malloc((size_t)(N > 0 ? N : 1) * sizeof *pp);
    sl_require(pp != NULL, "sl_fftconv", "memory for the plan table");
    *nmax = 2;
    for (int64_t i = 0; i < N; i++) {
        const int64_t L = sl_seq_len(d->seqs, i, d->T);
        pp[i] = L > 0 ? plan_get(sl_fftconv_size(L)) : NULL;
        if (pp[i] && pp[i]->n > *nmax) *nmax = pp[i]->n;
    }
    return pp;
}

/* Channel c's kernel for a sequence of L tokens, circular over n and scaled
 * by 1/n (the inverse transform's factor): kf at lags 0 .. L-1, kb at
 * n-1 .. n-L+1. k: [C, T] or [2, C, T]. Writes its spectrum to w->ks. */
static void kernel_spectrum(const sl_fftconv_desc *d, const float *k, int64_t c, int64_t L,
                            const plan_pair *p, fft_work *w)
{
    const int64_t n = p->n, T = d->T;
    const float s = 1.0f / (float)n, *kf = k + c * T, *kb = kf + d->C * T;
    memset(w->r, 0, (size_t)n * sizeof(float));
    for (int64_t j = 0; j < L; j++) w->r[j] = s * kf[j];
    if (!d->causal)
        for (int64_t j = 0; j < L - 1; j++) w->r[n - 1 - j] = s * kb[j];
    fftwf_execute_dft_r2c(p->r2c, w->r, w->ks);
}

/* Channel c of tokens [st, st + L) of x: [.., C] zero-padded to n, into
 * the spectrum out. */
static void signal_spectrum(const float *x, int64_t C, int64_t c, int64_t st, int64_t L,
                            const plan_pair *p, fft_work *w, fftwf_complex *out)
{
    for (int64_t t = 0; t < L; t++) w->r[t] = x[(st + t) * C + c];
    memset(w->r + L, 0, (size_t)(p->n - L) * sizeof(float));
    fftwf_execute_dft_r2c(p->r2c, w->r, out);
}

/* out = a * b, or conj(a) * b when conj_a (a correlation). m complex values. */
static void spec_mul(const fftwf_complex *a, const fftwf_complex *b, fftwf_complex *out, int64_t m,
                     bool conj_a)
{
    const float sg = conj_a ? -1.0f : 1.0f;
    for (int64_t i = 0; i < m; i++) {
        const float ar = a[i][0], ai = sg * a[i][1], br = b[i][0], bi = b[i][1];
        out[i][0] = ar * br - ai * bi;
        out[i][1] = ar * bi + ai * br;
    }
}

/* Transforms spectrum s (destroyed) back and adds its first L values to
 * channel c of tokens [st, st + L) of x: [.., C]. */
static void add_inverse(fftwf_complex *s, const plan_pair *p, fft_work *w, float *x, int64_t C,
                        int64_t c, int64_t st, int64_t L)
{
    fftwf_execute_dft_c2r(p->c2r, s, w->r);
    for (int64_t t = 0; t < L; t++) x[(st + t) * C + c] += w->r[t];
}

static bool parallel(const sl_fftconv_desc *d) { return d->B * d->T * d->C >= SL_PAR_MIN; }

void sl_fftconv_fwd(const sl_fftconv_desc *d, const float *u, const float *k, float *y)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B);
    int64_t nmax;
    const plan_pair **pp = plans_for(d, &nmax);
    /* Empty sequences and padding write nothing: y starts at zero. */
    memset(y, 0, (size_t)(d->B * T * C) * sizeof(float));
#pragma omp parallel if (parallel(d))
    {
        fft_work w = work_new(nmax);
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            int64_t Lk = -1;
            for (int64_t i = 0; i < N; i++) {
                const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
                if (L == 0) continue;
                if (L != Lk) kernel_spectrum(d, k, c, L, pp[i], &w);
                Lk = L;
                signal_spectrum(u, C, c, st, L, pp[i], &w, w.xs);
                spec_mul(w.ks, w.xs, w.xs, pp[i]->n / 2 + 1, false);
                add_inverse(w.xs, pp[i], &w, y, C, c, st, L);
            }
        }
        free(w.block);
    }
    free(pp);
}

/* Adds the accumulated dk spectrum (sequences of L tokens, FFT size n) to
 * channel c's taps, and clears it. dk: [C, T] or [2, C, T]. */
static void flush_dk(const sl_fftconv_desc *d, int64_t c, int64_t L, const plan_pair *p,
                     fft_work *w, float *dk)
{
    const int64_t n = p->n, T = d->T;
    const float s = 1.0f / (float)n;
    float *dkf = dk + c * T, *dkb = dkf + d->C * T;
    fftwf_execute_dft_c2r(p->c2r, w->acc, w->r);
    for (int64_t j = 0; j < L; j++) dkf[j] += s * w->r[j];
    if (!d->causal)
        for (int64_t j = 0; j < L - 1; j++) dkb[j] += s * w->r[n - 1 - j];
    memset(w->acc, 0, (size_t)(n / 2 + 1) * sizeof(fftwf_complex));
}

void sl_fftconv_bwd(const sl_fftconv_desc *d, const float *u, const float *k, const float *dy,
                    float *du, float *dk)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B);
    int64_t nmax;
    const plan_pair **pp = plans_for(d, &nmax);
#pragma omp parallel if (parallel(d))
    {
        fft_work w = work_new(nmax);
        memset(w.acc, 0, (size_t)(nmax / 2 + 1) * sizeof(fftwf_complex));
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            int64_t Lk = -1;
            const plan_pair *pk = NULL;
            for (int64_t i = 0; i < N; i++) {
                const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
                if (L == 0) continue;
                const int64_t m = pp[i]->n / 2 + 1;
                /* dk sums the sequences in the frequency domain while their
                 * length (so the tap count and FFT size) stays the same. */
                if (L != Lk) {
                    if (dk && pk) flush_dk(d, c, Lk, pk, &w, dk);
                    if (du) kernel_spectrum(d, k, c, L, pp[i], &w);
                }
                Lk = L;
                pk = pp[i];
                signal_spectrum(dy, C, c, st, L, pp[i], &w, w.xs);
                if (du) {
                    spec_mul(w.ks, w.xs, w.ps, m, true);
                    add_inverse(w.ps, pp[i], &w, du, C, c, st, L);
                }
                if (dk) {
                    signal_spectrum(u, C, c, st, L, pp[i], &w, w.ps);
                    spec_mul(w.ps, w.xs, w.ps, m, true);
                    for (int64_t f = 0; f < m; f++) {
                        w.acc[f][0] += w.ps[f][0];
                        w.acc[f][1] += w.ps[f][1];
                    }
                }
            }
            if (dk && pk) flush_dk(d, c, Lk, pk, &w, dk);
        }
        free(w.block);
    }
    free(pp);
}

/* ---------------------------------------------------------------- the op */
/* Node: in = {u, k}, desc: sl_fftconv_desc (seqs kept in the arena). */
static void fftconv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *u = nd->in[0], *k = nd->in[1];
    sl_fftconv_bwd(nd->desc, u->data, k->data, nd->out->grad,
                   u->requires_grad ? sl_grad(ctx, u) : NULL,
                   k->requires_grad ? sl_grad(ctx, k) : NULL);
}

/* u: [B, T, C], k: [C, T] | [2, C, T] -> y: [B, T, C]. */
sl_tensor *sl_fftconv(sl_ctx *ctx, sl_tensor *u, sl_tensor *k, bool causal, const sl_seqs *seqs)
{
    sl_require(u->ndim == 3, "sl_fftconv", "u [B, T, C]");
    const int64_t T = u->shape[1], C = u->shape[2];
    sl_require(causal ? k->ndim == 2 && k->shape[0] == C && k->shape[1] == T
                      : k->ndim == 3 && k->shape[0] == 2 && k->shape[1] == C && k->shape[2] == T,
               "sl_fftconv", "k [C, T] (causal) or [2, C, T] (bidirectional)");
    sl_require(sl_seqs_check(seqs, u, "sl_fftconv") == SL_OK, "sl_fftconv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, C]");
    sl_fftconv_desc d = {u->shape[0], T, C, causal, seqs};
    sl_tensor *y = sl_tensor_like(ctx, u);
    sl_node *nd = SL_RECORD(ctx, fftconv_backward, y, u, k);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_fftconv_fwd(&d, u->data, k->data, y->data);
    return y;
}

void sl_fftconv_ref(const sl_fftconv_desc *d, const float *u, const float *k, double *y)
{
    const int64_t T = d->T, C = d->C;
    memset(y, 0, (size_t)(d->B * T * C) * sizeof(double));
    for (int64_t i = 0; i < sl_seq_count(d->seqs, d->B); i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
        for (int64_t c = 0; c < C; c++) {
            const float *kf = k + c * T, *kb = kf + C * T;
            for (int64_t t = 0; t < L; t++) {
                double s = 0;
                for (int64_t j = 0; j <= t; j++) s += (double)kf[j] * u[(st + t - j) * C + c];
                if (!d->causal)
                    for (int64_t j = 0; t + 1 + j < L; j++)
                        s += (double)kb[j] * u[(st + t + 1 + j) * C + c];
                y[(st + t) * C + c] = s;
            }
        }
    }
}
