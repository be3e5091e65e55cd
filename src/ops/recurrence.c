/* Chunkwise-parallel decayed matrix-state recurrence, forward and backward
 * (the form of GLA, Yang et al. 2023, section 4, with its secondary chunking
 * for the key-dim decay), plus the step-by-step reference and the one-token
 * step. q, k and v are read in place as column blocks (sl_rec_in), mapped
 * and scaled as each chunk is packed (block_io.h); the causal chunk products
 * skip their known-zero half (small_gemm.h's mm_part).
 *
 * Per (b, h), a chunk of L <= C tokens starting from state S, with the
 * inclusive cumulative log decay inside the chunk B_i = g_{t0} + .. + g_{t0+i}
 * (a row of dk values; the scalar modes repeat one value) and b = B_{L-1}:
 *     O = (Q . e^B) S + A V,   A_ij = sum_d Q_id K_jd e^(B_id - B_jd), j <= i
 *     S' = diag(e^b) S + (K . e^(b - B))^T V
 * With g <= 0 every exponent above is <= 0: B and b - B_j are sums of gates
 * and B_i - B_j (j <= i) is too. No e^(-B) is ever formed, so T = 65536
 * under strong decay stays finite; sums restart every chunk, so the float
 * cumulative sums stay short.
 *
 * The forward keeps the state entering each chunk (O(T dk dv / C) floats per
 * head); the backward walks the chunks in reverse with dS, the gradient of
 * the state leaving the chunk:
 *     dQ = (dO S^T) . e^B + (dA . M) K     dK = (V dS^T) . e^(b-B) + (dA . M)^T Q
 *     dV = A^T dO + (K . e^(b-B)) dS      dS_prev = diag(e^b) dS + (Q . e^B)^T dO
 * with dA = dO V^T on j <= i and M_ij = e^(B_i - B_j), and dB from every
 * exponent, summed from the end of the chunk back to give dg. Work is split
 * over B x H; each (b, h) is one thread's, in a fixed order, so results do
 * not depend on the thread count. */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

#include <math.h>
#include <string.h>

#include "ops/block_io.h"
#include "ops/chunk_runtime.h"
#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/ops.h"
#include "ops/recurrence.h"
#include "ops/small_gemm.h"

/* What the backward needs besides the node's inputs. */
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------- helpers */

/* Bc: [L, dk], the inclusive cumulative log decay of head h over tokens
 * t0 .. t0+L-1, counted over all B*T tokens. One branch per mode, outside
 * the loops: a key-dim decay adds g's row to the previous row (a loop over
 * d that vectorises), a scalar one sums once per row and fills the row. */
static void cum_decay(const sl_recurrence_desc *s, const float *g, int64_t h, int64_t t0,
                      int64_t L, float *Bc)
{
    const int64_t dk = s->dk, H = s->H;
    if (s->decay == SL_REC_DECAY_KEY) {
        const float *gt = g + (t0 * H + h) * dk; /* rows H*dk apart */
        memcpy(Bc, gt, (size_t)dk * sizeof(float));
        for (int64_t i = 1; i < L; i++) {
            const float *prev = Bc + (i - 1) * dk, *gi = gt + i * H * dk;
            float *row = Bc + i * dk;
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) row[d] = prev[d] + gi[d];
        }
        return;
    }
    float b = 0.0f;
    for (int64_t i = 0; i < L; i++) {
        b += s->decay == SL_REC_DECAY_HEAD    ? s->log_gamma[h]
             : s->decay == SL_REC_DECAY_TOKEN ? g[(t0 + i) * H + h]
                                      : 0.0f;
        float *row = Bc + i * dk;
        for (int64_t d = 0; d < dk; d++) row[d] = b;
    }
}

/* out: [L, dk] = x . e^(B) or, when from_end, x . e^(b - B) with b = B_{L-1};
 * e (optional): [L, dk] receives the factors. */
static void decayed(const float *x, const float *Bc, int64_t L, int64_t dk, bool from_end,
                    float *out, float *e)
{
    const float *bl = Bc + (L - 1) * dk;
    for (int64_t i = 0; i < L; i++) {
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) {
            float f = sl_expf(from_end ? bl[d] - Bc[i * dk + d] : Bc[i * dk + d]);
            out[i * dk + d] = x[i * dk + d] * f;
            if (e) e[i * dk + d] = f;
        }
    }
}

/* ----------------------------------------------------------- scratch */

/* One thread's buffers for one chunk. */
typedef struct head_buf {
    float *Q, *K, *V, *O, *Bc, *Qd, *Kd, *E, *F; /* operands: [C, dk] or [C, dv] */
    float *A, *P;                                /* [C, C]: scores; dA, then dA . M */
    float *dQ, *dK, *dV, *dB, *tmp, *dbs;        /* the chunk's gradients */
    float *S, *dS, *bt;                          /* state, its gradient, mm_nt's scratch */
    float *Qr, *Kr, *dQr, *dKr;                  /* [C, dk]: sub-block operands (key decay) */
    float *EQ, *EK, *Es;                         /* [C, dk]: their factors, and steps */
    float *f;                                    /* [4, dk]: running products of steps */
    float *bs;                                   /* [C]: a scalar decay's B_i, contiguous */
} head_buf;

