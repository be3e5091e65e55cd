/* The (gated) delta rule (equations in delta_rule.h).
 *
 * Forward: the chunkwise-parallel WY/UT form. For a chunk of c tokens with
 * state S entering it and in-chunk cumulative log decay gam_i = sum_{j<=i} g_j
 * (Gamma_ij = exp(gam_i - gam_j), E = e^gam; only differences are
 * exponentiated and every exponent used is <= 0, so nothing overflows at
 * any T):
 *
 *   A  = StrictLower(diag(beta) (Gamma . K K^T)),  T = (I + A)^-1  (forward substitution)
 *   W  = T diag(beta E) K,   U = T diag(beta) V,   U' = U - W S
 *   M  = Q K^T . Gamma . causal
 *   O  = diag(E) Q S + M U'
 *   S' = e^{gam_c} S + Kd^T U',   Kd = diag(e^{gam_c - gam}) K
 *
 * U' row i is the value actually written at token i, beta_i (v_i - a_i
 * S_{i-1}^T k_i), so the chunked form is the recurrence regrouped.
 *
 * Backward: the same chunks in reverse. The forward saves only the state
 * entering each chunk ([ceil(len/C), dk, dk] per (sequence, h)); the
 * backward recomputes a chunk's A, T, W, U', M from it and applies the
 * adjoint of each line above, carrying dS (the gradient of the state
 * leaving the chunk) backwards:
 *
 *   dU' = Kd dS + M^T dO            dKd = U' dS^T
 *   dM  = dO U'^T . causal          dQ += diag(E) dO S^T + (dM . Gamma) K
 *   dK += (dM . Gamma)^T Q + diag(e^{gam_c - gam}) dKd
 *   dW  = -dU' S^T                  dT  = dU' (diag(beta) V)^T + dW (diag(beta E) K)^T
 *   dA  = -T^T dT T^T (strict lower part)
 *   dK += diag(beta E) T^T dW + (dKK + dKK^T) K,  dKK = dA . beta Gamma
 *   dV  = diag(beta) T^T dU'
 *   dS <- e^{gam_c} dS + Q^T diag(E) dO - W^T dU'
 *
 * and dbeta, dgam from the same products (each Gamma_ij contributes
 * x_ij = dX_ij X_ij to dgam_i and -x_ij to dgam_j); dg is the reverse
 * cumulative sum of dgam over the chunk.
 *
 * Sequences: the B rows of T tokens, or the n sequences of a packed batch
 * (sl_seqs). Each is chunked from its own first token, so chunks never
 * straddle a bound and a sequence's result is the one it gets alone.
 *
 * q, k and v are read in place as column blocks (sl_rec_in), the chunk
 * products run in small_gemm.h's register tiles (skipping the known-zero
 * half of the triangular ones), and the work splits over (sequence, h)
 * items through the chunk runtime (chunk_runtime.h): each is one thread's,
 * chunks in a fixed order, writing only its own rows, so results do not
 * depend on the thread count or on which thread takes which pair. */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

#include <math.h>
#include <string.h>

#include "ops/block_io.h"
#include "ops/chunk_runtime.h"
#include "ops/delta_rule.h"
#include "ops/fastmath.h"
#include "ops/small_gemm.h"

/* One chunk's recomputable quantities (shapes for c <= C rows), and the
 * backward's own buffers. */
typedef struct dr_chunk {
    float *Q, *K, *V;  /* [c, dk] packed rows */
    float *Kb, *Vb;    /* [c, dk] diag(beta E) K, diag(beta) V */
    float *W, *U;      /* [c, dk]; U holds U' after chunk_prepare */
    float *tmp, *O;    /* [c, dk] scratch, the output rows */
    float *KK, *T, *M; /* [c, c] */
    float *G;          /* [c, c] Gamma on and below the diagonal, 0 above */
    float *gam, *bt;   /* [c] cumulative log decay, beta */
    float *E, *F;      /* [c] e^gam, e^{gam_c - gam} */
    float *S;          /* [dk, dk] the state (forward), or its gradient dS (backward) */
    float *St;         /* [dk, dk] scratch */
    float *trb;        /* mm_nt's transposed operand: [max(C, dk), max(C, dk)] */
    /* backward only */
    float *dU, *Kd, *dX, *dW, *dQ, *dK, *dV; /* [c, dk] */
    float *dM, *dT, *t2, *dA;                /* [c, c] */
    float *dgam, *dbt, *col;                 /* [c] */
} dr_chunk;

