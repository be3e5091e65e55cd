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
 * Work splits over (sequence, h): each is one thread's, chunks in a fixed
 * order, writing only its own rows, so results do not depend on the thread
 * count or on which thread takes which pair. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/delta_rule.h"
#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/ops.h"

typedef struct dr_dims {
    int64_t H, dk, C;
} dr_dims;

/* The sequences the kernel runs over, resolved once per forward and kept in
 * the arena: the caller's cu need not outlive the forward, and the backward
 * walks the very chunks the forward saved states for. */
typedef struct dr_rows {
    int64_t n;      /* sequences: B, or seqs->n */
    int64_t *start; /* [n] first token, counted over all B*T tokens */
    int64_t *len;   /* [n] tokens */
    int64_t *choff; /* [n + 1] chunks of the sequences before i: prefix of ceil(len/C) */
} dr_rows;

/* seqs | NULL over B rows of T tokens -> the rows, from the arena. */
static dr_rows rows_make(sl_ctx *ctx, const sl_seqs *seqs, int64_t B, int64_t T, int64_t C)
{
    dr_rows r;
    r.n = sl_seq_count(seqs, B);
    int64_t *buf = sl_arena_alloc(&ctx->arena, (size_t)(2 * r.n) * sizeof(int64_t));
    r.start = buf;
    r.len = buf + r.n;
    for (int64_t i = 0; i < r.n; i++) {
        r.start[i] = sl_seq_start(seqs, i, T);
        r.len[i] = sl_seq_len(seqs, i, T);
    }
    r.choff = sl_seq_chunk_offsets(ctx, seqs, B, T, C);
    return r;
}

/* Where the state entering chunk ch of (sequence i, head h) is saved: per
 * sequence a block [H, nch_i, dk, dk], blocks in sequence order, so the
 * whole is [sum_i nch_i * H, dk, dk] (with B rows of T: [B, H, nch, dk, dk]). */
static int64_t saved_at(const dr_rows *r, int64_t H, int64_t dk, int64_t i, int64_t h, int64_t ch)
{
    int64_t nch = r->choff[i + 1] - r->choff[i];
    return (r->choff[i] * H + h * nch + ch) * dk * dk;
}

/* What the backward needs beyond in = {q, k, v, beta, g, S0}. */
typedef struct dr_saved {
    float *Sb; /* [sum_i nch_i * H, dk, dk]: the state entering each chunk (saved_at) */
    dr_rows rows;
    dr_dims d;
} dr_saved;

/* One chunk's recomputable quantities (shapes for c <= C rows). */
typedef struct dr_chunk {
    float *Q, *K, *V;  /* [c, dk] gathered rows */
    float *Kb, *Vb;    /* [c, dk] diag(beta E) K, diag(beta) V */
    float *W, *U;      /* [c, dk]; U holds U' after chunk_prepare */
    float *tmp;        /* [c, dk] scratch */
    float *KK, *T, *M; /* [c, c] */
    float *G;          /* [c, c] Gamma on and below the diagonal, 0 above */
    float *gam, *bt;   /* [c] cumulative log decay, beta */
    float *E, *F;      /* [c] e^gam, e^{gam_c - gam} */
} dr_chunk;

static int64_t chunk_floats(const dr_dims *d)
{
    return 8 * d->C * d->dk + 4 * d->C * d->C + 4 * d->C;
}

/* Carves a dr_chunk out of ws (chunk_floats of it). */
static dr_chunk chunk_carve(const dr_dims *d, float *ws)
{
    int64_t Cd = d->C * d->dk, CC = d->C * d->C;
    float *sq = ws + 8 * Cd, *vec = sq + 4 * CC;
    dr_chunk k = {ws,          ws + Cd,     ws + 2 * Cd,    ws + 3 * Cd,
                  ws + 4 * Cd, ws + 5 * Cd, ws + 6 * Cd,    ws + 7 * Cd,
                  sq,          sq + CC,     sq + 2 * CC,    sq + 3 * CC,
                  vec,         vec + d->C,  vec + 2 * d->C, vec + 3 * d->C};
    return k;
}

/* Tokens r0..r0+c (counted over all B*T) of head h from x: [B, T, H*dk]
 * -> dst: [c, dk]. */
static void gather(const dr_dims *d, const float *x, int64_t h, int64_t r0, int64_t c, float *dst)
{
    int64_t D = d->H * d->dk;
    for (int64_t i = 0; i < c; i++)
        memcpy(dst + i * d->dk, x + (r0 + i) * D + h * d->dk, (size_t)d->dk * sizeof(float));
}

