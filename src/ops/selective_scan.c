/* The selective scan: its kernels, the op that records them, the reference
 * and the one-token step. Work is split into (sequence, block of SL_SS_EB
 * channels) items; an item holds its block's state transposed, [N, EB], so
 * each token's update of state n is one vector operation over channels. */
#include <math.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/selective_scan.h"

/* Channels per work item: eight AVX2 vectors; E / 64 items per sequence. */
#define SL_SS_EB 64

static int64_t blocks(int64_t E) { return (E + SL_SS_EB - 1) / SL_SS_EB; }

/* One thread's buffers ([N, EB] tiles unless said). */
typedef struct ss_buf {
    float *At;       /* A of the block, transposed */
    float *s, *g;    /* the running state (forward) or dL/ds (backward) */
    float *dA;       /* the item's sum of dA */
    float *S;        /* [C + 1, N, EB]: a chunk's entry state, then each token's */
    float *a;        /* [C, N, EB]: each token's exp(dt A) */
    float *du, *y;   /* [EB]: dt u, and the output or the gradient of u */
    float *ddt, *dD; /* [EB] */
} ss_buf;

/* The forward's buffers, and with bwd the backward's too. */
static ss_buf carve(const sl_selective_scan_desc *d, sl_carver *cv, bool bwd)
{
    const int64_t tile = d->N * SL_SS_EB, C = d->rows.C;
    ss_buf b = {0};
    b.At = sl_carve(cv, tile);
    b.s = sl_carve(cv, tile);
    b.du = sl_carve(cv, SL_SS_EB);
    b.y = sl_carve(cv, SL_SS_EB);
    if (!bwd) return b;
    b.g = sl_carve(cv, tile);
    b.dA = sl_carve(cv, tile);
    b.S = sl_carve(cv, (C + 1) * tile);
    b.a = sl_carve(cv, C * tile);
    b.ddt = sl_carve(cv, SL_SS_EB);
    b.dD = sl_carve(cv, SL_SS_EB);
    return b;
}

static int64_t buf_floats(const sl_selective_scan_desc *d, bool bwd)
{
    sl_carver cv = {NULL, 0};
    carve(d, &cv, bwd);
    return cv.used;
}

/* Threads of a run: ~8 flops per state element and token. */
static int ss_team(const sl_selective_scan_desc *d)
{
    return sl_chunk_team(d->rows.n * blocks(d->E), d->B * d->T * d->E * d->N * 8);
}

int64_t sl_selective_scan_fwd_scratch(const sl_selective_scan_desc *d)
{
    return buf_floats(d, false) * ss_team(d);
}

int64_t sl_selective_scan_bwd_scratch(const sl_selective_scan_desc *d)
{
    return buf_floats(d, true) * ss_team(d);
}

int64_t sl_selective_scan_states_floats(const sl_selective_scan_desc *d)
{
    return sl_chunk_states_floats(&d->rows, blocks(d->E), d->N * SL_SS_EB);
}

/* dBm, dCm partials [NB, B*T, N] each, then dA [rows, NB, N, EB] and dD
 * [rows, NB, EB]. */
int64_t sl_selective_scan_work_floats(const sl_selective_scan_desc *d)
{
    const int64_t NB = blocks(d->E);
    return NB * (2 * d->B * d->T * d->N + d->rows.n * (d->N + 1) * SL_SS_EB);
}

/* A run's pointers, shared by the items. */
typedef struct ss_run {
    const sl_selective_scan_desc *d;
    const float *u, *dt, *A, *Bm, *Cm, *D, *s0, *dy;
    float *y, *states, *s_final;
    float *du, *ddt, *ds0, *work;
} ss_run;

/* A run over the inputs both kernels read; each sets the rest. */
static ss_run run_in(const sl_selective_scan_desc *d, const float *u, const float *dt,
                     const float *A, const float *Bm, const float *Cm, const float *D)
{
    return (ss_run){.d = d, .u = u, .dt = dt, .A = A, .Bm = Bm, .Cm = Cm, .D = D};
}