/* One thread's buffers from cv (counting only, when cv->base is NULL). */
static dr_chunk carve(const sl_delta_rule_desc *d, bool backward, sl_carver *cv)
{
    const int64_t C = d->C, dk = d->dk, Cd = C * dk, CC = C * C, w = C > dk ? C : dk;
    dr_chunk k = {0};
    float **cd[] = {&k.Q, &k.K, &k.V, &k.Kb, &k.Vb, &k.W, &k.U, &k.tmp, &k.O};
    for (size_t i = 0; i < sizeof cd / sizeof cd[0]; i++) *cd[i] = sl_carve(cv, Cd);
    float **cc[] = {&k.KK, &k.T, &k.M, &k.G};
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) *cc[i] = sl_carve(cv, CC);
    float **c1[] = {&k.gam, &k.bt, &k.E, &k.F};
    for (size_t i = 0; i < sizeof c1 / sizeof c1[0]; i++) *c1[i] = sl_carve(cv, C);
    k.S = sl_carve(cv, dk * dk);
    k.St = sl_carve(cv, dk * dk);
    k.trb = sl_carve(cv, w * w);
    if (!backward) return k;
    float **bd[] = {&k.dU, &k.Kd, &k.dX, &k.dW, &k.dQ, &k.dK, &k.dV};
    for (size_t i = 0; i < sizeof bd / sizeof bd[0]; i++) *bd[i] = sl_carve(cv, Cd);
    float **bc[] = {&k.dM, &k.dT, &k.t2, &k.dA};
    for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++) *bc[i] = sl_carve(cv, CC);
    float **b1[] = {&k.dgam, &k.dbt, &k.col};
    for (size_t i = 0; i < sizeof b1 / sizeof b1[0]; i++) *b1[i] = sl_carve(cv, C);
    return k;
}

static int64_t per_thread(const sl_delta_rule_desc *d, bool backward)
{
    sl_carver cv = {NULL, 0};
    carve(d, backward, &cv);
    return cv.used;
}

/* Threads of a run: multiply-adds per token about C dk (the chunk's c x c
 * and c x dk products) plus 4 dk^2 (the state's reads and writes). */
static int team(const sl_delta_rule_desc *d)
{
    const int64_t work = d->B * d->T * d->H * (6 * d->C * d->dk + 4 * d->dk * d->dk);
    return sl_chunk_team(d->rows.n * d->H, work);
}

int64_t sl_delta_rule_scratch_floats(const sl_delta_rule_desc *d, bool backward)
{
    return per_thread(d, backward) * team(d);
}

int64_t sl_delta_rule_states_floats(const sl_delta_rule_desc *d)
{
    return sl_chunk_states_floats(&d->rows, d->H, d->dk * d->dk);
}

/* c x c lower-triangular products leave the tiles wholly above the
 * diagonal unwritten: X *= Gamma below and on it, 0 above. */
static void times_gamma(float *X, const float *G, int64_t c)
{
    for (int64_t i = 0; i < c; i++) {
        float *x = X + i * c;
        const float *g = G + i * c;
#pragma omp simd
        for (int64_t j = 0; j <= i; j++) x[j] *= g[j];
        for (int64_t j = i + 1; j < c; j++) x[j] = 0.0f;
    }
}

/* Everything of one chunk (tokens r0..r0+c, head h) up to U' and M, from the
 * state S: [dk, dk] entering it. c >= 1. */