/* One thread's buffers from cv (counting only, when cv->base is NULL). */
static head_buf carve(const sl_recurrence_desc *s, sl_carver *cv)
{
    const int64_t C = s->C, dk = s->dk, dv = s->dv;
    head_buf h;
    float **ck[] = {&h.Q,  &h.K,   &h.Bc, &h.Qd, &h.Kd,  &h.E,   &h.F,  &h.dQ, &h.dK,
                    &h.dB, &h.tmp, &h.Qr, &h.Kr, &h.dQr, &h.dKr, &h.EQ, &h.EK, &h.Es};
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) *ck[i] = sl_carve(cv, C * dk);
    float **cvv[] = {&h.V, &h.O, &h.dV};
    for (size_t i = 0; i < sizeof cvv / sizeof cvv[0]; i++) *cvv[i] = sl_carve(cv, C * dv);
    h.A = sl_carve(cv, C * C);
    h.P = sl_carve(cv, C * C);
    h.dbs = sl_carve(cv, C);
    h.bs = sl_carve(cv, C);
    h.f = sl_carve(cv, 4 * dk);
    h.S = sl_carve(cv, dk * dv);
    h.dS = sl_carve(cv, dk * dv);
    /* mm_nt's transposed operand: [max(dk, dv), max(C, dk)]. */
    h.bt = sl_carve(cv, (dk > dv ? dk : dv) * (C > dk ? C : dk));
    return h;
}

static int64_t buf_floats(const sl_recurrence_desc *s)
{
    sl_carver cv = {NULL, 0};
    carve(s, &cv);
    return cv.used;
}

/* Threads of a run. */
static int rec_team(const sl_recurrence_desc *s)
{
    const int64_t work = sl_chunk_state_work(s->B * s->T, s->H, s->C, s->dk, s->dv);
    return sl_chunk_team(s->rows.n * s->H, work);
}

/* Row r's first token (over all B*T), length, and the saved states of its
 * head h: [its chunks, dk, dv]. */
static void row_span(const sl_recurrence_desc *s, int64_t r, int64_t h, float *states,
                     int64_t *start, int64_t *len, float **st)
{
    *start = sl_chunk_start(&s->rows, r);
    *len = sl_chunk_len(&s->rows, r);
    *st = states ? states + sl_chunk_state_at(&s->rows, s->H, r, h, 0, s->dk * s->dv) : NULL;
}

/* Rows of the sub-blocks a chunk's key-decay scores are split into. 8 and
 * 32 both ran slower: 8 with more, smaller products left of the diagonal,
 * 32 with longer walks in the diagonal blocks' backward. */
#define SUB 16

/* For the sub-block of rows [r, r + n), r > 0: Qr_i = Q_i . EQ_i with
 * EQ_i = e^(B_i - B_r) (when queries; rows r .. r+n-1 of Qr and EQ, so all
 * blocks' stay for the backward) and, for the earlier tokens j < r,
 * Kr_j = K_j . EK_j with EK_j = e^(B_r - B_j). Both exponents are sums of
 * gates, so <= 0, and Qr_i . Kr_j = sum_d Q_id K_jd e^(B_id - B_jd): the
 * scores left of the diagonal block are one product, not an exponential per
 * (i, j, d) (GLA's secondary chunking, Yang et al. 2023, section 4).
 * The factors are products of steps (decay_steps, which must have run), so
 * none takes an exponential of its own: EQ runs forward from row r, and EK
 * back from row r over the previous block. Blocks are taken in order,
 * r = SUB, 2 SUB, ..: EK then holds the previous block's factors, and the
 * rows before r - SUB move on by EK_{r-SUB} = e^(B_r - B_{r-SUB}). */
static void sub_operands(int64_t r, int64_t n, int64_t dk, bool queries, const head_buf *w)
{
    if (queries) {
        for (int64_t d = 0; d < dk; d++) w->EQ[r * dk + d] = 1.0f;
        memcpy(w->Qr + r * dk, w->Q + r * dk, (size_t)dk * sizeof(float));
        for (int64_t i = r + 1; i < r + n; i++) {
            const float *q = w->Q + i * dk, *st = w->Es + i * dk;
            float *e = w->EQ + i * dk, *o = w->Qr + i * dk;
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) {
                e[d] = e[d - dk] * st[d];
                o[d] = q[d] * e[d];
            }
        }
    }
    memcpy(w->EK + (r - 1) * dk, w->Es + r * dk, (size_t)dk * sizeof(float));
    for (int64_t j = r - 2; j >= r - SUB; j--) {
        const float *st = w->Es + (j + 1) * dk;
        float *e = w->EK + j * dk;
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) e[d] = e[d + dk] * st[d];
    }
    const float *m = w->EK + (r - SUB) * dk;
    for (int64_t j = 0; j < r; j++) {
        const float *k = w->K + j * dk;
        float *e = w->EK + j * dk, *o = w->Kr + j * dk;
        if (j < r - SUB) {
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) e[d] *= m[d];
        }
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) o[d] = k[d] * e[d];
    }
}

/* Es_t = e^(B_t - B_{t-1}), t = 1 .. L-1: every factor of the key-dim
 * scores is a product of these, e^(B_i - B_j) = Es_{j+1} .. Es_i for
 * j <= i, so the chunk takes one exponential per (t, d), not one per
 * (i, j, d). Each step is <= 1 (g <= 0), so no product overflows (under strong decay
 * they underflow to 0, as the factors they stand for would); their rounding
 * grows with the number of steps (< C), not with the size of B. */
static void decay_steps(int64_t L, int64_t dk, const head_buf *w)
{
    for (int64_t t = 1; t < L; t++) {
        const float *b = w->Bc + t * dk;
        float *e = w->Es + t * dk;
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) e[d] = sl_expf(b[d] - b[d - dk]);
    }
}