/* The block's channels [e0, e0 + nc) of item `item`; sequence i. */
typedef struct ss_item {
    int64_t i, b, e0, nc, st, len;
} ss_item;

static ss_item item_of(const sl_selective_scan_desc *d, int64_t item)
{
    const int64_t NB = blocks(d->E);
    ss_item it = {item / NB, item % NB, (item % NB) * SL_SS_EB, 0, 0, 0};
    it.nc = d->E - it.e0 < SL_SS_EB ? d->E - it.e0 : SL_SS_EB;
    it.st = sl_chunk_start(&d->rows, it.i);
    it.len = sl_chunk_len(&d->rows, it.i);
    return it;
}

/* rows [E, N] at row i, channels of it -> tile [N, EB] (zeros for NULL). */
static void load_tile(const float *src, const sl_selective_scan_desc *d, const ss_item *it,
                      float *tile)
{
    const int64_t N = d->N;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < it->nc; j++)
            tile[n * SL_SS_EB + j] = src ? src[(it->i * d->E + it->e0 + j) * N + n] : 0.0f;
}

/* The item's buffers in its thread's scratch, with A of its block. */
static ss_buf item_buf(const ss_run *r, const ss_item *it, float *scratch, bool bwd)
{
    const int64_t N = r->d->N;
    sl_carver cv = {scratch, 0};
    ss_buf w = carve(r->d, &cv, bwd);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < it->nc; j++) w.At[n * SL_SS_EB + j] = r->A[(it->e0 + j) * N + n];
    return w;
}

/* One token's update of the tile s ([N, EB]) for channels [0, nc): u, dt
 * the token's rows at the block, Bt, Ct its [N]. Writes a (the decays;
 * NULL: not kept) and y = D u + C . s (when y is not NULL; Dj: D at the
 * block, or NULL). The step's arithmetic, in its order. */
static inline void token_update(float *restrict s, float *restrict a, const float *At,
                                const float *u, const float *dt, const float *Bt, const float *Ct,
                                const float *Dj, int64_t N, int64_t nc, float *restrict du,
                                float *restrict y)
{
#pragma omp simd
    for (int64_t j = 0; j < nc; j++) {
        du[j] = dt[j] * u[j];
        if (y) y[j] = Dj ? Dj[j] * u[j] : 0.0f;
    }
    for (int64_t n = 0; n < N; n++) {
        const float b = Bt[n], c = Ct[n];
        float *sn = s + n * SL_SS_EB;
        const float *An = At + n * SL_SS_EB;
        float *an = a ? a + n * SL_SS_EB : NULL;
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            const float e = sl_expf(dt[j] * An[j]);
            sn[j] = e * sn[j] + du[j] * b;
            if (an) an[j] = e;
            if (y) y[j] += c * sn[j];
        }
    }
}

static void fwd_item(const void *arg, int64_t item, float *scratch)
{
    const ss_run *r = arg;
    const sl_selective_scan_desc *d = r->d;
    const ss_item it = item_of(d, item);
    const int64_t E = d->E, N = d->N, tile = N * SL_SS_EB, NB = blocks(E);
    ss_buf w = item_buf(r, &it, scratch, false);
    load_tile(r->s0, d, &it, w.s);
    for (int64_t t = 0; t < it.len; t++) {
        if (r->states && t % d->rows.C == 0)
            memcpy(r->states + sl_chunk_state_at(&d->rows, NB, it.i, it.b, t / d->rows.C, tile),
                   w.s, (size_t)tile * sizeof(float));
        const int64_t o = it.st + t;
        token_update(w.s, NULL, w.At, r->u + o * E + it.e0, r->dt + o * E + it.e0, r->Bm + o * N,
                     r->Cm + o * N, r->D ? r->D + it.e0 : NULL, N, it.nc, w.du, w.y);
        memcpy(r->y + o * E + it.e0, w.y, (size_t)it.nc * sizeof(float));
    }
    if (r->s_final)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < it.nc; j++)
                r->s_final[(it.i * E + it.e0 + j) * N + n] = w.s[n * SL_SS_EB + j];
}

