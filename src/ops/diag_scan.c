/* The diagonal scan: its kernels, the op that records them, the reference
 * and the one-token step. Work is split into (sequence, block of SL_DS_CB
 * channels) items; each walks its sequence in time with a carry of one
 * block, so a token's update is one vector operation.
 *
 * With few such items (one short row of channels) a long sequence is also
 * split in time, into pieces of SL_DS_PIECE tokens: the scan is linear in
 * its carry, so a piece run from zero gives its end value `loc` and the
 * product `prd` of its coefficients, and the carry leaving it is
 * loc + prd * (the carry entering it). A short sequential pass over the
 * pieces forms every entering carry, and each piece then runs again from
 * its own. Twice the arithmetic, all of it parallel; the backward's reverse
 * scan is split the same way. The choice depends on the shape only, never
 * on the thread count, so neither do the results. */
#include <string.h>

#include "ops/diag_scan.h"
#include "ops/internal.h"

/* Channels per work item: a few vectors wide, and enough items to share. */
#define SL_DS_CB 64
/* Tokens per piece of the time-split form, and the fewest items below which
 * it is used. */
#define SL_DS_PIECE 2048
#define SL_DS_FEW 4

static int64_t blocks(int64_t C) { return (C + SL_DS_CB - 1) / SL_DS_CB; }

/* Pieces each sequence is split into: 1 unless the time-split form runs
 * (equal rows of at least two pieces, few channel blocks). */
static int64_t pieces(const sl_diag_scan_desc *d)
{
    const bool split = !d->seqs && d->B * blocks(d->C) < SL_DS_FEW && d->T >= 2 * SL_DS_PIECE;
    return split ? (d->T + SL_DS_PIECE - 1) / SL_DS_PIECE : 1;
}

int64_t sl_diag_scan_scratch_floats(const sl_diag_scan_desc *d)
{
    const int64_t P = pieces(d);
    return P > 1 ? (2 * P + 1) * d->B * d->C : 0;
}

/* One work item: sequence n, channels [c0, c0 + nc), piece p of P (tokens
 * [t0, t1) of the sequence, which starts at token st of all B*T). */
typedef struct item {
    int64_t n, c0, nc, st, t0, t1;
} item;

static item item_at(const sl_diag_scan_desc *d, int64_t w, int64_t P)
{
    const int64_t NB = blocks(d->C), n = w / (NB * P), c0 = (w / P % NB) * SL_DS_CB;
    const int64_t len = sl_seq_len(d->seqs, n, d->T), p = w % P;
    const int64_t t0 = p * SL_DS_PIECE,
                  t1 = P > 1 && t0 + SL_DS_PIECE < len ? t0 + SL_DS_PIECE : len;
    return (item){n,
                  c0,
                  d->C - c0 < SL_DS_CB ? d->C - c0 : SL_DS_CB,
                  sl_seq_start(d->seqs, n, d->T),
                  P > 1 ? t0 : 0,
                  t1};
}

/* The forward over an item's tokens from carry (updated in place); h
 * written when not NULL, else prd (when not NULL) gets the product of the
 * coefficients. */
static void fwd_item(const sl_diag_scan_desc *d, const item *it, const float *a, const float *b,
                     float *h, float *carry, float *prd)
{
    const int64_t C = d->C, nc = it->nc;
    for (int64_t t = it->t0; t < it->t1; t++) {
        const int64_t o = (it->st + t) * C + it->c0;
        if (h) {
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) h[o + j] = carry[j] = a[o + j] * carry[j] + b[o + j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) {
                carry[j] = a[o + j] * carry[j] + b[o + j];
                prd[j] *= a[o + j];
            }
        }
    }
}

/* The backward over an item's tokens in reverse from g = a_{t1} dL/dh_{t1}
 * (updated in place, leaving a_{t0} dL/dh_{t0}); da, db added to when not
 * NULL, else prd (when not NULL) gets the product of the coefficients. */