/* sum_d f_d k_d after f *= e: the next score of a diagonal block's row,
 * one token further back. */
static float step_dot(float *f, const float *e, const float *k, int64_t dk)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < dk; d++) {
        f[d] *= e[d];
        s += f[d] * k[d];
    }
    return s;
}

/* step_dot for 4 rows, f: [4, dk] -> s: [4]: four independent sums, and e
 * and k load once for the four. */
static void step_dot4(float *f, const float *e, const float *k, int64_t dk, float *s)
{
    float *f0 = f, *f1 = f + dk, *f2 = f + 2 * dk, *f3 = f + 3 * dk;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t d = 0; d < dk; d++) {
        f0[d] *= e[d];
        f1[d] *= e[d];
        f2[d] *= e[d];
        f3[d] *= e[d];
        s0 += f0[d] * k[d];
        s1 += f1[d] * k[d];
        s2 += f2[d] * k[d];
        s3 += f3[d] * k[d];
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/* Rows [r, r + n) of A inside the diagonal block, and 0 right of it: row i
 * walks j from i back to r, carrying f_i = Q_i . e^(B_i - B_j). Rows go in
 * fours: each walks alone through the four's own triangle, then the four
 * walk on together (step_dot4); a last group of fewer walks alone. */
static void diag_scores(int64_t r, int64_t n, int64_t L, int64_t dk, const head_buf *w)
{
    for (int64_t i0 = r; i0 < r + n; i0 += 4) {
        const int64_t m = min64(4, r + n - i0), alone_to = m == 4 ? i0 : r;
        for (int64_t i = i0; i < i0 + m; i++) {
            float *a = w->A + i * L, *f = w->f + (i - i0) * dk;
            const float *qi = w->Q + i * dk, *ki = w->K + i * dk;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t d = 0; d < dk; d++) s += qi[d] * ki[d];
            a[i] = s;
            memcpy(f, qi, (size_t)dk * sizeof(float));
            for (int64_t j = i - 1; j >= alone_to; j--)
                a[j] = step_dot(f, w->Es + (j + 1) * dk, w->K + j * dk, dk);
            for (int64_t j = i + 1; j < L; j++) a[j] = 0.0f;
        }
        if (m < 4) continue;
        for (int64_t j = i0 - 1; j >= r; j--) {
            float s[4];
            step_dot4(w->f, w->Es + (j + 1) * dk, w->K + j * dk, dk, s);
            for (int64_t u = 0; u < 4; u++) w->A[(i0 + u) * L + j] = s[u];
        }
    }
}

/* The diagonal block of rows [r, r + n): with F_ij = e^(B_i - B_j) carried
 * as in diag_scores, t = dA_ij F_ij gives dQ_i += t . K_j and
 * dK_j += t . Q_i. Summed over the block's pairs j < i into dQr and dKr
 * first, since dB_i then is Q_i . dQr_i - K_i . dKr_i (A_ij depends on
 * B_i - B_j; the pairs j = i have no decay and go straight to dQ, dK). */
static void diag_backward(int64_t r, int64_t n, int64_t L, int64_t dk, const head_buf *w)
{
    float *dq = w->dQr, *dkr = w->dKr; /* [n, dk] */
    memset(dq, 0, (size_t)(n * dk) * sizeof(float));
    memset(dkr, 0, (size_t)(n * dk) * sizeof(float));
    for (int64_t i = r; i < r + n; i++) {
        const float *qi = w->Q + i * dk, *ki = w->K + i * dk, *p = w->P + i * L;
        float *dqi = dq + (i - r) * dk, *f = w->f;
        for (int64_t d = 0; d < dk; d++) f[d] = 1.0f;
        for (int64_t j = i - 1; j >= r; j--) {
            const float *e = w->Es + (j + 1) * dk, *kj = w->K + j * dk;
            float *dkj = dkr + (j - r) * dk;
            const float da = p[j];
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) {
                f[d] *= e[d];
                const float t = da * f[d];
                dqi[d] += t * kj[d];
                dkj[d] += t * qi[d];
            }
        }
        float *dQi = w->dQ + i * dk, *dKi = w->dK + i * dk;
        const float da = p[i];
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) {
            dQi[d] += da * ki[d];
            dKi[d] += da * qi[d];
        }
    }
    for (int64_t i = r; i < r + n; i++) {
        const float *qi = w->Q + i * dk, *ki = w->K + i * dk;
        const float *gq = dq + (i - r) * dk, *gk = dkr + (i - r) * dk;
        float *dQi = w->dQ + i * dk, *dKi = w->dK + i * dk, *dbi = w->dB + i * dk;
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) {
            dQi[d] += gq[d];
            dKi[d] += gk[d];
            dbi[d] += qi[d] * gq[d] - ki[d] * gk[d];
        }
    }
}

/* A: [L, L] = the decay-masked scores, A_ij = sum_d Q_id K_jd e^(B_id - B_jd)
 * for j <= i, 0 above the diagonal. Scalar decays factor out of the sum, so
 * there A = (Q K^T) . e^(b_i - b_j) from one product. A key-dim decay
 * forms its factors as products of steps (decay_steps): inside the diagonal
 * SUB x SUB blocks per score, left of them as the operands of one product
 * (sub_operands). What it leaves in Qr, EQ and Es is intra_backward's. */