static void chunk_prepare(const sl_delta_rule_desc *d, const float *q, const float *k,
                          const float *v, const float *beta, const float *g, int64_t h,
                          int64_t r0, int64_t c, const float *S, dr_chunk *ck)
{
    const int64_t dk = d->dk, H = d->H;
    const sl_rec_layout *io = &d->io;
    pack(q + at_q(io, r0, h, dk), io->ldq, c, dk, ck->Q);
    pack(k + at_k(io, r0, h, dk), io->ldk, c, dk, ck->K);
    pack(v + at_v(io, r0, h, dk), io->ldv, c, dk, ck->V);
    float acc = 0;
    for (int64_t i = 0; i < c; i++) {
        int64_t r = (r0 + i) * H + h;
        acc += g ? g[r] : 0.0f;
        ck->gam[i] = acc;
        ck->bt[i] = beta[r];
    }
    const float *gam = ck->gam, *bt = ck->bt;
    /* Every exponential once, in vector loops (sl_expf is only cheap there). */
    float glast = gam[c - 1];
#pragma omp simd
    for (int64_t i = 0; i < c; i++) {
        ck->E[i] = sl_expf(gam[i]);
        ck->F[i] = sl_expf(glast - gam[i]);
    }
    for (int64_t i = 0; i < c; i++) {
        float *Gi = ck->G + i * c;
#pragma omp simd
        for (int64_t j = 0; j < c; j++) {
            float e = sl_expf(gam[i] - gam[j]); /* above the diagonal: clamped, then dropped */
            Gi[j] = j <= i ? e : 0.0f;
        }
    }
    /* Only KK's strict lower part is read (A, and dA's products, which
     * weigh the rest by 0): the tiles above the diagonal are skipped and
     * cleared. */
    mm_nt_part(SG_C_LOWER, c, c, dk, ck->K, dk, ck->K, dk, ck->KK, c, false, ck->trb);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = i + 1; j < c; j++) ck->KK[i * c + j] = 0.0f;
    /* Row i of T from the rows above it: T_i = e_i - sum_{j<i} A_ij T_j, and
     * row j is zero right of column j. */
    for (int64_t i = 0; i < c; i++) {
        float *Ti = ck->T + i * c;
        memset(Ti, 0, (size_t)c * sizeof(float));
        Ti[i] = 1.0f;
        for (int64_t j = 0; j < i; j++) {
            float a = bt[i] * ck->G[i * c + j] * ck->KK[i * c + j];
            const float *Tj = ck->T + j * c;
#pragma omp simd
            for (int64_t m = 0; m <= j; m++) Ti[m] -= a * Tj[m];
        }
    }
    for (int64_t i = 0; i < c; i++) {
        float sk = bt[i] * ck->E[i];
#pragma omp simd
        for (int64_t j = 0; j < dk; j++) {
            ck->Kb[i * dk + j] = sk * ck->K[i * dk + j];
            ck->Vb[i * dk + j] = bt[i] * ck->V[i * dk + j];
        }
    }
    /* T is lower triangular. */
    mm_part(SG_A_LOWER, c, dk, c, ck->T, c, 1, ck->Kb, dk, ck->W, dk, false);
    mm_part(SG_A_LOWER, c, dk, c, ck->T, c, 1, ck->Vb, dk, ck->U, dk, false);
    mm_nn(c, dk, dk, ck->W, dk, 1, S, dk, ck->tmp, dk, false);
    for (int64_t i = 0; i < c * dk; i++) ck->U[i] -= ck->tmp[i];
    mm_nt_part(SG_C_LOWER, c, c, dk, ck->Q, dk, ck->K, dk, ck->M, c, false, ck->trb);
    times_gamma(ck->M, ck->G, c);
}

/* One chunk forward: o: [B*T, H*dk] tokens r0..r0+c of head h written,
 * ck->S: [dk, dk] advanced in place. */
static void chunk_forward(const sl_delta_rule_desc *d, const float *q, const float *k,
                          const float *v, const float *beta, const float *g, int64_t h,
                          int64_t r0, int64_t c, float *o, dr_chunk *ck)
{
    const int64_t dk = d->dk, D = d->H * dk;
    float *S = ck->S, *O = ck->O;
    chunk_prepare(d, q, k, v, beta, g, h, r0, c, S, ck);
    mm_nn(c, dk, dk, ck->Q, dk, 1, S, dk, O, dk, false);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) O[i * dk + j] *= ck->E[i];
    mm_part(SG_A_LOWER, c, dk, c, ck->M, c, 1, ck->U, dk, O, dk, true);
    for (int64_t i = 0; i < c; i++)
        memcpy(o + (r0 + i) * D + h * dk, O + i * dk, (size_t)dk * sizeof(float));
    for (int64_t i = 0; i < dk * dk; i++) S[i] *= ck->E[c - 1];
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) ck->tmp[i * dk + j] = ck->F[i] * ck->K[i * dk + j];
    mm_nn(dk, dk, c, ck->tmp, 1, dk, ck->U, dk, S, dk, true);
}