void sl_selective_scan_fwd(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *s0, float *y, float *states, float *s_final, float *scratch)
{
    ss_run r = run_in(d, u, dt, A, Bm, Cm, D);
    r.s0 = s0;
    r.y = y;
    r.states = states;
    r.s_final = s_final;
    sl_chunk_for(ss_team(d), d->rows.n * blocks(d->E), fwd_item, &r, scratch, buf_floats(d, false));
}

/* Chunk c of the item backward: recompute its states, then walk it in
 * reverse, carrying w.g = dL/ds from its end to its start. */
static void bwd_chunk(const ss_run *r, const ss_item *it, int64_t c, ss_buf *w)
{
    const sl_selective_scan_desc *d = r->d;
    const int64_t E = d->E, N = d->N, tile = N * SL_SS_EB, nc = it->nc, NB = blocks(E);
    const int64_t len = sl_chunk_size(&d->rows, it->i, c), t0 = it->st + c * d->rows.C;
    const int64_t BT = d->B * d->T;
    float *dBp = r->work + it->b * BT * N, *dCp = r->work + (NB + it->b) * BT * N;
    memcpy(w->S, r->states + sl_chunk_state_at(&d->rows, NB, it->i, it->b, c, tile),
           (size_t)tile * sizeof(float));
    for (int64_t k = 0; k < len; k++) {
        const int64_t o = t0 + k;
        memcpy(w->S + (k + 1) * tile, w->S + k * tile, (size_t)tile * sizeof(float));
        token_update(w->S + (k + 1) * tile, w->a + k * tile, w->At, r->u + o * E + it->e0,
                     r->dt + o * E + it->e0, r->Bm + o * N, r->Cm + o * N, NULL, N, nc, w->du,
                     NULL);
    }
    const float *Dj = r->D ? r->D + it->e0 : NULL;
    for (int64_t k = len - 1; k >= 0; k--) {
        const int64_t o = t0 + k;
        const float *u = r->u + o * E + it->e0, *dt = r->dt + o * E + it->e0;
        const float *dy = r->dy + o * E + it->e0, *Bt = r->Bm + o * N, *Ct = r->Cm + o * N;
        float *restrict gu = w->y, *restrict gdt = w->ddt, *restrict du = w->du;
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            du[j] = dt[j] * u[j];
            gu[j] = Dj ? dy[j] * Dj[j] : 0.0f;
            gdt[j] = 0.0f;
            w->dD[j] += dy[j] * u[j];
        }
        for (int64_t n = 0; n < N; n++) {
            const float b = Bt[n], cn = Ct[n];
            const float *sv = w->S + (k + 1) * tile + n * SL_SS_EB, *sp = sv - tile;
            const float *an = w->a + k * tile + n * SL_SS_EB, *An = w->At + n * SL_SS_EB;
            float *restrict gn = w->g + n * SL_SS_EB, *restrict dAn = w->dA + n * SL_SS_EB;
            float dc = 0.0f, db = 0.0f;
#pragma omp simd reduction(+ : dc, db)
            for (int64_t j = 0; j < nc; j++) {
                const float g = gn[j] + dy[j] * cn;
                dc += dy[j] * sv[j];
                db += g * du[j];
                gu[j] += g * dt[j] * b;
                const float ga = g * an[j] * sp[j]; /* dL/d(dt A) */
                gdt[j] += g * b * u[j] + ga * An[j];
                dAn[j] += ga * dt[j];
                gn[j] = g * an[j];
            }
            dBp[o * N + n] = db;
            dCp[o * N + n] = dc;
        }
        if (r->du)
            for (int64_t j = 0; j < nc; j++) r->du[o * E + it->e0 + j] += gu[j];
        if (r->ddt)
            for (int64_t j = 0; j < nc; j++) r->ddt[o * E + it->e0 + j] += gdt[j];
    }
}

