/* The FFT long convolution: the plan cache, the kernels, the op that
 * records them and the direct reference. A work item is a block of
 * channels; it walks the sequences (batch rows or packed sequences) with
 * one kernel spectrum per channel, rebuilt only when the length changes. */
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

/* n floats, 64-byte aligned (aligned_alloc wants a size that the alignment
 * divides). */
static float *floats_aligned(int64_t n)
{
    return aligned_alloc(64, (size_t)((n + 15) / 16 * 16) * sizeof(float));
}

static const plan_pair *plan_get(int64_t n)
{
    pthread_mutex_lock(&plan_lock);
    plan_pair *p = plan_list;
    while (p && p->n != n) p = p->next;
    if (!p) {
        p = malloc(sizeof *p);
        float *buf = floats_aligned((n + 15) / 16 * 16 + spec_floats(n));
        sl_require(p && buf, "sl_fftconv", "memory for an FFT plan");
        fftwf_complex *spec = (fftwf_complex *)(buf + (n + 15) / 16 * 16);
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
/* Channels per work item: a block's tokens are gathered into rows once,
 * reading each 32-byte piece of a [T, C] row once (a channel at a time, a
 * stride of C floats, would load every cache line SL_FC_CB times). */
#define SL_FC_CB 8

/* One thread's buffers for sizes up to nmax: SL_FC_CB real rows, and per
 * channel of the block a kernel, a signal and a dk spectrum; one product.
 * They are the thread's SL_SCRATCH_FFT scratch, kept between calls. */
typedef struct fft_work {
    float *r;                     /* [CB, rs] */
    fftwf_complex *ks, *xs, *acc; /* [CB, ss / 2] each */
    fftwf_complex *ps;            /* [ss / 2] */
    int64_t rs, ss;               /* row strides in floats, SIMD-aligned */
    float *block;
} fft_work;

static fft_work work_new(int64_t nmax)
{
    fft_work w;
    w.rs = (nmax + 15) / 16 * 16;
    w.ss = spec_floats(nmax);
    const int64_t rf = SL_FC_CB * w.rs, sf = SL_FC_CB * w.ss;
    w.block = sl_scratch(SL_SCRATCH_FFT, (size_t)(rf + 3 * sf + w.ss) * sizeof(float));
    w.r = w.block;
    w.ks = (fftwf_complex *)(w.block + rf);
    w.xs = (fftwf_complex *)(w.block + rf + sf);
    w.acc = (fftwf_complex *)(w.block + rf + 2 * sf);
    w.ps = (fftwf_complex *)(w.block + rf + 3 * sf);
    return w;
}

static float *row(const fft_work *w, int64_t j) { return w->r + j * w->rs; }
static fftwf_complex *spec(const fft_work *w, fftwf_complex *base, int64_t j)
{
    return base + j * (w->ss / 2);
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

/* The kernels of channels c0 .. c0+nc-1 for a sequence of L tokens,
 * circular over n and scaled by 1/n (the inverse transform's factor): kf
 * at lags 0 .. L-1, kb at n-1 .. n-L+1. k: [C, T] or [2, C, T]. Their
 * spectra go to w->ks. */
static void kernel_spectra(const sl_fftconv_desc *d, const float *k, int64_t c0, int64_t nc,
                           int64_t L, const plan_pair *p, fft_work *w)
{
    const int64_t n = p->n, T = d->T;
    const float s = 1.0f / (float)n;
    for (int64_t j = 0; j < nc; j++) {
        const float *kf = k + (c0 + j) * T, *kb = kf + d->C * T;
        float *r = row(w, j);
        memset(r, 0, (size_t)n * sizeof(float));
        for (int64_t l = 0; l < L; l++) r[l] = s * kf[l];
        if (!d->causal)
            for (int64_t l = 0; l < L - 1; l++) r[n - 1 - l] = s * kb[l];
        fftwf_execute_dft_r2c(p->r2c, r, spec(w, w->ks, j));
    }
}

/* Channels c0 .. c0+nc-1 of tokens [st, st + L) of x: [.., C] into the rows,
 * zero-padded to n. */
static void gather(const float *x, int64_t C, int64_t c0, int64_t nc, int64_t st, int64_t L,
                   int64_t n, fft_work *w)
{
    for (int64_t t = 0; t < L; t++)
        for (int64_t j = 0; j < nc; j++) w->r[j * w->rs + t] = x[(st + t) * C + c0 + j];
    for (int64_t j = 0; j < nc; j++) memset(row(w, j) + L, 0, (size_t)(n - L) * sizeof(float));
}

/* The rows' first L values added to channels c0 .. c0+nc-1 of tokens
 * [st, st + L) of x. */
static void scatter_add(float *x, int64_t C, int64_t c0, int64_t nc, int64_t st, int64_t L,
                        const fft_work *w)
{
    for (int64_t t = 0; t < L; t++)
        for (int64_t j = 0; j < nc; j++) x[(st + t) * C + c0 + j] += w->r[j * w->rs + t];
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

static bool parallel(const sl_fftconv_desc *d) { return d->B * d->T * d->C >= SL_PAR_MIN; }

static int64_t nblocks(int64_t C) { return (C + SL_FC_CB - 1) / SL_FC_CB; }

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
        for (int64_t b = 0; b < nblocks(C); b++) {
            const int64_t c0 = b * SL_FC_CB, nc = C - c0 < SL_FC_CB ? C - c0 : SL_FC_CB;
            int64_t Lk = -1;
            for (int64_t i = 0; i < N; i++) {
                const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
                if (L == 0) continue;
                const plan_pair *p = pp[i];
                if (L != Lk) kernel_spectra(d, k, c0, nc, L, p, &w);
                Lk = L;
                gather(u, C, c0, nc, st, L, p->n, &w);
                for (int64_t j = 0; j < nc; j++) {
                    fftwf_execute_dft_r2c(p->r2c, row(&w, j), w.ps);
                    spec_mul(spec(&w, w.ks, j), w.ps, w.ps, p->n / 2 + 1, false);
                    fftwf_execute_dft_c2r(p->c2r, w.ps, row(&w, j));
                }
                scatter_add(y, C, c0, nc, st, L, &w);
            }
        }
    }
    free(pp);
}

/* Adds the accumulated dk spectra (sequences of L tokens, FFT size n) to
 * the taps of channels c0 .. c0+nc-1, and clears them. dk: [C, T] or
 * [2, C, T]. */
static void flush_dk(const sl_fftconv_desc *d, int64_t c0, int64_t nc, int64_t L,
                     const plan_pair *p, fft_work *w, float *dk)
{
    const int64_t n = p->n, T = d->T;
    const float s = 1.0f / (float)n;
    for (int64_t j = 0; j < nc; j++) {
        float *dkf = dk + (c0 + j) * T, *dkb = dkf + d->C * T, *r = row(w, j);
        fftwf_execute_dft_c2r(p->c2r, spec(w, w->acc, j), r);
        for (int64_t l = 0; l < L; l++) dkf[l] += s * r[l];
        if (!d->causal)
            for (int64_t l = 0; l < L - 1; l++) dkb[l] += s * r[n - 1 - l];
        memset(spec(w, w->acc, j), 0, (size_t)(n / 2 + 1) * sizeof(fftwf_complex));
    }
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
        memset(w.acc, 0, (size_t)(SL_FC_CB * w.ss) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nblocks(C); b++) {
            const int64_t c0 = b * SL_FC_CB, nc = C - c0 < SL_FC_CB ? C - c0 : SL_FC_CB;
            int64_t Lk = -1;
            const plan_pair *pk = NULL;
            for (int64_t i = 0; i < N; i++) {
                const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
                if (L == 0) continue;
                const plan_pair *p = pp[i];
                const int64_t m = p->n / 2 + 1;
                /* dk sums the sequences in the frequency domain while their
                 * length (so the tap count and FFT size) stays the same. */
                if (L != Lk) {
                    if (dk && pk) flush_dk(d, c0, nc, Lk, pk, &w, dk);
                    if (du) kernel_spectra(d, k, c0, nc, L, p, &w);
                }
                Lk = L;
                pk = p;
                gather(dy, C, c0, nc, st, L, p->n, &w);
                for (int64_t j = 0; j < nc; j++) {
                    fftwf_execute_dft_r2c(p->r2c, row(&w, j), spec(&w, w.xs, j));
                    if (!du) continue;
                    spec_mul(spec(&w, w.ks, j), spec(&w, w.xs, j), w.ps, m, true);
                    fftwf_execute_dft_c2r(p->c2r, w.ps, row(&w, j));
                }
                if (du) scatter_add(du, C, c0, nc, st, L, &w);
                if (!dk) continue;
                gather(u, C, c0, nc, st, L, p->n, &w);
                for (int64_t j = 0; j < nc; j++) {
                    fftwf_complex *acc = spec(&w, w.acc, j);
                    fftwf_execute_dft_r2c(p->r2c, row(&w, j), w.ps);
                    spec_mul(w.ps, spec(&w, w.xs, j), w.ps, m, true);
                    for (int64_t f = 0; f < m; f++) {
                        acc[f][0] += w.ps[f][0];
                        acc[f][1] += w.ps[f][1];
                    }
                }
            }
            if (dk && pk) flush_dk(d, c0, nc, Lk, pk, &w, dk);
        }
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