/* Everything of one chunk (tokens r0..r0+c, head h) up to U' and M, from the
 * state S: [dk, dk] entering it. c >= 1. */
static void chunk_prepare(const dr_dims *d, const float *q, const float *k, const float *v,
                          const float *beta, const float *g, int64_t h, int64_t r0, int64_t c,
                          const float *S, dr_chunk *ck)
{
    int64_t dk = d->dk, H = d->H;
    gather(d, q, h, r0, c, ck->Q);
    gather(d, k, h, r0, c, ck->K);
    gather(d, v, h, r0, c, ck->V);
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
    sl_gemm(false, true, c, c, dk, ck->K, ck->K, 0.0f, ck->KK);
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
    sl_gemm(false, false, c, dk, c, ck->T, ck->Kb, 0.0f, ck->W);
    sl_gemm(false, false, c, dk, c, ck->T, ck->Vb, 0.0f, ck->U);
    sl_gemm(false, false, c, dk, dk, ck->W, S, 0.0f, ck->tmp);
    for (int64_t i = 0; i < c * dk; i++) ck->U[i] -= ck->tmp[i];
    sl_gemm(false, true, c, c, dk, ck->Q, ck->K, 0.0f, ck->M);
#pragma omp simd
    for (int64_t i = 0; i < c * c; i++) ck->M[i] *= ck->G[i];
}

/* One chunk forward: o: [B, T, H*dk] tokens r0..r0+c of head h written,
 * S: [dk, dk] advanced in place. ws: chunk_floats + C*dk. */
static void chunk_forward(const dr_dims *d, const float *q, const float *k, const float *v,
                          const float *beta, const float *g, int64_t h, int64_t r0, int64_t c,
                          float *S, float *o, float *ws)
{
    int64_t dk = d->dk, D = d->H * dk;
    dr_chunk ck = chunk_carve(d, ws);
    float *O = ws + chunk_floats(d);
    chunk_prepare(d, q, k, v, beta, g, h, r0, c, S, &ck);
    sl_gemm(false, false, c, dk, dk, ck.Q, S, 0.0f, O);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) O[i * dk + j] *= ck.E[i];
    sl_gemm(false, false, c, dk, c, ck.M, ck.U, 1.0f, O);
    for (int64_t i = 0; i < c; i++)
        memcpy(o + (r0 + i) * D + h * dk, O + i * dk, (size_t)dk * sizeof(float));
    for (int64_t i = 0; i < dk * dk; i++) S[i] *= ck.E[c - 1];
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) ck.tmp[i * dk + j] = ck.F[i] * ck.K[i * dk + j];
    sl_gemm(true, false, dk, dk, c, ck.tmp, ck.U, 1.0f, S);
}

/* Where one (sequence, h)'s gradients go (full tensors, or NULL when not required). */
typedef struct dr_grads {
    float *dq, *dk, *dv, *dbeta, *dg;
} dr_grads;

/* Backward scratch beyond the chunk's own: 8 [C, dk], 4 [C, C], 3 [C], 1 [dk, dk]. */
static int64_t bwd_extra_floats(const dr_dims *d)
{
    return 8 * d->C * d->dk + 4 * d->C * d->C + 3 * d->C + d->dk * d->dk;
}

/* X: [c, c] lower triangular with a factor Gamma_ij in each entry:
 * x_ij = dX_ij X_ij goes to dgam_i and, negated, to dgam_j. */
/* Row sums and column sums go to separate buffers so both loops vectorise;
 * col: [c] scratch. */
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
 * S: [dk, dk] entering the chunk; dS: [dk, dk], the gradient of the state
 * leaving it, replaced by the gradient of the state entering it. dout:
 * [B, T, H*dk]. ws: chunk_floats + bwd_extra_floats. */