static void bwd_item(const void *arg, int64_t item, float *scratch)
{
    const ss_run *r = arg;
    const sl_selective_scan_desc *d = r->d;
    const ss_item it = item_of(d, item);
    const int64_t E = d->E, N = d->N, tile = N * SL_SS_EB, NB = blocks(E);
    ss_buf w = item_buf(r, &it, scratch, true);
    load_tile(d->ds_final, d, &it, w.g);
    memset(w.dA, 0, (size_t)tile * sizeof(float));
    memset(w.dD, 0, SL_SS_EB * sizeof(float));
    for (int64_t c = sl_chunk_count(&d->rows, it.i) - 1; c >= 0; c--) bwd_chunk(r, &it, c, &w);
    float *dAp = r->work + 2 * NB * d->B * d->T * N + item * tile;
    float *dDp = r->work + 2 * NB * d->B * d->T * N + d->rows.n * NB * tile + item * SL_SS_EB;
    memcpy(dAp, w.dA, (size_t)tile * sizeof(float));
    memcpy(dDp, w.dD, SL_SS_EB * sizeof(float));
    if (r->ds0)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < it.nc; j++)
                r->ds0[(it.i * E + it.e0 + j) * N + n] += w.g[n * SL_SS_EB + j];
}

void sl_selective_scan_bwd(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *states, const float *dy, float *du, float *ddt, float *dA,
                           float *dBm, float *dCm, float *dD, float *ds0, float *scratch,
                           float *work)
{
    ss_run r = run_in(d, u, dt, A, Bm, Cm, D);
    r.states = (float *)states;
    r.dy = dy;
    r.du = du;
    r.ddt = ddt;
    r.ds0 = ds0;
    r.work = work;
    const int64_t NB = blocks(d->E), BT = d->B * d->T, N = d->N, E = d->E, rows = d->rows.n;
    const int64_t tile = N * SL_SS_EB;
    sl_chunk_for(ss_team(d), rows * NB, bwd_item, &r, scratch, buf_floats(d, true));
    /* Every token lies in one sequence, so each block wrote each token's
     * partials; sum them in block order. */
#pragma omp parallel for schedule(static) if (BT * N * NB >= SL_PAR_MIN)
    for (int64_t i = 0; i < BT * N; i++) {
        float sb = 0.0f, sc = 0.0f;
        for (int64_t b = 0; b < NB; b++) {
            sb += work[b * BT * N + i];
            sc += work[(NB + b) * BT * N + i];
        }
        if (dBm) dBm[i] += sb;
        if (dCm) dCm[i] += sc;
    }
    const float *dAp = work + 2 * NB * BT * N, *dDp = dAp + rows * NB * tile;
    for (int64_t e = 0; e < E; e++) {
        const int64_t b = e / SL_SS_EB, j = e % SL_SS_EB;
        for (int64_t i = 0; i < rows; i++) {
            if (dA)
                for (int64_t n = 0; n < N; n++)
                    dA[e * N + n] += dAp[(i * NB + b) * tile + n * SL_SS_EB + j];
            if (dD) dD[e] += dDp[(i * NB + b) * SL_SS_EB + j];
        }
    }
}

/* Node: in = {u, dt, A, Bm, Cm, D, s0}, out = y, desc = sl_selective_scan_desc,
 * saved = the chunk-entry states. */
static void selective_scan_backward(sl_ctx *ctx, const sl_node *nd)
{
    const sl_selective_scan_desc *d = nd->desc;
    sl_tensor *const *in = nd->in;
    float *g[7];
    for (int k = 0; k < 7; k++) g[k] = in[k] && in[k]->requires_grad ? sl_grad(ctx, in[k]) : NULL;
    sl_selective_scan_bwd(d, in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data,
                          in[5] ? in[5]->data : NULL, nd->saved, nd->out->grad, g[0], g[1], g[2],
                          g[3], g[4], g[5], g[6],
                          sl_arena_floats(ctx, sl_selective_scan_bwd_scratch(d)),
                          sl_arena_floats(ctx, sl_selective_scan_work_floats(d)));
}