static void intra_scores(int mode, int64_t L, int64_t dk, const head_buf *w)
{
    const float *Q = w->Q, *K = w->K, *Bc = w->Bc;
    float *A = w->A;
    if (mode != SL_REC_DECAY_KEY) {
        mm_nt_part(SG_C_LOWER, L, L, dk, Q, dk, K, dk, A, L, false, w->bt);
        /* B_i gathered once so the row loops below run over contiguous
         * values (and vectorise); no decay needs no factor at all. */
        if (mode != SL_REC_DECAY_NONE)
            for (int64_t i = 0; i < L; i++) w->bs[i] = Bc[i * dk];
        for (int64_t i = 0; i < L; i++) {
            if (mode != SL_REC_DECAY_NONE) {
                const float bi = w->bs[i];
#pragma omp simd
                for (int64_t j = 0; j <= i; j++) A[i * L + j] *= sl_expf(bi - w->bs[j]);
            }
            for (int64_t j = i + 1; j < L; j++) A[i * L + j] = 0.0f;
        }
        return;
    }
    decay_steps(L, dk, w);
    for (int64_t r = 0; r < L; r += SUB) {
        const int64_t n = min64(SUB, L - r);
        if (r > 0) {
            sub_operands(r, n, dk, true, w);
            mm_nt(n, r, dk, w->Qr + r * dk, dk, w->Kr, dk, A + r * L, L, false, w->bt);
        }
        diag_scores(r, n, L, dk, w);
    }
}

/* ------------------------------------------------------------- forward */

/* The tensors of one run, forward or backward: q, k, v: the tensors the
 * blocks are read from; o, dout: [B, T, H*dv]; s0, s_final, ds0: [rows*H,
 * dk, dv]; states: [rows, H, its chunks, dk, dv], the state entering each
 * chunk; the gradients as their tensors. Each pointer NULL when absent or
 * not wanted. */
typedef struct rec_run {
    const sl_recurrence_desc *s;
    const float *q, *k, *v, *g, *s0, *dout;
    float *o, *states, *s_final;
    float *dq, *dk, *dv, *dg, *ds0;
} rec_run;

/* One (row, head) rh of the forward. */
static void forward_head(const void *arg, int64_t rh, float *scratch)
{
    const rec_run *run = arg;
    const sl_recurrence_desc *s = run->s;
    const float *q = run->q, *k = run->k, *v = run->v, *s0 = run->s0;
    float *o = run->o, *states = run->states, *s_final = run->s_final;
    const int64_t H = s->H, dk = s->dk, dv = s->dv, h = rh % H;
    const int64_t ldo = H * dv, ssz = dk * dv;
    int64_t start, len;
    float *st;
    row_span(s, rh / H, h, states, &start, &len, &st);
    sl_carver cv = {scratch, 0};
    head_buf w = carve(s, &cv);
    const bool decay = s->decay != SL_REC_DECAY_NONE;
    if (s0)
        memcpy(w.S, s0 + rh * ssz, (size_t)ssz * sizeof(float));
    else
        memset(w.S, 0, (size_t)ssz * sizeof(float));
    for (int64_t c = 0; c * s->C < len; c++) {
        const int64_t t0 = start + c * s->C, L = min64(s->C, len - c * s->C);
        const int64_t ro = t0 * ldo + h * dv;
        if (st) memcpy(st + c * ssz, w.S, (size_t)ssz * sizeof(float));
        pack_in(q + at_q(&s->io, t0, h, dk), s->io.ldq, L, dk, s->io.map, s->io.q_scale, w.Q);
        pack_in(k + at_k(&s->io, t0, h, dk), s->io.ldk, L, dk, s->io.map, s->io.k_scale, w.K);
        pack(v + at_v(&s->io, t0, h, dv), s->io.ldv, L, dv, w.V);
        /* Without a decay every factor is 1: Q and K serve as their decayed
         * forms. */
        const float *Qd = w.Q, *Kd = w.K;
        if (decay) {
            cum_decay(s, run->g, h, t0, L, w.Bc);
            decayed(w.Q, w.Bc, L, dk, false, w.Qd, NULL);
            Qd = w.Qd;
        }
        mm_nn(L, dv, dk, Qd, dk, 1, w.S, dv, w.O, dv, false);
        intra_scores(s->decay, L, dk, &w);
        mm_part(SG_A_LOWER, L, dv, L, w.A, L, 1, w.V, dv, w.O, dv, true);
        for (int64_t i = 0; i < L; i++)
            memcpy(o + ro + i * ldo, w.O + i * dv, (size_t)dv * sizeof(float));
        if (decay) {
            decayed(w.K, w.Bc, L, dk, true, w.Kd, NULL);
            Kd = w.Kd;
            const float *bl = w.Bc + (L - 1) * dk;
            for (int64_t d = 0; d < dk; d++) {
                float e = sl_expf(bl[d]);
#pragma omp simd
                for (int64_t j = 0; j < dv; j++) w.S[d * dv + j] *= e;
            }
        }
        mm_nn(dk, dv, L, Kd, 1, dk, w.V, dv, w.S, dv, true);
    }
    if (s_final) memcpy(s_final + rh * ssz, w.S, (size_t)ssz * sizeof(float));
}

/* ------------------------------------------------------------ backward */

/* The intra-chunk part: given dA = dO V^T (in P, j <= i), adds to dQ, dK
 * and, when db (a decay gradient is wanted), to dB (per key dim) or dbs
 * (scalar decay, one per row). The key-dim decay always forms dB. */