static void bwd_item(const sl_diag_scan_desc *d, const item *it, const float *a, const float *h,
                     const float *s0, const float *dh, float *da, float *db, float *g, float *prd)
{
    const int64_t C = d->C, nc = it->nc;
    for (int64_t t = it->t1 - 1; t >= it->t0; t--) {
        const int64_t o = (it->st + t) * C + it->c0;
        const float *hp = t > 0 ? h + o - C : s0 ? s0 + it->n * C + it->c0 : NULL;
        if (prd) {
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) {
                g[j] = (g[j] + dh[o + j]) * a[o + j];
                prd[j] *= a[o + j];
            }
            continue;
        }
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            g[j] += dh[o + j];
            if (db) db[o + j] += g[j];
            if (da && hp) da[o + j] += g[j] * hp[j];
            g[j] *= a[o + j];
        }
    }
}

/* The pieces' carries, in order (forward) or reverse: each slot of loc
 * (a piece run from zero) becomes the carry entering that piece; returns
 * in `in` the carry leaving the last. loc, prd: [P, C] of one sequence. */
static void chain(float *loc, const float *prd, int64_t P, int64_t C, bool reverse, float *in)
{
    for (int64_t q = 0; q < P; q++) {
        const int64_t p = reverse ? P - 1 - q : q;
        for (int64_t c = 0; c < C; c++) {
            const float l = loc[p * C + c];
            loc[p * C + c] = in[c];
            in[c] = l + prd[p * C + c] * in[c];
        }
    }
}

/* Work item w's slot (its sequence, piece w % P and channels) in a
 * [N, P, C] table, set to v: a run from zero starts at loc 0, prd 1. */
static float *piece_slot(const item *it, int64_t w, int64_t P, int64_t C, float *table, float v)
{
    float *slot = table + (it->n * P + w % P) * C + it->c0;
    for (int64_t j = 0; j < it->nc; j++) slot[j] = v;
    return slot;
}

/* The time-split form's first pass: every piece run from zero, in
 * parallel, leaving its end value in loc and its coefficients' product in
 * prd ([N, P, C] each): the forward scan of b, or with dh the backward's
 * reverse scan (h and s0 as bwd_item reads them). */
static void pieces_from_zero(const sl_diag_scan_desc *d, int64_t P, const float *a, const float *b,
                             const float *h, const float *s0, const float *dh, float *loc,
                             float *prd)
{
    const int64_t items = sl_seq_count(d->seqs, d->B) * blocks(d->C) * P;
#pragma omp parallel for schedule(static)
    for (int64_t w = 0; w < items; w++) {
        const item it = item_at(d, w, P);
        float *l = piece_slot(&it, w, P, d->C, loc, 0.0f),
              *q = piece_slot(&it, w, P, d->C, prd, 1.0f);
        if (dh)
            bwd_item(d, &it, a, h, s0, dh, NULL, NULL, l, q);
        else
            fwd_item(d, &it, a, b, NULL, l, q);
    }
}

void sl_diag_scan_fwd(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      float *h, float *s_final, float *scratch)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B), NB = blocks(C);
    const int64_t P = pieces(d), items = N * NB * P;
    float *loc = scratch, *prd = scratch + N * P * C;
    if (P > 1) {
        pieces_from_zero(d, P, a, b, NULL, NULL, NULL, loc, prd);
        for (int64_t n = 0; n < N; n++) {
            float *in = s_final ? s_final + n * C : prd + (N * P + n) * C;
            for (int64_t c = 0; c < C; c++) in[c] = s0 ? s0[n * C + c] : 0.0f;
            chain(loc + n * P * C, prd + n * P * C, P, C, false, in);
        }
    }
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < items; w++) {
        const item it = item_at(d, w, P);
        float carry[SL_DS_CB];
        const float *from = P > 1 ? loc + (it.n * P + w % P) * C + it.c0
                            : s0  ? s0 + it.n * C + it.c0
                                  : NULL;
        for (int64_t j = 0; j < it.nc; j++) carry[j] = from ? from[j] : 0.0f;
        fwd_item(d, &it, a, b, h, carry, NULL);
        if (s_final && P == 1)
            memcpy(s_final + it.n * C + it.c0, carry, (size_t)it.nc * sizeof(float));
    }
}