sl_tensor *sl_selective_scan(sl_ctx *ctx, sl_tensor *u, sl_tensor *dt, sl_tensor *A, sl_tensor *Bm,
                             sl_tensor *Cm, sl_tensor *D, sl_tensor *s0, int64_t C, float *s_final,
                             const sl_seqs *seqs)
{
    sl_require(u->ndim == 3 && sl_same_shape(u, dt) && A->ndim == 2 && A->shape[0] == u->shape[2] &&
                   Bm->ndim == 3 && sl_same_shape(Bm, Cm) && Bm->shape[0] == u->shape[0] &&
                   Bm->shape[1] == u->shape[1] && Bm->shape[2] == A->shape[1] && C > 0 &&
                   (!D || D->n == u->shape[2]),
               "sl_selective_scan", "u, dt [B, T, E], A [E, N], Bm, Cm [B, T, N], D [E], C > 0");
    sl_require(sl_seqs_check(seqs, u, "sl_selective_scan") == SL_OK, "sl_selective_scan",
               sl_errmsg());
    sl_selective_scan_desc d = {u->shape[0],
                                u->shape[1],
                                u->shape[2],
                                A->shape[1],
                                sl_chunk_rows_keep(ctx, seqs, u->shape[0], u->shape[1], C),
                                sl_state_final_grad(ctx, s_final)};
    sl_require(!s0 || s0->n == d.rows.n * d.E * d.N, "sl_selective_scan", "s0 [rows, E, N]");
    sl_tensor *y = sl_tensor_like(ctx, u);
    sl_node *nd = SL_RECORD(ctx, selective_scan_backward, y, u, dt, A, Bm, Cm, D, s0);
    float *states = NULL;
    if (nd) {
        states = nd->saved = sl_arena_floats(ctx, sl_selective_scan_states_floats(&d));
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_selective_scan_fwd(&d, u->data, dt->data, A->data, Bm->data, Cm->data, D ? D->data : NULL,
                          s0 ? s0->data : NULL, y->data, states, s_final,
                          sl_arena_floats(ctx, sl_selective_scan_fwd_scratch(&d)));
    return y;
}

void sl_selective_scan_ref(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *s0, double *y, double *s_final)
{
    const int64_t E = d->E, N = d->N;
    for (int64_t i = 0; i < d->rows.n; i++) {
        const int64_t st = sl_chunk_start(&d->rows, i), len = sl_chunk_len(&d->rows, i);
        for (int64_t e = 0; e < E; e++)
            for (int64_t n = 0; n < N; n++) {
                double s = s0 ? s0[(i * E + e) * N + n] : 0.0;
                for (int64_t t = 0; t < len; t++) {
                    const int64_t o = st + t;
                    const double dte = dt[o * E + e];
                    s = exp(dte * A[e * N + n]) * s + dte * Bm[o * N + n] * u[o * E + e];
                    if (n == 0) y[o * E + e] = D ? (double)D[e] * u[o * E + e] : 0.0;
                    y[o * E + e] += Cm[o * N + n] * s;
                }
                if (s_final) s_final[(i * E + e) * N + n] = s;
            }
    }
}

void sl_selective_scan_step(float *s, const float *u, const float *dt, const float *A,
                            const float *Bm, const float *Cm, const float *D, int64_t E, int64_t N,
                            float *y)
{
    for (int64_t e = 0; e < E; e++) {
        const float du = dt[e] * u[e];
        float ye = D ? D[e] * u[e] : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            const float a = sl_expf(dt[e] * A[e * N + n]);
            s[e * N + n] = a * s[e * N + n] + du * Bm[n];
            ye += Cm[n] * s[e * N + n];
        }
        y[e] = ye;
    }
}