static void intra_backward(int mode, bool db, int64_t L, int64_t dk, const head_buf *w)
{
    if (mode != SL_REC_DECAY_KEY) {
        /* w->bs holds B_i from intra_scores. Without a decay there is no
         * decay gradient and no factor: dA . M = dA. */
        for (int64_t i = 0; i < L; i++) {
            float *p = w->P + i * L;
            const float *a = w->A + i * L;
            if (mode != SL_REC_DECAY_NONE && db) {
                const float bi = w->bs[i];
                /* dA_ij A_ij is d/d(B_i - B_j) of the score. */
                float di = 0.0f;
#pragma omp simd reduction(+ : di)
                for (int64_t j = 0; j <= i; j++) {
                    const float u = p[j] * a[j];
                    di += u;
                    w->dbs[j] -= u;
                    p[j] *= sl_expf(bi - w->bs[j]);
                }
                w->dbs[i] += di;
            } else if (mode != SL_REC_DECAY_NONE) {
                const float bi = w->bs[i];
#pragma omp simd
                for (int64_t j = 0; j <= i; j++) p[j] *= sl_expf(bi - w->bs[j]);
            }
            for (int64_t j = i + 1; j < L; j++) p[j] = 0.0f;
        }
        mm_part(SG_A_LOWER, L, dk, L, w->P, L, 1, w->K, dk, w->dQ, dk, true);
        mm_part(SG_A_UPPER, L, dk, L, w->P, 1, L, w->Q, dk, w->dK, dk, true);
        return;
    }
    for (int64_t r = 0; r < L; r += SUB) {
        const int64_t n = min64(SUB, L - r);
        if (r > 0) {
            /* Left of the diagonal block: A = Qr Kr^T (sub_operands), so
             * dQr = dA Kr and dKr = dA^T Qr, and through the factors
             * dQ += dQr . EQ, dB_i += dQr . Qr, and dK += dKr . EK,
             * dB_j -= dKr . Kr. B_r's own terms cancel: A depends on
             * differences of B only. Qr and EQ are intra_scores'. */
            sub_operands(r, n, dk, false, w);
            const float *dA = w->P + r * L;
            mm_nn(n, dk, r, dA, L, 1, w->Kr, dk, w->dQr, dk, false);
            mm_nn(r, dk, n, dA, 1, L, w->Qr + r * dk, dk, w->dKr, dk, false);
            for (int64_t i = r; i < r + n; i++) {
                const float *g = w->dQr + (i - r) * dk, *qr = w->Qr + i * dk, *e = w->EQ + i * dk;
                float *dq = w->dQ + i * dk, *db = w->dB + i * dk;
#pragma omp simd
                for (int64_t d = 0; d < dk; d++) {
                    dq[d] += g[d] * e[d];
                    db[d] += g[d] * qr[d];
                }
            }
            for (int64_t j = 0; j < r; j++) {
                const float *g = w->dKr + j * dk, *kr = w->Kr + j * dk, *e = w->EK + j * dk;
                float *dkj = w->dK + j * dk, *db = w->dB + j * dk;
#pragma omp simd
                for (int64_t d = 0; d < dk; d++) {
                    dkj[d] += g[d] * e[d];
                    db[d] -= g[d] * kr[d];
                }
            }
        }
        diag_backward(r, n, L, dk, w);
    }
}

/* dg of tokens t0 .. t0+L-1 (over all B*T) from dB (and dbs): g_s enters
 * every B_i with i >= s, so dg_s is the sum of dB_i from the chunk's end
 * back to s. */
static void decay_grad(const sl_recurrence_desc *s, int64_t h, int64_t t, int64_t L,
                       const head_buf *w, float *dg)
{
    const int64_t dk = s->dk, H = s->H;
    if (s->decay == SL_REC_DECAY_KEY) {
        /* dB becomes its suffix sums in place (it is not read again this
         * chunk), row by row so the loops run over contiguous d; dg's rows
         * are then walked forwards, which measured faster than backwards. */
        float *dB = w->dB;
        for (int64_t i = L - 2; i >= 0; i--) {
            float *row = dB + i * dk;
            const float *next = row + dk;
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) row[d] += next[d];
        }
        for (int64_t i = 0; i < L; i++) {
            const float *row = dB + i * dk;
            float *out = dg + ((t + i) * H + h) * dk;
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) out[d] += row[d];
        }
    } else {
        float acc = 0.0f;
        for (int64_t i = L - 1; i >= 0; i--) {
            acc += w->dbs[i];
            for (int64_t d = 0; d < dk; d++) acc += w->dB[i * dk + d];
            dg[(t + i) * H + h] += acc;
        }
    }
}