/* The tensors of one run, forward or backward (sl_delta_rule_fwd and
 * sl_delta_rule_bwd), each NULL when absent or not wanted. */
typedef struct dr_run {
    const sl_delta_rule_desc *d;
    const float *q, *k, *v, *beta, *g, *s0, *dout;
    float *o, *states, *s_final;
    float *dq, *dk, *dv, *dbeta, *dg, *ds0;
} dr_run;

/* X: [c, c] lower triangular with a factor Gamma_ij in each entry:
 * x_ij = dX_ij X_ij goes to dgam_i and, negated, to dgam_j. Row sums and
 * column sums go to separate buffers so both loops vectorise; col: [c]
 * scratch. */
static void gamma_grad(const float *dX, const float *X, int64_t c, float *dgam, float *col)
{
    memset(col, 0, (size_t)c * sizeof(float));
    for (int64_t i = 0; i < c; i++) {
        float rs = 0;
#pragma omp simd reduction(+ : rs)
        for (int64_t j = 0; j <= i; j++) {
            float x = dX[i * c + j] * X[i * c + j];
            rs += x;
            col[j] += x;
        }
        dgam[i] += rs;
    }
    for (int64_t i = 0; i < c; i++) dgam[i] -= col[i];
}

/* The adjoint of one chunk (tokens r0..r0+c, head h; equations at the top).
 * S: [dk, dk] entering the chunk; ck->S holds dS: the gradient of the state
 * leaving it, replaced by the gradient of the state entering it. */
static void chunk_backward(const dr_run *r, int64_t h, int64_t r0, int64_t c, const float *S,
                           dr_chunk *ck)
{
    const sl_delta_rule_desc *d = r->d;
    const int64_t dk = d->dk, H = d->H, D = H * dk;
    chunk_prepare(d, r->q, r->k, r->v, r->beta, r->g, h, r0, c, S, ck);
    float *dS = ck->S, *dO = ck->O, *dU = ck->dU, *Kd = ck->Kd, *dX = ck->dX, *dW = ck->dW;
    float *dQ = ck->dQ, *dK = ck->dK, *dV = ck->dV, *dM = ck->dM, *dT = ck->dT, *t2 = ck->t2;
    float *dA = ck->dA, *dgam = ck->dgam, *dbt = ck->dbt, *trb = ck->trb;
    const float *bt = ck->bt;
    pack(r->dout + r0 * D + h * dk, D, c, dk, dO);
    memset(dQ, 0, (size_t)(c * dk) * sizeof(float));
    memset(dK, 0, (size_t)(c * dk) * sizeof(float));
    memset(dV, 0, (size_t)(c * dk) * sizeof(float));
    memset(dgam, 0, (size_t)c * sizeof(float));
    memset(dbt, 0, (size_t)c * sizeof(float));
    const float *E = ck->E, *F = ck->F;
    float el = E[c - 1];
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) Kd[i * dk + j] = F[i] * ck->K[i * dk + j];
    /* Through S' = e^{gam_c} S + Kd^T U'. */
    float sdS = 0;
    for (int64_t i = 0; i < dk * dk; i++) sdS += S[i] * dS[i];
    dgam[c - 1] += el * sdS;
    mm_nn(c, dk, dk, Kd, dk, 1, dS, dk, dU, dk, false);
    mm_nt(c, dk, dk, ck->U, dk, dS, dk, dX, dk, false, trb); /* dKd */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (int64_t j = 0; j < dk; j++) {
            dK[i * dk + j] += F[i] * dX[i * dk + j];
            x += dX[i * dk + j] * Kd[i * dk + j];
        }
        dgam[c - 1] += x;
        dgam[i] -= x;
    }
    /* Through O = diag(E) Q S + M U'. */
    mm_nt(c, dk, dk, dO, dk, S, dk, dX, dk, false, trb); /* dO S^T */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (int64_t j = 0; j < dk; j++) {
            dQ[i * dk + j] += E[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck->Q[i * dk + j];
        }
        dgam[i] += E[i] * x;
    }
    mm_nt_part(SG_C_LOWER, c, c, dk, dO, dk, ck->U, dk, dM, c, false, trb);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = i + 1; j < c; j++) dM[i * c + j] = 0.0f;
    /* M^T is upper triangular. */
    mm_part(SG_A_UPPER, c, dk, c, ck->M, 1, c, dO, dk, dU, dk, true);
    gamma_grad(dM, ck->M, c, dgam, ck->col);