void sl_diag_scan_bwd(const sl_diag_scan_desc *d, const float *a, const float *h, const float *s0,
                      const float *dh, float *da, float *db, float *ds0, float *scratch)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B), NB = blocks(C);
    const int64_t P = pieces(d), items = N * NB * P;
    float *loc = scratch, *prd = scratch + N * P * C;
    if (P > 1) pieces_from_zero(d, P, a, NULL, h, s0, dh, loc, prd);
    /* The carry entering the last piece is the final state's gradient; the
     * one leaving the first, left in `in`, is ds0's, which the first
     * piece's second run gives too. */
    for (int64_t n = 0; P > 1 && n < N; n++) {
        float *in = prd + (N * P + n) * C;
        for (int64_t c = 0; c < C; c++) in[c] = d->ds_final ? d->ds_final[n * C + c] : 0.0f;
        chain(loc + n * P * C, prd + n * P * C, P, C, true, in);
    }
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < items; w++) {
        const item it = item_at(d, w, P);
        float g[SL_DS_CB] = {0};
        const float *from = P > 1         ? loc + (it.n * P + w % P) * C + it.c0
                            : d->ds_final ? d->ds_final + it.n * C + it.c0
                                          : NULL;
        if (from) memcpy(g, from, (size_t)it.nc * sizeof(float));
        bwd_item(d, &it, a, h, s0, dh, da, db, g, NULL);
        if (ds0 && it.t0 == 0)
            for (int64_t j = 0; j < it.nc; j++) ds0[it.n * C + it.c0 + j] += g[j];
    }
}

/* Node: in = {a, b, s0}, out = h, desc = sl_diag_scan_desc. */
static void diag_scan_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *a = nd->in[0], *b = nd->in[1], *s0 = nd->in[2];
    sl_diag_scan_bwd(nd->desc, a->data, nd->out->data, s0 ? s0->data : NULL, nd->out->grad,
                     a->requires_grad ? sl_grad(ctx, a) : NULL,
                     b->requires_grad ? sl_grad(ctx, b) : NULL,
                     s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL,
                     sl_arena_floats(ctx, sl_diag_scan_scratch_floats(nd->desc)));
}

/* a, b: [B, T, C], s0: [N, C] | NULL -> h: [B, T, C]; s_final: [N, C] | NULL. */
sl_tensor *sl_diag_scan(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, sl_tensor *s0, float *s_final,
                        const sl_seqs *seqs)
{
    sl_require(a->ndim == 3 && b->ndim == 3 && a->shape[0] == b->shape[0] &&
                   a->shape[1] == b->shape[1] && a->shape[2] == b->shape[2],
               "sl_diag_scan", "a, b [B, T, C]");
    /* Before anything is allocated or recorded: bounds past T would read and
     * write outside every tensor. */
    sl_require(sl_seqs_check(seqs, a, "sl_diag_scan") == SL_OK, "sl_diag_scan",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, C]");
    sl_diag_scan_desc d = {a->shape[0], a->shape[1], a->shape[2], seqs,
                           sl_state_final_grad(ctx, s_final)};
    sl_require(!s0 || s0->n == sl_seq_count(seqs, d.B) * d.C, "sl_diag_scan", "s0 [N, C]");
    sl_tensor *h = sl_tensor_like(ctx, a);
    sl_node *nd = SL_RECORD(ctx, diag_scan_backward, h, a, b, s0);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_diag_scan_fwd(&d, a->data, b->data, s0 ? s0->data : NULL, h->data, s_final,
                     sl_arena_floats(ctx, sl_diag_scan_scratch_floats(&d)));
    return h;
}

void sl_diag_scan_ref(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      double *h, double *s_final)
{
    const int64_t T = d->T, C = d->C;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t c = 0; c < C; c++) {
            double s = s0 ? s0[n * C + c] : 0.0;
            for (int64_t t = 0; t < len; t++) {
                const int64_t i = (st + t) * C + c;
                s = a[i] * s + b[i];
                h[i] = s;
            }
            if (s_final) s_final[n * C + c] = s;
        }
    }
}

void sl_diag_scan_step(float *state, const float *a, const float *b, int64_t C)
{
#pragma omp simd
    for (int64_t c = 0; c < C; c++) state[c] = a[c] * state[c] + b[c];
}