/* One (row, head) rh of the backward. */
static void backward_head(const void *arg, int64_t rh, float *scratch)
{
    const rec_run *run = arg;
    const sl_recurrence_desc *s = run->s;
    const float *q = run->q, *k = run->k, *v = run->v, *dout = run->dout;
    float *states = run->states, *dq = run->dq, *dkk = run->dk, *dvv = run->dv, *dg = run->dg;
    float *ds0 = run->ds0;
    const int64_t H = s->H, dk = s->dk, dv = s->dv, h = rh % H;
    const int64_t ldo = H * dv, ssz = dk * dv;
    int64_t start, len;
    float *st;
    row_span(s, rh / H, h, states, &start, &len, &st);
    sl_carver cv = {scratch, 0};
    head_buf w = carve(s, &cv);
    float *dO = w.O; /* the forward's output buffer is free here */
    /* The decay's gradient is formed only when wanted (a per-head decay is
     * a constant); the key-dim decay's intra-chunk loop forms it anyway. */
    const bool decay = s->decay != SL_REC_DECAY_NONE;
    const bool db = s->decay == SL_REC_DECAY_KEY || (decay && dg);
    if (s->ds_final)
        memcpy(w.dS, s->ds_final + rh * ssz, (size_t)ssz * sizeof(float));
    else
        memset(w.dS, 0, (size_t)ssz * sizeof(float));
    for (int64_t c = (len + s->C - 1) / s->C - 1; c >= 0; c--) {
        const int64_t t0 = start + c * s->C, L = min64(s->C, len - c * s->C);
        const int64_t rq = at_q(&s->io, t0, h, dk), rk = at_k(&s->io, t0, h, dk);
        const int64_t rv = at_v(&s->io, t0, h, dv);
        const float *Sp = st + c * ssz;
        pack_in(q + rq, s->io.ldq, L, dk, s->io.map, s->io.q_scale, w.Q);
        pack_in(k + rk, s->io.ldk, L, dk, s->io.map, s->io.k_scale, w.K);
        pack(v + rv, s->io.ldv, L, dv, w.V);
        pack(dout + t0 * ldo + h * dv, ldo, L, dv, dO);
        /* Without a decay Q and K are their decayed forms and every factor
         * is 1. */
        const float *Qd = w.Q, *Kd = w.K;
        if (decay) {
            cum_decay(s, run->g, h, t0, L, w.Bc);
            decayed(w.Q, w.Bc, L, dk, false, w.Qd, w.E);
            decayed(w.K, w.Bc, L, dk, true, w.Kd, w.F);
            Qd = w.Qd;
            Kd = w.Kd;
        }
        intra_scores(s->decay, L, dk, &w);
        if (db) {
            memset(w.dB, 0, (size_t)(L * dk) * sizeof(float));
            memset(w.dbs, 0, (size_t)L * sizeof(float));
        }
        memset(w.dK, 0, (size_t)(L * dk) * sizeof(float));

        /* Reading the entering state: O += (Q . e^B) S. */
        mm_nt(L, dk, dv, dO, dv, Sp, dv, w.dQ, dk, false, w.bt);
        if (db)
            for (int64_t i = 0; i < L * dk; i++) w.dB[i] += w.dQ[i] * w.Qd[i];
        if (decay)
            for (int64_t i = 0; i < L * dk; i++) w.dQ[i] *= w.E[i];
        /* Inside the chunk: O += A V. */
        mm_nt_part(SG_C_LOWER, L, L, dv, dO, dv, w.V, dv, w.P, L, false, w.bt);
        mm_part(SG_A_UPPER, L, dv, L, w.A, 1, L, dO, dv, w.dV, dv, false);
        intra_backward(s->decay, db, L, dk, &w);
        /* Writing the leaving state: S' = diag(e^b) S + (K . e^(b-B))^T V. */
        if (!decay) {
            mm_nt(L, dk, dv, w.V, dv, w.dS, dv, w.dK, dk, true, w.bt);
        } else {
            mm_nt(L, dk, dv, w.V, dv, w.dS, dv, w.tmp, dk, false, w.bt);
            for (int64_t i = 0; i < L * dk; i++) w.dK[i] += w.tmp[i] * w.F[i];
        }
        mm_nn(L, dv, dk, Kd, dk, 1, w.dS, dv, w.dV, dv, true);
        if (db) {
            float *dbl = w.dB + (L - 1) * dk;
            for (int64_t j = 0; j < L; j++)
                for (int64_t d = 0; d < dk; d++) {
                    float u = w.tmp[j * dk + d] * w.Kd[j * dk + d];
                    w.dB[j * dk + d] -= u;
                    dbl[d] += u;
                }
            const float *el = w.E + (L - 1) * dk;
            for (int64_t d = 0; d < dk; d++) {
                float sd = 0.0f;
                for (int64_t j = 0; j < dv; j++) sd += Sp[d * dv + j] * w.dS[d * dv + j];
                dbl[d] += el[d] * sd;
            }
        }
        if (decay) {
            const float *el = w.E + (L - 1) * dk;
            for (int64_t d = 0; d < dk; d++)
#pragma omp simd
                for (int64_t j = 0; j < dv; j++) w.dS[d * dv + j] *= el[d];
        }
        mm_nn(dk, dv, L, Qd, 1, dk, dO, dv, w.dS, dv, true);

        if (dq) unpack_in(w.dQ, w.Q, L, dk, s->io.map, s->io.q_scale, dq + rq, s->io.ldq);
        if (dkk) unpack_in(w.dK, w.K, L, dk, s->io.map, s->io.k_scale, dkk + rk, s->io.ldk);
        if (dvv) unpack_add(w.dV, L, dv, dvv + rv, s->io.ldv);
        if (dg) decay_grad(s, h, t0, L, &w, dg);
    }
    if (ds0)
        for (int64_t i = 0; i < ssz; i++) ds0[rh * ssz + i] += w.dS[i];
}

int64_t sl_recurrence_scratch_floats(const sl_recurrence_desc *d)
{
    return buf_floats(d) * rec_team(d);
}

int64_t sl_recurrence_states_floats(const sl_recurrence_desc *d)
{
    return sl_chunk_states_floats(&d->rows, d->H, d->dk * d->dv);
}

/* Every (row, head) of a run on the threads sl_chunk_team gives. */
static void run_all(const rec_run *run, sl_chunk_fn fn, float *scratch)
{
    const sl_recurrence_desc *d = run->s;
    sl_chunk_for(rec_team(d), d->rows.n * d->H, fn, run, scratch, buf_floats(d));
}