static void chunk_backward(const dr_dims *d, const float *q, const float *k, const float *v,
                           const float *beta, const float *g, const float *dout, int64_t h,
                           int64_t r0, int64_t c, const float *S, float *dS, const dr_grads *gr,
                           float *ws)
{
    int64_t dk = d->dk, C = d->C, Cd = C * dk, CC = C * C, H = d->H, D = H * dk;
    dr_chunk ck = chunk_carve(d, ws);
    chunk_prepare(d, q, k, v, beta, g, h, r0, c, S, &ck);
    float *e = ws + chunk_floats(d);
    float *dO = e, *dU = e + Cd, *Kd = e + 2 * Cd, *dX = e + 3 * Cd, *dW = e + 4 * Cd;
    float *dQ = e + 5 * Cd, *dK = e + 6 * Cd, *dV = e + 7 * Cd;
    float *dM = e + 8 * Cd, *dT = dM + CC, *t2 = dT + CC, *dA = t2 + CC;
    float *dgam = dA + CC, *dbt = dgam + C, *col = dbt + C, *St = col + C;
    const float *bt = ck.bt;
    gather(d, dout, h, r0, c, dO);
    memset(dQ, 0, (size_t)(3 * Cd) * sizeof(float));
    memset(dgam, 0, (size_t)(2 * C) * sizeof(float));
    const float *E = ck.E, *F = ck.F;
    float el = E[c - 1];
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) Kd[i * dk + j] = F[i] * ck.K[i * dk + j];
    /* Through S' = e^{gam_c} S + Kd^T U'. */
    float sdS = 0;
    for (int64_t i = 0; i < dk * dk; i++) sdS += S[i] * dS[i];
    dgam[c - 1] += el * sdS;
    sl_gemm(false, false, c, dk, dk, Kd, dS, 0.0f, dU);
    sl_gemm(false, true, c, dk, dk, ck.U, dS, 0.0f, dX); /* dKd */
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
    sl_gemm(false, true, c, dk, dk, dO, S, 0.0f, dX); /* dO S^T */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (int64_t j = 0; j < dk; j++) {
            dQ[i * dk + j] += E[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck.Q[i * dk + j];
        }
        dgam[i] += E[i] * x;
    }
    sl_gemm(false, true, c, c, dk, dO, ck.U, 0.0f, dM);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = i + 1; j < c; j++) dM[i * c + j] = 0.0f;
    sl_gemm(true, false, c, dk, c, ck.M, dO, 1.0f, dU);
    gamma_grad(dM, ck.M, c, dgam, col);
#pragma omp simd
    for (int64_t i = 0; i < c * c; i++) dM[i] *= ck.G[i];
    sl_gemm(false, false, c, dk, c, dM, ck.K, 1.0f, dQ);
    sl_gemm(true, false, c, dk, c, dM, ck.Q, 1.0f, dK);
    /* Through U' = U - W S, U = T Vb, W = T Kb. */
    sl_gemm(false, true, c, dk, dk, dU, S, 0.0f, dW);
    for (int64_t i = 0; i < c * dk; i++) dW[i] = -dW[i];
    sl_gemm(false, true, c, c, dk, dU, ck.Vb, 0.0f, dT);
    sl_gemm(false, true, c, c, dk, dW, ck.Kb, 1.0f, dT);
    sl_gemm(true, false, c, dk, c, ck.T, dU, 0.0f, dX); /* dVb */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
        for (int64_t j = 0; j < dk; j++) {
            dV[i * dk + j] += bt[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck.V[i * dk + j];
        }
        dbt[i] += x;
    }
    sl_gemm(true, false, c, dk, c, ck.T, dW, 0.0f, dX); /* dKb */
    for (int64_t i = 0; i < c; i++) {
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (int64_t j = 0; j < dk; j++) {
            dK[i * dk + j] += bt[i] * E[i] * dX[i * dk + j];
            x += dX[i * dk + j] * ck.K[i * dk + j];
        }
        dbt[i] += E[i] * x;
        dgam[i] += bt[i] * E[i] * x;
    }
    /* Through T = (I + A)^-1: dA = -T^T dT T^T, A_ij = beta_i Gamma_ij KK_ij. */
    sl_gemm(false, true, c, c, c, dT, ck.T, 0.0f, t2);
    sl_gemm(true, false, c, c, c, ck.T, t2, 0.0f, dA);
    for (int64_t i = 0; i < c; i++) {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) {
            float gm = j < i ? ck.G[i * c + j] : 0.0f, da = -dA[i * c + j];
            s += da * gm * ck.KK[i * c + j];
            dA[i * c + j] = da;
            t2[i * c + j] = da * bt[i] * gm;                 /* dKK */
            ck.M[i * c + j] = bt[i] * gm * ck.KK[i * c + j]; /* M is spent: A for gamma_grad */
        }
        dbt[i] += s;
    }
    gamma_grad(dA, ck.M, c, dgam, col);
    sl_gemm(false, false, c, dk, c, t2, ck.K, 1.0f, dK);
    sl_gemm(true, false, c, dk, c, t2, ck.K, 1.0f, dK);
    /* dS entering = e^{gam_c} dS + Q^T diag(E) dO - W^T dU'. */
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < dk; j++) dO[i * dk + j] *= E[i];
    for (int64_t i = 0; i < dk * dk; i++) dS[i] *= el;
    sl_gemm(true, false, dk, dk, c, ck.Q, dO, 1.0f, dS);
    sl_gemm(true, false, dk, dk, c, ck.W, dU, 0.0f, St);
    for (int64_t i = 0; i < dk * dk; i++) dS[i] -= St[i];
    /* Scatter; g_m enters every gam_i with i >= m. */
    float suffix = 0;
    for (int64_t i = c - 1; i >= 0; i--) {
        int64_t r = r0 + i, off = r * D + h * dk;
        suffix += dgam[i];
        if (gr->dq)
            for (int64_t j = 0; j < dk; j++) gr->dq[off + j] += dQ[i * dk + j];
        if (gr->dk)
            for (int64_t j = 0; j < dk; j++) gr->dk[off + j] += dK[i * dk + j];
        if (gr->dv)
            for (int64_t j = 0; j < dk; j++) gr->dv[off + j] += dV[i * dk + j];
        if (gr->dbeta) gr->dbeta[r * H + h] += dbt[i];
        if (gr->dg) gr->dg[r * H + h] += suffix;
    }
}