#pragma omp simd
    for (int64_t i = 0; i < c * c; i++) dM[i] *= ck->G[i];
    mm_part(SG_A_LOWER, c, dk, c, dM, c, 1, ck->K, dk, dQ, dk, true);
    mm_part(SG_A_UPPER, c, dk, c, dM, 1, c, ck->Q, dk, dK, dk, true);
    /* Through U' = U - W S, U = T Vb, W = T Kb. */
    mm_nt(c, dk, dk, dU, dk, S, dk, dW, dk, false, trb);
    for (int64_t i = 0; i < c * dk; i++) dW[i] = -dW[i];
    mm_nt(c, c, dk, dU, dk, ck->Vb, dk, dT, c, false, trb);
    mm_nt(c, c, dk, dW, dk, ck->Kb, dk, dT, c, true, trb);
    mm_part(SG_A_UPPER, c, dk, c, ck->T, 1, c, dU, dk, dX, dk, false); /* dVb = T^T dU */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
        for (int64_t j = 0; j < dk; j++) {
            dV[i * dk + j] += bt[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck->V[i * dk + j];
        }
        dbt[i] += x;
    }
    mm_part(SG_A_UPPER, c, dk, c, ck->T, 1, c, dW, dk, dX, dk, false); /* dKb = T^T dW */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (int64_t j = 0; j < dk; j++) {
            dK[i * dk + j] += bt[i] * E[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck->K[i * dk + j];
        }
        dbt[i] += E[i] * x;
        dgam[i] += bt[i] * E[i] * x;
    }
    /* Through T = (I + A)^-1: dA = -T^T dT T^T, A_ij = beta_i Gamma_ij KK_ij. */
    mm_nt(c, c, c, dT, c, ck->T, c, t2, c, false, trb);
    mm_part(SG_A_UPPER, c, c, c, ck->T, 1, c, t2, c, dA, c, false);
    for (int64_t i = 0; i < c; i++) {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) {
            float gm = j < i ? ck->G[i * c + j] : 0.0f, da = -dA[i * c + j];
            s += da * gm * ck->KK[i * c + j];
            dA[i * c + j] = da;
            t2[i * c + j] = da * bt[i] * gm;                  /* dKK */
            ck->M[i * c + j] = bt[i] * gm * ck->KK[i * c + j]; /* M is spent: A for gamma_grad */
        }
        dbt[i] += s;
    }
    gamma_grad(dA, ck->M, c, dgam, ck->col);
    /* dKK is strictly lower triangular. */
    mm_part(SG_A_LOWER, c, dk, c, t2, c, 1, ck->K, dk, dK, dk, true);
    mm_part(SG_A_UPPER, c, dk, c, t2, 1, c, ck->K, dk, dK, dk, true);
    /* dS entering = e^{gam_c} dS + Q^T diag(E) dO - W^T dU'. */
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) dO[i * dk + j] *= E[i];
    for (int64_t i = 0; i < dk * dk; i++) dS[i] *= el;
    mm_nn(dk, dk, c, ck->Q, 1, dk, dO, dk, dS, dk, true);
    mm_nn(dk, dk, c, ck->W, 1, dk, dU, dk, ck->St, dk, false);
    for (int64_t i = 0; i < dk * dk; i++) dS[i] -= ck->St[i];
    /* Scatter into the blocks' columns; g_m enters every gam_i with i >= m. */
    const sl_rec_layout *io = &d->io;
    if (r->dq) unpack_add(dQ, c, dk, r->dq + at_q(io, r0, h, dk), io->ldq);
    if (r->dk) unpack_add(dK, c, dk, r->dk + at_k(io, r0, h, dk), io->ldk);
    if (r->dv) unpack_add(dV, c, dk, r->dv + at_v(io, r0, h, dk), io->ldv);
    float suffix = 0;
    for (int64_t i = c - 1; i >= 0; i--) {
        int64_t t = r0 + i;
        suffix += dgam[i];
        if (r->dbeta) r->dbeta[t * H + h] += dbt[i];
        if (r->dg) r->dg[t * H + h] += suffix;
    }
}