void sl_recurrence_fwd(const sl_recurrence_desc *d, const float *q, const float *k,
                       const float *v, const float *g, const float *s0, float *o, float *states,
                       float *s_final, float *scratch)
{
    const rec_run run = {d, q, k, v, g, s0, NULL, o, states, s_final, NULL, NULL, NULL, NULL, NULL};
    run_all(&run, forward_head, scratch);
}

void sl_recurrence_bwd(const sl_recurrence_desc *d, const float *q, const float *k,
                       const float *v, const float *g, const float *states, const float *dout,
                       float *dq, float *dk, float *dv, float *dg, float *ds0, float *scratch)
{
    const rec_run run = {d, q, k, v, g, NULL, dout, NULL, (float *)states, NULL, dq, dk, dv, dg,
                         ds0};
    run_all(&run, backward_head, scratch);
}

/* Node layout: in = {the tensors q, k and v are read from (one tensor
 * three times for a packed projection), g, s0 (each or NULL)}, desc =
 * sl_recurrence_desc, saved = the chunk-entry states (see rec_run). */
static void recurrence_backward(sl_ctx *ctx, const sl_node *nd)
{
    const sl_recurrence_desc *s = nd->desc;
    sl_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2], *g = nd->in[3], *s0 = nd->in[4];
    float *dq = q->requires_grad ? sl_grad(ctx, q) : NULL;
    float *dk = k->requires_grad ? sl_grad(ctx, k) : NULL;
    float *dv = v->requires_grad ? sl_grad(ctx, v) : NULL;
    float *dg = g && g->requires_grad ? sl_grad(ctx, g) : NULL;
    float *ds0 = s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL;
    sl_recurrence_bwd(s, q->data, k->data, v->data, g ? g->data : NULL, nd->saved,
                      nd->out->grad, dq, dk, dv, dg, ds0,
                      sl_arena_floats(ctx, sl_recurrence_scratch_floats(s)));
}

/* Columns [off, off + w) and [off2, off2 + w2) of one tensor: the same or
 * apart. */
static bool same_or_apart(int64_t off, int64_t w, int64_t off2, int64_t w2)
{
    return (off == off2 && w == w2) || off + w <= off2 || off2 + w2 <= off;
}

sl_rec_layout sl_rec_in_layout(const sl_rec_in *in, int64_t H, const char *op)
{
    const sl_tensor *q = in->q, *k = in->k, *v = in->v;
    const int64_t wk = H * in->dk, wv = H * in->dv;
    sl_require(q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && H > 0 && in->dk > 0 &&
                   in->dv > 0 && k->shape[0] == q->shape[0] && k->shape[1] == q->shape[1] &&
                   v->shape[0] == q->shape[0] && v->shape[1] == q->shape[1],
               op, "q, k, v [B, T, ...] alike, H, dk, dv > 0");
    sl_require(in->q_off >= 0 && in->q_off + wk <= q->shape[2] && in->k_off >= 0 &&
                   in->k_off + wk <= k->shape[2] && in->v_off >= 0 &&
                   in->v_off + wv <= v->shape[2],
               op, "q, k blocks of H*dk and a v block of H*dv columns in range");
    sl_require((q != k || same_or_apart(in->q_off, wk, in->k_off, wk)) &&
                   (q != v || same_or_apart(in->q_off, wk, in->v_off, wv)) &&
                   (k != v || same_or_apart(in->k_off, wk, in->v_off, wv)),
               op, "blocks of one tensor that coincide or do not overlap");
    return (sl_rec_layout){.ldq = q->shape[2],
                           .ldk = k->shape[2],
                           .ldv = v->shape[2],
                           .qoff = in->q_off,
                           .koff = in->k_off,
                           .voff = in->v_off,
                           .map = in->map,
                           .q_scale = in->q_scale != 0.0f ? in->q_scale : 1.0f,
                           .k_scale = in->k_scale != 0.0f ? in->k_scale : 1.0f};
}

/* Blocks of in's tensors -> o: [B, T, H*dv]; see sl_recurrence_in. */
sl_tensor *sl_recurrence_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *g,
                            const float *log_gamma, sl_tensor *s0, int64_t H, int64_t C,
                            float *s_final, const sl_seqs *seqs)
{
    sl_tensor *q = in->q, *k = in->k, *v = in->v;
    const int64_t dk = in->dk, dv = in->dv;
    const sl_rec_layout io = sl_rec_in_layout(in, H, "sl_recurrence");
    sl_require(C > 0 && (in->map == SL_REC_PLAIN || in->map == SL_REC_ELU1 ||
                         in->map == SL_REC_RELU),
               "sl_recurrence", "C > 0, map SL_REC_PLAIN, SL_REC_ELU1 or SL_REC_RELU");
    sl_recurrence_desc s = {.B = q->shape[0],
                            .T = q->shape[1],
                            .H = H,
                            .dk = dk,
                            .dv = dv,
                            .C = C,
                            .io = io,
                            .log_gamma = log_gamma,
                            .ds_final = sl_state_final_grad(ctx, s_final)};
    sl_require(sl_seqs_check(seqs, q, "sl_recurrence") == SL_OK, "sl_recurrence", sl_errmsg());
    s.rows = sl_chunk_rows_keep(ctx, seqs, s.B, s.T, C);
    s.decay = log_gamma ? SL_REC_DECAY_HEAD : SL_REC_DECAY_NONE;
    if (g) {
        sl_require(!log_gamma && g->ndim == 3 && g->shape[0] == s.B && g->shape[1] == s.T &&
                       (g->shape[2] == H || g->shape[2] == H * dk),
                   "sl_recurrence", "g [B, T, H] or [B, T, H*dk], and no log_gamma with it");
        s.decay = g->shape[2] == H * dk && dk != 1 ? SL_REC_DECAY_KEY : SL_REC_DECAY_TOKEN;
    }
    sl_require(!s0 || (s0->n == s.rows.n * H * dk * dv), "sl_recurrence", "s0 [rows, H, dk, dv]");
    sl_tensor *o = SL_NEW(ctx, s.B, s.T, H * dv);
    sl_node *nd = SL_RECORD(ctx, recurrence_backward, o, q, k, v, g, s0);
    float *states = NULL;
    if (nd) {
        states = nd->saved = sl_arena_floats(ctx, sl_recurrence_states_floats(&s));
        SL_KEEP_DESC(ctx, nd, s);
    }
    sl_recurrence_fwd(&s, q->data, k->data, v->data, g ? g->data : NULL, s0 ? s0->data : NULL,
                      o->data, states, s_final,
                      sl_arena_floats(ctx, sl_recurrence_scratch_floats(&s)));
    return o;
}

