/* BaseConv's long-kernel layer: block kernels over channels on top of the
 * FFT-conv kernels and sl_gemm, the op that records them, and the direct
 * reference. */
#include <stdlib.h>
#include <string.h>

#include "ops/base_conv.h"
#include "ops/channel_block.h"
#include "ops/fftconv.h"
#include "ops/internal.h"
#include "ops/ops.h"

/* Channels per block: as many, in 16s, as keep a block's rows [B, T, nc]
 * within BC_ROW_FLOATS (8 MB), so that short sequences take every channel
 * at once (one GEMM each way, as the composed ops), and at least 16, two
 * of fftconv's 8-channel work items, so that two threads share a block. */
#define BC_ROW_FLOATS (1 << 21)
#define BC_MIN_CB 16

static int64_t block_channels(const sl_base_conv_desc *d)
{
    int64_t nc = d->cb;
    if (nc <= 0) {
        const int64_t BT = d->B * d->T > 0 ? d->B * d->T : 1;
        nc = BC_ROW_FLOATS / BT / BC_MIN_CB * BC_MIN_CB;
        if (nc < BC_MIN_CB) nc = BC_MIN_CB;
    }
    return nc < d->D ? nc : d->D;
}

/* One block's buffers: v = h * x and g, each [BT, nc] (a block's channels
 * packed); x's, dy's and dx's rows when the block is not every channel
 * (else the tensors serve as they are); the block's taps and their
 * gradient channel-major [nc, T], as fftconv takes them. */
typedef struct bc_work {
    float *v, *g, *x, *dy, *dx, *h, *dh, *block;
    int64_t nc;
} bc_work;

static bc_work work_new(const sl_base_conv_desc *d, bool bwd)
{
    bc_work k = {0};
    k.nc = block_channels(d);
    const int64_t n = d->B * d->T * k.nc, nh = k.nc * d->T;
    const int64_t rows = 2 + (k.nc < d->D ? (bwd ? 3 : 1) : 0);
    k.block = sl_scratch(SL_SCRATCH_BLOCK, (size_t)(rows * n + (bwd ? 2 : 1) * nh + 1) * sizeof(float));
    k.v = k.block;
    k.g = k.v + n;
    k.h = k.g + n;
    k.dh = bwd ? k.h + nh : NULL;
    float *q = k.h + (bwd ? 2 : 1) * nh;
    if (k.nc < d->D) {
        k.x = q;
        k.dy = bwd ? q + n : NULL;
        k.dx = bwd ? q + 2 * n : NULL;
    }
    return k;
}

static sl_fftconv_desc fc_desc(const sl_base_conv_desc *d, int64_t nc)
{
    return (sl_fftconv_desc){d->B, d->T, nc, true, d->seqs};
}

/* Lags below min(S, T): the taps a sequence of at most T tokens reads. */
static int64_t lags(const sl_base_conv_desc *d) { return d->S < d->T ? d->S : d->T; }

/* Columns d0 .. d0+nc-1 of src: [BT, D] as packed rows: src itself when
 * the block is every channel, else gathered into buf. */
static const float *cols(const float *src, int64_t D, int64_t d0, int64_t nc, int64_t BT,
                         float *buf)
{
    if (nc == D) return src;
    cb_gather(src, D, d0, nc, BT, buf);
    return buf;
}

/* Lags per tile of the taps' transposes: a tile's rows of h (BC_TILE x nc)
 * stay in cache while each channel's run of BC_TILE lags is written. */
#define BC_TILE 64

/* Block d0 (nc channels): x's columns, the taps channel-major (zero past
 * S), v = h * x and g = x W^T + b. Returns x's columns. */
static const float *block_fwd(const sl_base_conv_desc *d, const float *x, const float *h,
                              const float *w, const float *b, int64_t d0, int64_t nc, bc_work *k)
{
    const int64_t D = d->D, T = d->T, BT = d->B * T, nl = lags(d);
    const float *xb = cols(x, D, d0, nc, BT, k->x);
#pragma omp parallel for schedule(static) if (nl * nc >= SL_PAR_MIN)
    for (int64_t l0 = 0; l0 < nl; l0 += BC_TILE) {
        const int64_t l1 = l0 + BC_TILE < nl ? l0 + BC_TILE : nl;
        for (int64_t j = 0; j < nc; j++)
            for (int64_t l = l0; l < l1; l++) k->h[j * T + l] = h[l * D + d0 + j];
    }
    if (nl < T)
        for (int64_t j = 0; j < nc; j++) memset(k->h + j * T + nl, 0, (size_t)(T - nl) * sizeof(float));
    const sl_fftconv_desc fd = fc_desc(d, nc);
    sl_fftconv_fwd(&fd, xb, k->h, k->v);
    sl_gemm(false, true, BT, nc, D, x, w + d0 * D, 0.0f, k->g);
    if (b)
#pragma omp parallel for schedule(static) if (BT * nc >= SL_PAR_MIN)
        for (int64_t t = 0; t < BT; t++)
            for (int64_t j = 0; j < nc; j++) k->g[t * nc + j] += b[d0 + j];
    return xb;
}

void sl_base_conv_fwd(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, float *y)
{
    const int64_t D = d->D, BT = d->B * d->T;
    if (BT == 0) return;
    bc_work k = work_new(d, false);
    for (int64_t d0 = 0; d0 < D; d0 += k.nc) {
        const int64_t nc = D - d0 < k.nc ? D - d0 : k.nc;
        const float *xb = block_fwd(d, x, h, w, b, d0, nc, &k);
#pragma omp parallel for schedule(static) if (BT * nc >= SL_PAR_MIN)
        for (int64_t t = 0; t < BT; t++)
            for (int64_t j = 0; j < nc; j++) {
                const int64_t e = t * nc + j;
                y[t * D + d0 + j] = k.v[e] * k.g[e] + xb[e];
            }
    }
}