/* One (sequence, h) item: of the backward when r->dout is set, else of
 * the forward. The backward starts from dS = the gradient w.r.t. the
 * sequence's own final state (d->ds_final, else zeros), so no gradient
 * crosses a sequence bound. */
static void run_item(const void *arg, int64_t ih, float *scratch)
{
    const dr_run *r = arg;
    const sl_delta_rule_desc *d = r->d;
    const int64_t H = d->H, dk = d->dk, i = ih / H, h = ih % H, ss = dk * dk;
    const int64_t start = sl_chunk_start(&d->rows, i), nch = sl_chunk_count(&d->rows, i);
    sl_carver cv = {scratch, 0};
    dr_chunk ck = carve(d, r->dout != NULL, &cv);
    if (r->dout) {
        if (d->ds_final)
            memcpy(ck.S, d->ds_final + ih * ss, (size_t)ss * sizeof(float));
        else
            memset(ck.S, 0, (size_t)ss * sizeof(float));
        for (int64_t ch = nch - 1; ch >= 0; ch--)
            chunk_backward(r, h, start + ch * d->C, sl_chunk_size(&d->rows, i, ch),
                           r->states + sl_chunk_state_at(&d->rows, H, i, h, ch, ss), &ck);
        if (r->ds0)
            for (int64_t j = 0; j < ss; j++) r->ds0[ih * ss + j] += ck.S[j];
        return;
    }
    if (r->s0)
        memcpy(ck.S, r->s0 + ih * ss, (size_t)ss * sizeof(float));
    else
        memset(ck.S, 0, (size_t)ss * sizeof(float));
    for (int64_t ch = 0; ch < nch; ch++) {
        if (r->states)
            memcpy(r->states + sl_chunk_state_at(&d->rows, H, i, h, ch, ss), ck.S,
                   (size_t)ss * sizeof(float));
        chunk_forward(d, r->q, r->k, r->v, r->beta, r->g, h, start + ch * d->C,
                      sl_chunk_size(&d->rows, i, ch), r->o, &ck);
    }
    if (r->s_final) memcpy(r->s_final + ih * ss, ck.S, (size_t)ss * sizeof(float));
}

void sl_delta_rule_fwd(const sl_delta_rule_desc *d, const float *q, const float *k,
                       const float *v, const float *beta, const float *g, const float *s0,
                       float *o, float *states, float *s_final, float *scratch)
{
    /* d, q, k, v, beta, g, s0, dout; o, states, s_final; no gradients. */
    const dr_run r = {d, q, k, v, beta, g, s0, NULL, o, states, s_final, NULL, NULL, NULL, NULL,
                      NULL, NULL};
    sl_chunk_for(team(d), d->rows.n * d->H, run_item, &r, scratch, per_thread(d, false));
}

void sl_delta_rule_bwd(const sl_delta_rule_desc *d, const float *q, const float *k,
                       const float *v, const float *beta, const float *g, const float *states,
                       const float *dout, float *dq, float *dk, float *dv, float *dbeta,
                       float *dg, float *ds0, float *scratch)
{
    /* d, q, k, v, beta, g, s0, dout; o, states, s_final; the gradients. */
    const dr_run r = {d, q, k, v, beta, g, NULL, dout, NULL, (float *)states,
                      NULL, dq, dk, dv, dbeta, dg, ds0};
    sl_chunk_for(team(d), d->rows.n * d->H, run_item, &r, scratch, per_thread(d, true));
}

/* ------------------------------------------------------------- the op */