/* q, k: [B, T, H*dk], v: [B, T, H*dv], the rest as sl_recurrence_in. */
sl_tensor *sl_recurrence(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *g,
                         const float *log_gamma, sl_tensor *s0, int64_t H, int64_t C,
                         float *s_final, const sl_seqs *seqs)
{
    sl_require(q->ndim == 3 && sl_same_shape(q, k) && v->ndim == 3 && H > 0 &&
                   q->shape[2] % H == 0 && v->shape[2] % H == 0,
               "sl_recurrence", "q, k [B, T, H*dk], v [B, T, H*dv], H > 0");
    const sl_rec_in in = {.q = q, .k = k, .v = v, .dk = q->shape[2] / H, .dv = v->shape[2] / H};
    return sl_recurrence_in(ctx, &in, g, log_gamma, s0, H, C, s_final, seqs);
}

/* ------------------------------------------------------ reference, step */

/* The log decay of key dim d of head h at token row t (t counts over B*T). */
static double log_decay(const float *g, int64_t gw, const float *log_gamma, int64_t t, int64_t H,
                        int64_t h, int64_t d)
{
    if (g) return g[(t * H + h) * gw + (gw == 1 ? 0 : d)];
    return log_gamma ? log_gamma[h] : 0.0;
}

/* Layouts as sl_recurrence; g: [B, T, H*gw] or NULL. */
void sl_recurrence_ref(const float *q, const float *k, const float *v, const float *g, int64_t gw,
                       const float *log_gamma, const float *s0, int64_t B, int64_t T, int64_t H,
                       int64_t dk, int64_t dv, float *o, float *s_final, const sl_seqs *seqs)
{
    double *S = malloc((size_t)(dk * dv) * sizeof(double));
    sl_require(S != NULL, "sl_recurrence_ref", "memory for one state");
    for (int64_t b = 0; b < sl_seq_count(seqs, B); b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t bh = b * H + h, t0 = sl_seq_start(seqs, b, T);
            for (int64_t i = 0; i < dk * dv; i++) S[i] = s0 ? s0[bh * dk * dv + i] : 0.0;
            for (int64_t t = 0; t < sl_seq_len(seqs, b, T); t++) {
                const int64_t row = t0 + t;
                const float *qt = q + row * H * dk + h * dk, *kt = k + row * H * dk + h * dk;
                const float *vt = v + row * H * dv + h * dv;
                for (int64_t d = 0; d < dk; d++) {
                    double a = exp(log_decay(g, gw, log_gamma, row, H, h, d));
                    for (int64_t j = 0; j < dv; j++)
                        S[d * dv + j] = a * S[d * dv + j] + (double)kt[d] * vt[j];
                }
                for (int64_t j = 0; j < dv; j++) {
                    double acc = 0.0;
                    for (int64_t d = 0; d < dk; d++) acc += S[d * dv + j] * qt[d];
                    o[row * H * dv + h * dv + j] = (float)acc;
                }
            }
            if (s_final)
                for (int64_t i = 0; i < dk * dv; i++) s_final[bh * dk * dv + i] = (float)S[i];
        }
    free(S);
}

/* state: [H, dk, dv] in place; q, k: [H*dk], v: [H*dv], g: [H*gw] or
 * NULL, log_gamma: [H] or NULL -> o: [H*dv]. */
void sl_recurrence_step(float *state, const float *q, const float *k, const float *v,
                        const float *g, int64_t gw, const float *log_gamma, int64_t H, int64_t dk,
                        int64_t dv, float *o)
{
    for (int64_t h = 0; h < H; h++) {
        float *Sh = state + h * dk * dv, *oh = o + h * dv;
        const float *qh = q + h * dk, *kh = k + h * dk, *vh = v + h * dv;
        memset(oh, 0, (size_t)dv * sizeof(float));
        for (int64_t d = 0; d < dk; d++) {
            float a = sl_expf((float)log_decay(g, gw, log_gamma, 0, H, h, d));
            float *row = Sh + d * dv;
#pragma omp simd
            for (int64_t j = 0; j < dv; j++) {
                row[j] = a * row[j] + kh[d] * vh[j];
                oh[j] += row[j] * qh[d];
            }
        }
    }
}