static float *grad_or_null(sl_ctx *ctx, sl_tensor *t)
{
    return t && t->requires_grad ? sl_grad(ctx, t) : NULL;
}

/* dO: [B, T, H*dk] -> dq, dk, dv, dbeta, dg: [B, T, ...], dS0: [N, H, dk, dk]
 * (each when required). Each (sequence, h) starts from a zero dS at its
 * last chunk, so no gradient crosses a sequence bound. */
static void delta_rule_backward(sl_ctx *ctx, const sl_node *nd)
{
    const dr_saved *sv = nd->saved;
    const dr_dims *d = &sv->d;
    const dr_rows *rw = &sv->rows;
    sl_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2], *beta = nd->in[3];
    sl_tensor *g = nd->in[4], *S0 = nd->in[5];
    dr_grads gr = {grad_or_null(ctx, q), grad_or_null(ctx, k), grad_or_null(ctx, v),
                   grad_or_null(ctx, beta), grad_or_null(ctx, g)};
    float *dS0 = grad_or_null(ctx, S0);
    const float *gd = g ? g->data : NULL;
    int64_t H = d->H, dk = d->dk, C = d->C, NH = rw->n * H;
    int64_t wsf = chunk_floats(d) + bwd_extra_floats(d) + dk * dk;
    float *wsall = sl_arena_floats(ctx, (int64_t)omp_get_max_threads() * wsf);
    /* Dynamic: packed sequences differ in length; any thread may take any
     * pair without changing its result. */
#pragma omp parallel for schedule(dynamic, 1) if (NH > 1)
    for (int64_t ih = 0; ih < NH; ih++) {
        int64_t i = ih / H, h = ih % H, len = rw->len[i];
        int64_t nch = rw->choff[i + 1] - rw->choff[i];
        float *dS = wsall + (int64_t)omp_get_thread_num() * wsf, *ws = dS + dk * dk;
        memset(dS, 0, (size_t)(dk * dk) * sizeof(float)); /* the final state carries no gradient */
        for (int64_t ch = nch - 1; ch >= 0; ch--) {
            int64_t t0 = ch * C, c = t0 + C <= len ? C : len - t0;
            const float *Sb = sv->Sb + saved_at(rw, H, dk, i, h, ch);
            chunk_backward(d, q->data, k->data, v->data, beta->data, gd, nd->out->grad, h,
                           rw->start[i] + t0, c, Sb, dS, &gr, ws);
        }
        if (dS0)
            for (int64_t j = 0; j < dk * dk; j++) dS0[ih * dk * dk + j] += dS[j];
    }
}

/* q, k, v: [B, T, H*dk], beta, g: [B, T, H], S0: [N, H, dk, dk] | NULL ->
 * o: [B, T, H*dk]; S_out: [N, H, dk, dk] | NULL. N = B, or seqs->n with
 * B = 1. Saves the chunk-entry states [sum_i ceil(len_i/C) * H, dk, dk]
 * when recorded. */