static float *grad_or_null(sl_ctx *ctx, sl_tensor *t)
{
    return t && t->requires_grad ? sl_grad(ctx, t) : NULL;
}

/* Node layout: in = {the tensors q, k and v are read from, beta, g, s0}
 * (g and s0 may be NULL), desc = sl_delta_rule_desc, saved = the chunk-entry
 * states. */
static void delta_rule_backward(sl_ctx *ctx, const sl_node *nd)
{
    const sl_delta_rule_desc *d = nd->desc;
    sl_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2], *beta = nd->in[3];
    sl_tensor *g = nd->in[4], *s0 = nd->in[5];
    float *dq = grad_or_null(ctx, q), *dk = grad_or_null(ctx, k), *dv = grad_or_null(ctx, v);
    float *dbeta = grad_or_null(ctx, beta), *dg = grad_or_null(ctx, g);
    float *ds0 = grad_or_null(ctx, s0);
    float *scratch = sl_arena_floats(ctx, sl_delta_rule_scratch_floats(d, true));
    sl_delta_rule_bwd(d, q->data, k->data, v->data, beta->data, g ? g->data : NULL,
                      nd->saved, nd->out->grad, dq, dk, dv, dbeta, dg, ds0, scratch);
}

/* Blocks of in's tensors ([B, T, *]), beta, g: [B, T, H], s0: [N, H, dk,
 * dk] | NULL -> o: [B, T, H*dk]; s_final: [N, H, dk, dk] | NULL. N = B, or
 * seqs->n with B = 1. Saves the chunk-entry states when recorded. */
sl_tensor *sl_delta_rule_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *beta, sl_tensor *g,
                            sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                            const sl_seqs *seqs)
{
    const sl_rec_layout io = sl_rec_in_layout(in, H, "sl_delta_rule");
    sl_require(C > 0 && in->dv == in->dk && in->map == SL_REC_PLAIN && io.q_scale == 1.0f &&
                   io.k_scale == 1.0f,
               "sl_delta_rule", "chunk > 0, dv = dk, no map or scale");
    /* Checked before anything is allocated or recorded: bounds past T would
     * read and write outside every tensor. */
    sl_require(sl_seqs_check(seqs, in->q, "sl_delta_rule") == SL_OK, "sl_delta_rule",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over q [1, T, H*dk]");
    const int64_t B = in->q->shape[0], T = in->q->shape[1], dk = in->dk;
    const int64_t N = sl_seq_count(seqs, B), NH = N * H;
    sl_require(beta->n == B * T * H && (!g || g->n == beta->n) && (!s0 || s0->n == NH * dk * dk),
               "sl_delta_rule", "beta, g [B, T, H], s0 [N, H, dk, dk]");
    sl_tensor *o = SL_NEW(ctx, B, T, H * dk);
    sl_node *nd = SL_RECORD(ctx, delta_rule_backward, o, in->q, in->k, in->v, beta, g, s0);
    const sl_delta_rule_desc d = {B, T, H, dk, C, io, sl_chunk_rows_keep(ctx, seqs, B, T, C),
                                  sl_state_final_grad(ctx, s_final)};
    float *states = NULL;
    if (nd) {
        states = nd->saved = sl_arena_floats(ctx, sl_delta_rule_states_floats(&d));
        SL_KEEP_DESC(ctx, nd, d);
    }
    float *scratch = sl_arena_floats(ctx, sl_delta_rule_scratch_floats(&d, false));
    sl_delta_rule_fwd(&d, in->q->data, in->k->data, in->v->data, beta->data,
                      g ? g->data : NULL, s0 ? s0->data : NULL, o->data, states, s_final,
                      scratch);
    return o;
}

/* q, k, v: [B, T, H*dk], the rest as sl_delta_rule_in. */
sl_tensor *sl_delta_rule(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *beta,
                         sl_tensor *g, sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                         const sl_seqs *seqs)
{
    sl_require(q->ndim == 3 && sl_same_shape(q, k) && sl_same_shape(q, v) && H > 0 &&
                   q->shape[2] % H == 0 && C > 0,
               "sl_delta_rule", "q, k, v [B, T, H*dk], chunk > 0");
    const sl_rec_in in = {.q = q, .k = k, .v = v, .dk = q->shape[2] / H, .dv = q->shape[2] / H};
    return sl_delta_rule_in(ctx, &in, beta, g, s0, H, C, s_final, seqs);
}

/* Same layouts as sl_delta_rule (q: [B, T, H*dk], states [N, H, dk, dk]);
 * the state is kept in double. */
void sl_delta_rule_ref(const float *q, const float *k, const float *v, const float *beta,
                       const float *g, const float *s0, int64_t B, int64_t T, int64_t H, int64_t dk,
                       float *o, float *s_final, const sl_seqs *seqs)
{
    double *S = malloc((size_t)(dk * dk) * sizeof(double)),
           *kS = malloc((size_t)dk * sizeof(double));
    sl_require(S && kS, "sl_delta_rule_ref", "memory for one state");
    int64_t D = H * dk, N = sl_seq_count(seqs, B);
    /* b: the sequence (a batch row, or one packed sequence); its tokens are
     * start..start+len over all B*T, and its state row is b. */
    for (int64_t b = 0; b < N; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < dk * dk; i++) S[i] = s0 ? s0[(b * H + h) * dk * dk + i] : 0.0;
            int64_t start = sl_seq_start(seqs, b, T), len = sl_seq_len(seqs, b, T);
            for (int64_t t = 0; t < len; t++) {
                int64_t r = start + t, off = r * D + h * dk;
                double a = g ? exp((double)g[r * H + h]) : 1.0, bt = beta[r * H + h];
                for (int64_t j = 0; j < dk; j++) {
                    kS[j] = 0;
                    for (int64_t i = 0; i < dk; i++) kS[j] += k[off + i] * S[i * dk + j];
                }
                for (int64_t i = 0; i < dk; i++)
                    for (int64_t j = 0; j < dk; j++)
                        S[i * dk + j] = a * (S[i * dk + j] - bt * k[off + i] * kS[j]) +
                                        bt * k[off + i] * v[off + j];
                for (int64_t j = 0; j < dk; j++) {
                    double s = 0;
                    for (int64_t i = 0; i < dk; i++) s += S[i * dk + j] * q[off + i];
                    o[off + j] = (float)s;
                }
            }
            if (s_final)
                for (int64_t i = 0; i < dk * dk; i++)
                    s_final[(b * H + h) * dk * dk + i] = (float)S[i];
        }
    free(S);
    free(kS);
}