void sl_base_conv_bwd(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, const float *dy, float *dx, float *dh, float *dw, float *db)
{
    const int64_t D = d->D, T = d->T, BT = d->B * T, nl = lags(d);
    if (BT == 0) return;
    if (dx)
#pragma omp parallel for simd schedule(static) if (BT * D >= SL_PAR_MIN)
        for (int64_t i = 0; i < BT * D; i++) dx[i] += dy[i];
    bc_work k = work_new(d, true);
    for (int64_t d0 = 0; d0 < D; d0 += k.nc) {
        const int64_t nc = D - d0 < k.nc ? D - d0 : k.nc, n = BT * nc;
        const float *xb = block_fwd(d, x, h, w, b, d0, nc, &k);
        const float *dyb = cols(dy, D, d0, nc, BT, k.dy);
        /* dg over v, dv over g: each is read once before it is overwritten. */
        float *dg = k.v, *dv = k.g;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t e = 0; e < n; e++) {
            const float v = k.v[e];
            dv[e] = dyb[e] * k.g[e];
            dg[e] = dyb[e] * v;
        }
        /* db by runs of 16 channels down the rows, each row's line read once. */
        if (db)
            for (int64_t j0 = 0; j0 < nc; j0 += 16) {
                const int64_t m = nc - j0 < 16 ? nc - j0 : 16;
                double acc[16] = {0};
                for (int64_t t = 0; t < BT; t++)
                    for (int64_t j = 0; j < m; j++) acc[j] += dg[t * nc + j0 + j];
                for (int64_t j = 0; j < m; j++) db[d0 + j0 + j] += (float)acc[j];
            }
        if (dw) sl_gemm(true, false, nc, D, BT, dg, x, 1.0f, dw + d0 * D);
        if (dx) sl_gemm(false, false, BT, D, nc, dg, w + d0 * D, 1.0f, dx);
        if (!dx && !dh) continue;
        /* du is added to: straight into dx when the block is every channel. */
        float *dxb = !dx ? NULL : nc == D ? dx : k.dx;
        if (dxb && dxb != dx) memset(dxb, 0, (size_t)n * sizeof(float));
        if (dh) memset(k.dh, 0, (size_t)(nc * T) * sizeof(float));
        const sl_fftconv_desc fd = fc_desc(d, nc);
        sl_fftconv_bwd(&fd, xb, k.h, dv, dxb, dh ? k.dh : NULL);
        if (dxb && dxb != dx) cb_scatter(dx, D, d0, nc, BT, dxb, true);
        if (dh)
#pragma omp parallel for schedule(static) if (nl * nc >= SL_PAR_MIN)
            for (int64_t l0 = 0; l0 < nl; l0 += BC_TILE) {
                const int64_t l1 = l0 + BC_TILE < nl ? l0 + BC_TILE : nl;
                for (int64_t l = l0; l < l1; l++)
                    for (int64_t j = 0; j < nc; j++) dh[l * D + d0 + j] += k.dh[j * T + l];
            }
    }
}

/* ---------------------------------------------------------------- the op */
/* Node: in = {x, h, w, b}, desc: sl_base_conv_desc. */
static void base_conv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *h = nd->in[1], *w = nd->in[2], *b = nd->in[3];
#define BC_GRAD(t) ((t) && (t)->requires_grad ? sl_grad(ctx, t) : NULL)
    sl_base_conv_bwd(nd->desc, x->data, h->data, w->data, b ? b->data : NULL, nd->out->grad,
                     BC_GRAD(x), BC_GRAD(h), BC_GRAD(w), BC_GRAD(b));
#undef BC_GRAD
}

sl_tensor *sl_base_conv(sl_ctx *ctx, sl_tensor *x, sl_tensor *h, sl_tensor *w, sl_tensor *b,
                        const sl_seqs *seqs)
{
    sl_require(x->ndim == 3, "sl_base_conv", "x [B, T, D]");
    const int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2];
    sl_require(h->ndim == 2 && h->shape[1] == D, "sl_base_conv", "h [S, D] (taps by lag)");
    sl_require(w->ndim == 2 && w->shape[0] == D && w->shape[1] == D && (!b || b->n == D),
               "sl_base_conv", "w [D, D], b [D]");
    sl_require(sl_seqs_check(seqs, x, "sl_base_conv") == SL_OK, "sl_base_conv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, D]");
    sl_base_conv_desc d = {B, T, D, h->shape[0], 0, seqs};
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_node *nd = SL_RECORD(ctx, base_conv_backward, y, x, h, w, b);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_base_conv_fwd(&d, x->data, h->data, w->data, b ? b->data : NULL, y->data);
    return y;
}

/* ------------------------------------------------------------- reference */
void sl_base_conv_ref(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, double *y)
{
    const int64_t T = d->T, D = d->D;
    for (int64_t i = 0; i < d->B * T * D; i++) y[i] = x[i];
    for (int64_t i = 0; i < sl_seq_count(d->seqs, d->B); i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
        for (int64_t t = 0; t < L; t++)
            for (int64_t c = 0; c < D; c++) {
                const float *xt = x + (st + t) * D;
                double v = 0, g = b ? b[c] : 0.0;
                for (int64_t l = 0; l <= t && l < d->S; l++)
                    v += (double)h[l * D + c] * x[(st + t - l) * D + c];
                for (int64_t e = 0; e < D; e++) g += (double)w[c * D + e] * xt[e];
                y[(st + t) * D + c] += v * g;
            }
    }
}