sl_tensor *sl_delta_rule(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *beta,
                         sl_tensor *g, sl_tensor *S0, int64_t H, int64_t C, float *S_out,
                         const sl_seqs *seqs)
{
    sl_require(q->ndim == 3 && sl_same_shape(q, k) && sl_same_shape(q, v) && H > 0 &&
                   q->shape[2] % H == 0 && C > 0,
               "sl_delta_rule", "q, k, v [B, T, H*dk], chunk > 0");
    /* Checked before anything is allocated or recorded: bounds past T would
     * read and write outside every tensor. */
    sl_require(sl_seqs_check(seqs, q, "sl_delta_rule") == SL_OK, "sl_delta_rule",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over q [1, T, H*dk]");
    int64_t B = q->shape[0], T = q->shape[1], N = sl_seq_count(seqs, B);
    dr_dims d = {H, q->shape[2] / H, C};
    int64_t dk = d.dk, NH = N * H, wsf = chunk_floats(&d) + C * dk + dk * dk;
    sl_require(beta->n == B * T * H && (!g || g->n == beta->n) && (!S0 || S0->n == NH * dk * dk),
               "sl_delta_rule", "beta, g [B, T, H], S0 [N, H, dk, dk]");
    dr_rows rw = rows_make(ctx, seqs, B, T, C);
    sl_tensor *o = SL_NEW(ctx, B, T, H * dk);
    sl_node *nd = SL_RECORD(ctx, delta_rule_backward, o, q, k, v, beta, g, S0);
    dr_saved *sv = NULL;
    if (nd) {
        sv = sl_arena_alloc(&ctx->arena, sizeof *sv);
        *sv = (dr_saved){sl_arena_floats(ctx, rw.choff[rw.n] * H * dk * dk), rw, d};
        nd->saved = sv;
    }
    float *wsall = sl_arena_floats(ctx, (int64_t)omp_get_max_threads() * wsf);
    const float *gd = g ? g->data : NULL;
    /* Dynamic: packed sequences differ in length; any thread may take any
     * pair without changing its result. */
#pragma omp parallel for schedule(dynamic, 1) if (NH > 1)
    for (int64_t ih = 0; ih < NH; ih++) {
        int64_t i = ih / H, h = ih % H, len = rw.len[i], nch = rw.choff[i + 1] - rw.choff[i];
        float *S = wsall + (int64_t)omp_get_thread_num() * wsf, *ws = S + dk * dk;
        if (S0)
            memcpy(S, S0->data + ih * dk * dk, (size_t)(dk * dk) * sizeof(float));
        else
            memset(S, 0, (size_t)(dk * dk) * sizeof(float));
        for (int64_t ch = 0; ch < nch; ch++) {
            int64_t t0 = ch * C, c = t0 + C <= len ? C : len - t0;
            if (sv) {
                float *Sb = sv->Sb + saved_at(&rw, H, dk, i, h, ch);
                memcpy(Sb, S, (size_t)(dk * dk) * sizeof(float));
            }
            chunk_forward(&d, q->data, k->data, v->data, beta->data, gd, h, rw.start[i] + t0, c, S,
                          o->data, ws);
        }
        if (S_out) memcpy(S_out + ih * dk * dk, S, (size_t)(dk * dk) * sizeof(float));
    }
    return o;
}

/* Same layouts as sl_delta_rule (q: [B, T, H*dk], states [N, H, dk, dk]);
 * the state is kept in double. */
void sl_delta_rule_ref(const float *q, const float *k, const float *v, const float *beta,
                       const float *g, const float *S0, int64_t B, int64_t T, int64_t H, int64_t dk,
                       float *o, float *S_out, const sl_seqs *seqs)
{
    double *S = malloc((size_t)(dk * dk) * sizeof(double)),
           *kS = malloc((size_t)dk * sizeof(double));
    int64_t D = H * dk, N = sl_seq_count(seqs, B);
    /* b: the sequence (a batch row, or one packed sequence); its tokens are
     * start..start+len over all B*T, and its state row is b. */
    for (int64_t b = 0; b < N; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < dk * dk; i++) S[i] = S0 ? S0[(b * H + h) * dk * dk + i] : 0.0;
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
            if (S_out)
                for (int64_t i = 0; i < dk * dk; i++)
                    S_out[(b * H + h) * dk * dk + i] = (float)S[i];
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

/* q, k, v: [H*dk], beta, g: [H] (g may be NULL), S: [H, dk, dk] -> o: [H*dk];
 * kS: [dk] scratch. */
void sl_delta_rule_step(const float *q, const float *k, const float *v, const float *beta,
                        const float *g, int64_t H, int64_t dk, float *S, float *o, float *kS)
{
    for (int64_t h = 0; h < H; h++) {
        float *Sh = S + h * dk * dk;
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