/* S: [dk, dk] <- a S + k u^T, u = beta (v - a S^T k); kS: [dk] scratch. */
static void token_update(float *S, const float *k, const float *v, float beta, float a, int64_t dk,
                         float *kS)
{
    memset(kS, 0, (size_t)dk * sizeof(float));
    for (int64_t i = 0; i < dk; i++) {
#pragma omp simd
        for (int64_t j = 0; j < dk; j++) kS[j] += k[i] * S[i * dk + j];
    }
    for (int64_t j = 0; j < dk; j++) kS[j] = beta * (v[j] - a * kS[j]);
    for (int64_t i = 0; i < dk; i++) {
#pragma omp simd
        for (int64_t j = 0; j < dk; j++) S[i * dk + j] = a * S[i * dk + j] + k[i] * kS[j];
    }
}

/* state: [H, dk, dk] in place; q, k, v: [H*dk], beta, g: [H] (g may be
 * NULL) -> o: [H*dk]; kS: [dk] scratch. */
void sl_delta_rule_step(float *state, const float *q, const float *k, const float *v,
                        const float *beta, const float *g, int64_t H, int64_t dk, float *o,
                        float *kS)
{
    for (int64_t h = 0; h < H; h++) {
        float *Sh = state + h * dk * dk;
        token_update(Sh, k + h * dk, v + h * dk, beta[h], g ? sl_expf(g[h]) : 1.0f, dk, kS);
        const float *qh = q + h * dk;
        float *oh = o + h * dk;
        memset(oh, 0, (size_t)dk * sizeof(float));
        for (int64_t i = 0; i < dk; i++) {
#pragma omp simd
            for (int64_t j = 0; j < dk; j++) oh[j] += qh[i] * Sh[i * dk + j];
        }
    }
}
