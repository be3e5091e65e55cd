/* Chunkwise-parallel mLSTM (Beck et al. 2024, xLSTM, with the stabiliser of
 * its appendix), forward and backward, plus the step-by-step reference and
 * the one-token step. The equations and the state layout are in mlstm.h.
 *
 * One trick carries the denominator along: v gets a last column of ones and
 * C a last column n, so with Va = [V | 1]: [L, dva], dva = dv + 1, and
 * Ca = [C | n]: [dk, dva], a chunk is one decayed recurrence
 *     N = diag(w) Q Ca + A Va,   N_i = [num_i | den_i]
 *     A_ij = (q_i . k_j) E_ij,   E_ij = e^(D_ij - m_i)  (j <= i, else 0)
 *     w_i = e^(b_i + m_prev - m_i)
 *     Ca' = w_L Ca + (diag(f) K)^T Va,   f_j = E_Lj,  m' = m_L
 * (the state leaving the chunk is the last row's: m_L is the max over the
 * same terms as m', and its weights are the last row of E and w), then
 * h_i = num_i / z_i with z_i = max(|den_i|, e^(-m_i)).
 *
 * Backward, m held fixed (mlstm.h says why), per chunk in reverse with dCa,
 * the gradient of the state leaving it:
 *     dN_i = [dh_i / z_i | -(dh_i . h_i) / z_i sign(den_i)]  (last entry 0
 *            where the floor wins)
 *     dQ = diag(w) dN Ca^T + (dA . E) K      dK = (dA . E)^T Q + diag(f) Va dCa^T
 *     dVa = A^T dN + diag(f) K dCa           dCa_prev = w_L dCa + (diag(w) Q)^T dN
 * with dA = dN Va^T on j <= i. The exponents give the gate gradients:
 * d/d(D_ij) = dA_ij A_ij (to b_i, -b_j, it_j), d/d(b_i) of w_i is
 * (diag(w) Q dN Ca^T)_i . q_i, and the state update adds
 * f_j k_j . (Va dCa^T)_j to (b_L, -b_j, it_j) and w_L <Ca, dCa> to b_L;
 * dlf_s is the sum of db_i from the chunk's end back to s.
 *
 * Cost. The products with a causal factor (Q K^T, A Va, dN Va^T, A^T dN,
 * (dA . E) K, (dA . E)^T Q) skip its zero half (mm_part's parts); the
 * N = dva products take the denominator's column as vector loops (mm_dva).
 * E is formed once per chunk and pass, in vector loops, and kept for the
 * backward's dA . E and both passes' f.
 *
 * Precision: b is summed in double and every exponent formed in double
 * before sl_expf (see chunk_weights): gates of -1e4 put b near 1e5 within a
 * chunk, where float spacing alone would move the weights by a percent. m
 * is rounded to float once (it is a float in the state) and every exponent
 * is taken against that rounded value, so the scale a state is stored at
 * and the m recorded with it agree exactly.
 *
 * The forward keeps the state entering each chunk (dk*dva + 1 floats per
 * chunk and head) and each token's den_i (one float per token and head):
 * with its output h they give the backward dN without forming N again.
 * Work is split over rows x heads; each (row, head) is one thread's, in a
 * fixed order, so results do not depend on the thread count.
 *
 * q, k and v are read in place from blocks of columns of their tensors
 * (sl_mlstm_in; one packed projection in the mixer), q and k scaled as they
 * are packed into the chunk (block_io.h's pack_in), and dq, dk, dv are added
 * into the same columns of the tensors' gradients through the scales
 * (unpack_in); sl_mlstm is the case of whole tensors at offset 0. */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/block_io.h"
#include "ops/chunk_runtime.h"
#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/mlstm.h"
#include "ops/small_gemm.h"

/* What the forward computes for the backward (the sizes are the node's
 * desc). */
typedef struct mlstm_saved {
    float *states; /* [total chunks, H, dk*dva + 1]: Ca and m entering each chunk */
    float *den;    /* [B*T, H]: each token's den_i */
} mlstm_saved;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void sl_mlstm_state_fresh(float *s, int64_t n, int64_t dk, int64_t dv)
{
    const int64_t sz = sl_mlstm_state_floats(dk, dv);
    for (int64_t i = 0; i < n; i++) {
        memset(s + i * sz, 0, (size_t)(sz - 1) * sizeof(float));
        s[i * sz + sz - 1] = SL_MLSTM_M_FRESH;
    }
}

/* The floor e^(-m) with its exponent clamped as sl_expf clamps (mlstm.h). */
static double floor_ref(double m)
{
    double e = -m;
    e = e < -87.33654 ? -87.33654 : e;
    e = e > 88.3762626647949 ? 88.3762626647949 : e;
    return exp(e);
}

/* ----------------------------------------------------------- scratch */

/* One thread's buffers for one chunk. */
typedef struct head_buf {
    float *Q, *K, *Qd, *Kf, *dQ, *dK, *dQd, *tmp; /* [C, dk] */
    float *Va, *N, *dN, *dVa;                     /* [C, dva] */
    float *A, *P, *E;                             /* [C, C] */
    double *b;                                    /* [C]: cumulative log forget gate */
    float *g, *m, *w, *fl, *z, *db, *dig;         /* [C]: it, m, w, e^(-m), z and grads */
    float *Ca, *dCa, *bt;                         /* state, its gradient, mm_nt/mm_dva scratch */
} head_buf;

/* mm_nt's B^T, [K, N] for its products (K, N in dk, dva, C); mm_dva's
 * K + M <= 2 max(C, dk) fit too, as dva >= 2. */
static int64_t bt_floats(const sl_mlstm_desc *s)
{
    const int64_t w = s->dk > s->dva ? s->dk : s->dva, n = s->C > s->dk ? s->C : s->dk;
    return w * n;
}

/* One thread's buffers from cv (counting only, when cv->base is NULL). */
static head_buf carve(const sl_mlstm_desc *s, sl_carver *cv)
{
    const int64_t C = s->C, dk = s->dk, dva = s->dva;
    head_buf h;
    h.b = (double *)sl_carve(cv, 2 * C);
    float **ck[] = {&h.Q, &h.K, &h.Qd, &h.Kf, &h.dQ, &h.dK, &h.dQd, &h.tmp};
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) *ck[i] = sl_carve(cv, C * dk);
    float **cvv[] = {&h.Va, &h.N, &h.dN, &h.dVa};
    for (size_t i = 0; i < sizeof cvv / sizeof cvv[0]; i++) *cvv[i] = sl_carve(cv, C * dva);
    h.A = sl_carve(cv, C * C);
    h.P = sl_carve(cv, C * C);
    h.E = sl_carve(cv, C * C);
    float **cs[] = {&h.g, &h.m, &h.w, &h.fl, &h.z, &h.db, &h.dig};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) *cs[i] = sl_carve(cv, C);
    h.Ca = sl_carve(cv, dk * dva);
    h.dCa = sl_carve(cv, dk * dva);
    h.bt = sl_carve(cv, bt_floats(s));
    return h;
}

static int64_t buf_floats(const sl_mlstm_desc *s)
{
    sl_carver cv = {NULL, 0};
    carve(s, &cv);
    return cv.used;
}

/* Threads of a run (values with the denominator's column: dva). */
static int mlstm_team(const sl_mlstm_desc *s)
{
    const int64_t work = sl_chunk_state_work(s->B * s->T, s->H, s->C, s->dk, s->dva);
    return sl_chunk_team(s->rows.n * s->H, work);
}

/* C[M, N] (+)= A B as mm_part computes it (part SG_FULL, SG_A_LOWER or
 * SG_A_UPPER), for the N = dva products: mm_part takes the columns past the
 * last whole 16 (here the denominator's one) as strided dot products, which
 * cost about as much as the 64 columns before them. Here each such column
 * of B is copied out and the column of C formed by vector loops: dot
 * products when A's rows are contiguous (cas = 1), else (ras = 1, A^T)
 * a sum of A's contiguous columns. col: [K + M] scratch. */
static void mm_dva(int part, int64_t M, int64_t N, int64_t K, const float *a, int64_t ras,
                   int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc, bool acc,
                   float *col)
{
    const int64_t n16 = N & ~(int64_t)15;
    float *bj = col, *cj = col + K;
    mm_part(part, M, n16, K, a, ras, cas, b, ldb, c, ldc, acc);
    for (int64_t j = n16; j < N; j++) {
        for (int64_t kk = 0; kk < K; kk++) bj[kk] = b[kk * ldb + j];
        if (cas == 1)
            for (int64_t m = 0; m < M; m++) {
                int64_t k0, k1;
                k_span(part, m, 1, K, &k0, &k1);
                const float *am = a + m * ras;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int64_t kk = k0; kk < k1; kk++) s += am[kk] * bj[kk];
                cj[m] = s;
            }
        else {
            memset(cj, 0, (size_t)M * sizeof(float));
            for (int64_t kk = 0; kk < K; kk++) {
                const float *ak = a + kk * cas, x = bj[kk];
#pragma omp simd
                for (int64_t m = 0; m < M; m++) cj[m] += ak[m] * x;
            }
        }
        for (int64_t m = 0; m < M; m++) c[m * ldc + j] = acc ? c[m * ldc + j] + cj[m] : cj[m];
    }
}

/* State row (C [dk, dv], n [dk], m) <-> Ca [dk, dva] and m. */
static void state_load(const float *src, int64_t dk, int64_t dv, float *Ca, float *m)
{
    const int64_t dva = dv + 1;
    for (int64_t d = 0; d < dk; d++) {
        memcpy(Ca + d * dva, src + d * dv, (size_t)dv * sizeof(float));
        Ca[d * dva + dv] = src[dk * dv + d];
    }
    *m = src[dk * dv + dk];
}

static void state_store(const float *Ca, float m, int64_t dk, int64_t dv, float *dst)
{
    const int64_t dva = dv + 1;
    for (int64_t d = 0; d < dk; d++) {
        memcpy(dst + d * dv, Ca + d * dva, (size_t)dv * sizeof(float));
        dst[dk * dv + d] = Ca[d * dva + dv];
    }
    dst[dk * dv + dk] = m;
}

/* The chunk's operands: Q, K: [L, dk] (scaled as read), Va = [V | 1]:
 * [L, dva], and its gates. tok: the chunk's first token over all B*T; q, k,
 * v: the tensors the blocks are read from (rows ldq, ldk, ldv apart). */
static void load_chunk(const sl_mlstm_desc *s, int64_t tok, int64_t h, int64_t L, const float *q,
                       const float *k, const float *v, const float *ig, const float *lf,
                       head_buf *w)
{
    const int64_t H = s->H, dk = s->dk, dv = s->dv, dva = s->dva;
    pack_in(q + at_q(&s->io, tok, h, dk), s->io.ldq, L, dk, SL_REC_PLAIN, s->io.q_scale, w->Q);
    pack_in(k + at_k(&s->io, tok, h, dk), s->io.ldk, L, dk, SL_REC_PLAIN, s->io.k_scale, w->K);
    for (int64_t i = 0; i < L; i++) {
        memcpy(w->Va + i * dva, v + at_v(&s->io, tok + i, h, dv),
               (size_t)dv * sizeof(float));
        w->Va[i * dva + dv] = 1.0f;
        w->b[i] = (i ? w->b[i - 1] : 0.0) + lf[(tok + i) * H + h];
        w->g[i] = ig[(tok + i) * H + h];
    }
}

/* From b, the input gates g and m_prev: the stabiliser m (its max taken
 * over the same exponents, so each is <= 0 up to m's rounding), the
 * inter-chunk weights w, the floors fl = e^(-m) of z, the factors
 * E_ij = e^(D_ij - m_i) (j <= i; the backward's dA . E and both passes'
 * f_j = E_Lj read them) and A = (Q K^T) . E.
 *
 * b is summed in double and each exponent D_ij - m_i = b_i - b_j + it_j - m_i
 * formed in double: under extreme gates b reaches 1e5 and more inside a
 * chunk, where a float's spacing (~0.01) would move every weight by a
 * percent; the rounded m_i (a float, like the state's m) is what the
 * exponents are taken against, so scale and record agree. A row's
 * exponents are one vector loop, the double sums converted to float lane
 * by lane before sl_expf. */
static void chunk_weights(int64_t L, int64_t dk, float m_prev, head_buf *w)
{
    const double *b = w->b;
    const float *g = w->g;
    for (int64_t i = 0; i < L; i++) {
        const double bi = b[i];
        double mi = bi + m_prev;
#pragma omp simd reduction(max : mi)
        for (int64_t j = 0; j <= i; j++) {
            const double dij = (bi - b[j]) + g[j];
            mi = dij > mi ? dij : mi;
        }
        w->m[i] = (float)mi;
    }
#pragma omp simd
    for (int64_t i = 0; i < L; i++) {
        w->w[i] = sl_expf((float)((b[i] + m_prev) - (double)w->m[i]));
        w->fl[i] = sl_expf(-w->m[i]);
    }
    for (int64_t i = 0; i < L; i++) {
        const double bi = b[i], mr = w->m[i];
        float *e = w->E + i * L;
        /* Up to a whole vector past i: a scalar remainder would cost more
         * than these (finite, unread) extra entries. */
        const int64_t n = min64(L, (i + 8) & ~(int64_t)7);
#pragma omp simd
        for (int64_t j = 0; j < n; j++) e[j] = sl_expf((float)(((bi - b[j]) + g[j]) - mr));
    }
    mm_nt_part(SG_C_LOWER, L, L, dk, w->Q, dk, w->K, dk, w->A, L, false, w->bt);
    for (int64_t i = 0; i < L; i++) {
        float *a = w->A + i * L;
        const float *e = w->E + i * L;
#pragma omp simd
        for (int64_t j = 0; j <= i; j++) a[j] *= e[j];
        /* The tiles of A V straddling the diagonal read these. */
        for (int64_t j = i + 1; j < L; j++) a[j] = 0.0f;
    }
}

/* Qd = diag(w) Q. */
static void decayed_q(int64_t L, int64_t dk, head_buf *w)
{
    for (int64_t i = 0; i < L; i++) {
        const float wi = w->w[i];
#pragma omp simd
        for (int64_t d = 0; d < dk; d++) w->Qd[i * dk + d] = wi * w->Q[i * dk + d];
    }
}

/* N = diag(w) Q Ca + A Va (Qd kept) and z_i = max(|den_i|, fl_i). */
static void chunk_outputs(int64_t L, int64_t dk, int64_t dva, head_buf *w)
{
    decayed_q(L, dk, w);
    mm_dva(SG_FULL, L, dva, dk, w->Qd, dk, 1, w->Ca, dva, w->N, dva, false, w->bt);
    mm_dva(SG_A_LOWER, L, dva, L, w->A, L, 1, w->Va, dva, w->N, dva, true, w->bt);
    for (int64_t i = 0; i < L; i++) {
        const float den = fabsf(w->N[i * dva + dva - 1]);
        w->z[i] = den > w->fl[i] ? den : w->fl[i];
    }
}


/* ------------------------------------------------------------- forward */

/* The tensors of one run, forward or backward. q, k, v: the tensors the
 * blocks are read from, and dq, dk, dv their gradients (the blocks'
 * columns, rows ldq, ldk, ldv apart); ig, lf, den and their gradients:
 * [B*T, H]; o (the forward's h), dout: [B*T, H*dv]; s0, s_final, ds0:
 * [rows*H, ssz]; states: the chunk-entry states (sl_chunk_state_at, dk*dva
 * + 1 floats each). states and den both or neither NULL; a gradient NULL
 * when not needed. */
typedef struct mlstm_run {
    const sl_mlstm_desc *s;
    const float *q, *k, *v, *ig, *lf, *s0, *dout;
    float *o, *states, *den, *s_final;
    float *dq, *dk, *dv, *dig, *dlf, *ds0;
} mlstm_run;

/* One (row, head) rh of the forward. */
static void forward_head(const void *arg, int64_t rh, float *scratch)
{
    const mlstm_run *run = arg;
    const sl_mlstm_desc *s = run->s;
    const float *q = run->q, *k = run->k, *v = run->v, *ig = run->ig, *lf = run->lf;
    const float *s0 = run->s0;
    float *o = run->o, *states = run->states, *den = run->den, *s_final = run->s_final;
    const int64_t H = s->H, dk = s->dk, dv = s->dv, dva = s->dva, r = rh / H, h = rh % H;
    const int64_t ssz = sl_mlstm_state_floats(dk, dv), csz = dk * dva + 1;
    const int64_t len = sl_chunk_len(&s->rows, r), tok0 = sl_chunk_start(&s->rows, r);
    sl_carver cv = {scratch, 0};
    head_buf w = carve(s, &cv);
    float m = SL_MLSTM_M_FRESH;
    if (s0)
        state_load(s0 + rh * ssz, dk, dv, w.Ca, &m);
    else
        memset(w.Ca, 0, (size_t)(dk * dva) * sizeof(float));
    for (int64_t c = 0, t0 = 0; t0 < len; c++, t0 += s->C) {
        const int64_t L = min64(s->C, len - t0), tok = tok0 + t0;
        if (states) {
            float *st = states + sl_chunk_state_at(&s->rows, H, r, h, c, csz);
            memcpy(st, w.Ca, (size_t)(dk * dva) * sizeof(float));
            st[dk * dva] = m;
        }
        load_chunk(s, tok, h, L, q, k, v, ig, lf, &w);
        chunk_weights(L, dk, m, &w);
        chunk_outputs(L, dk, dva, &w);
        for (int64_t i = 0; i < L; i++) {
            float *oi = o + (tok + i) * H * dv + h * dv;
            const float inv = 1.0f / w.z[i];
#pragma omp simd
            for (int64_t j = 0; j < dv; j++) oi[j] = w.N[i * dva + j] * inv;
            if (den) den[(tok + i) * H + h] = w.N[i * dva + dv];
        }
        /* The state leaving: the last row's weights. */
        const float ml = w.m[L - 1];
        const float *eL = w.E + (L - 1) * L;
        for (int64_t j = 0; j < L; j++) {
            const float f = eL[j];
#pragma omp simd
            for (int64_t d = 0; d < dk; d++) w.Kf[j * dk + d] = f * w.K[j * dk + d];
        }
        const float gl = w.w[L - 1];
        for (int64_t i = 0; i < dk * dva; i++) w.Ca[i] *= gl;
        mm_dva(SG_FULL, dk, dva, L, w.Kf, 1, dk, w.Va, dva, w.Ca, dva, true, w.bt);
        m = ml;
    }
    if (s_final) state_store(w.Ca, m, dk, dv, s_final + rh * ssz);
}

/* ------------------------------------------------------------ backward */

/* One (row, head) rh of the backward, from what the forward kept (its h,
 * den and states). */
static void backward_head(const void *arg, int64_t rh, float *scratch)
{
    const mlstm_run *run = arg;
    const sl_mlstm_desc *s = run->s;
    const float *q = run->q, *k = run->k, *v = run->v, *ig = run->ig, *lf = run->lf;
    const float *out = run->o, *dout = run->dout, *states = run->states, *den = run->den;
    float *dq = run->dq, *dkk = run->dk, *dvv = run->dv, *dig = run->dig, *dlf = run->dlf;
    float *ds0 = run->ds0;
    const int64_t H = s->H, dk = s->dk, dv = s->dv, dva = s->dva, r = rh / H, h = rh % H;
    const int64_t ssz = sl_mlstm_state_floats(dk, dv), csz = dk * dva + 1;
    const int64_t len = sl_chunk_len(&s->rows, r), tok0 = sl_chunk_start(&s->rows, r);
    const int64_t nch = sl_chunk_count(&s->rows, r);
    sl_carver cv = {scratch, 0};
    head_buf w = carve(s, &cv);
    memset(w.dCa, 0, (size_t)(dk * dva) * sizeof(float));
    if (s->ds_final) {
        /* C~ and n~ of the leaving state, relative to its m, which is held
         * fixed like every m (mlstm.h): its own gradient is not used. */
        const float *g = s->ds_final + rh * ssz;
        for (int64_t dd = 0; dd < dk; dd++) {
            memcpy(w.dCa + dd * dva, g + dd * dv, (size_t)dv * sizeof(float));
            w.dCa[dd * dva + dv] = g[dk * dv + dd];
        }
    }
    for (int64_t c = nch - 1; c >= 0; c--) {
        const int64_t t0 = c * s->C, L = min64(s->C, len - t0), tok = tok0 + t0;
        const float *st = states + sl_chunk_state_at(&s->rows, H, r, h, c, csz);
        memcpy(w.Ca, st, (size_t)(dk * dva) * sizeof(float));
        const float m_prev = st[dk * dva];
        load_chunk(s, tok, h, L, q, k, v, ig, lf, &w);
        chunk_weights(L, dk, m_prev, &w);
        decayed_q(L, dk, &w);
        memset(w.db, 0, (size_t)L * sizeof(float));
        memset(w.dig, 0, (size_t)L * sizeof(float));

        /* dN from h_i = num_i / z_i, with h and den as the forward left
         * them (m is formed again exactly as it was there). */
        for (int64_t i = 0; i < L; i++) {
            const float *di = dout + (tok + i) * H * dv + h * dv,
                        *hi = out + (tok + i) * H * dv + h * dv;
            const float dn = den[(tok + i) * H + h], fl = w.fl[i];
            /* |den| won the max: z = |den|, dz = -(dh . h) / z. */
            const bool active = fabsf(dn) > fl;
            const float inv = 1.0f / (active ? fabsf(dn) : fl);
            float hd = 0.0f;
#pragma omp simd reduction(+ : hd)
            for (int64_t j = 0; j < dv; j++) {
                w.dN[i * dva + j] = di[j] * inv;
                hd += di[j] * hi[j];
            }
            w.dN[i * dva + dv] = active ? -hd * inv * (dn > 0 ? 1.0f : -1.0f) : 0.0f;
        }
        /* Reading the entering state: N += diag(w) Q Ca. */
        mm_nt(L, dk, dva, w.dN, dva, w.Ca, dva, w.dQd, dk, false, w.bt);
        for (int64_t i = 0; i < L; i++) {
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t d = 0; d < dk; d++) {
                acc += w.Qd[i * dk + d] * w.dQd[i * dk + d];
                w.dQ[i * dk + d] = w.w[i] * w.dQd[i * dk + d];
            }
            w.db[i] += acc;
        }
        /* Inside the chunk: N += A Va. P <- dA = dN Va^T, then dA . E. */
        mm_nt_part(SG_C_LOWER, L, L, dva, w.dN, dva, w.Va, dva, w.P, L, false, w.bt);
        /* dVa's last column, the ones', wants no gradient: dv columns. */
        mm_part(SG_A_UPPER, L, dv, L, w.A, 1, L, w.dN, dva, w.dVa, dva, false);
        /* u = dA_ij A_ij goes to b_i by rows and to it_j by columns; dig
         * collects what goes to -b_j, subtracted from db once at the end. */
        for (int64_t i = 0; i < L; i++) {
            float *p = w.P + i * L;
            const float *a = w.A + i * L, *e = w.E + i * L;
            float ri = 0.0f;
#pragma omp simd reduction(+ : ri)
            for (int64_t j = 0; j <= i; j++) {
                const float u = p[j] * a[j];
                ri += u;
                w.dig[j] += u;
                p[j] *= e[j];
            }
            w.db[i] += ri;
            /* The tiles of P K and P^T Q straddling the diagonal read these. */
            for (int64_t j = i + 1; j < L; j++) p[j] = 0.0f;
        }
        mm_part(SG_A_LOWER, L, dk, L, w.P, L, 1, w.K, dk, w.dQ, dk, true);
        mm_part(SG_A_UPPER, L, dk, L, w.P, 1, L, w.Q, dk, w.dK, dk, false);
        /* Writing the leaving state: Ca' = w_L Ca + (diag(f) K)^T Va. */
        const float gl = w.w[L - 1];
        mm_nt(L, dk, dva, w.Va, dva, w.dCa, dva, w.tmp, dk, false, w.bt);
        float dbl = 0.0f;
        for (int64_t j = 0; j < L; j++) {
            const float f = w.E[(L - 1) * L + j];
            float e = 0.0f;
#pragma omp simd reduction(+ : e)
            for (int64_t d = 0; d < dk; d++) {
                const float t = w.tmp[j * dk + d];
                e += w.K[j * dk + d] * t;
                w.dK[j * dk + d] += f * t;
                w.Kf[j * dk + d] = f * w.K[j * dk + d];
            }
            e *= f;
            dbl += e;
            w.dig[j] += e;
        }
        mm_nn(L, dv, dk, w.Kf, dk, 1, w.dCa, dva, w.dVa, dva, true);
        float cd = 0.0f;
#pragma omp simd reduction(+ : cd)
        for (int64_t i = 0; i < dk * dva; i++) cd += w.Ca[i] * w.dCa[i];
        dbl += gl * cd;
        w.db[L - 1] += dbl;
        for (int64_t j = 0; j < L; j++) w.db[j] -= w.dig[j];
        for (int64_t i = 0; i < dk * dva; i++) w.dCa[i] *= gl;
        mm_dva(SG_FULL, dk, dva, L, w.Qd, 1, dk, w.dN, dva, w.dCa, dva, true, w.bt);

        if (dq)
            unpack_in(w.dQ, w.Q, L, dk, SL_REC_PLAIN, s->io.q_scale,
                      dq + at_q(&s->io, tok, h, dk), s->io.ldq);
        if (dkk)
            unpack_in(w.dK, w.K, L, dk, SL_REC_PLAIN, s->io.k_scale,
                      dkk + at_k(&s->io, tok, h, dk), s->io.ldk);
        if (dvv)
            for (int64_t i = 0; i < L; i++) {
                float *dvi = dvv + at_v(&s->io, tok + i, h, dv);
                for (int64_t j = 0; j < dv; j++) dvi[j] += w.dVa[i * dva + j];
            }
        if (dig)
            for (int64_t i = 0; i < L; i++) dig[(tok + i) * H + h] += w.dig[i];
        if (dlf) {
            float acc = 0.0f;
            for (int64_t i = L - 1; i >= 0; i--) {
                acc += w.db[i];
                dlf[(tok + i) * H + h] += acc;
            }
        }
    }
    if (ds0 && nch == 0 && s->ds_final) {
        /* An empty sequence passes s0 on as its final state. */
        for (int64_t i = 0; i < ssz; i++) ds0[rh * ssz + i] += s->ds_final[rh * ssz + i];
    } else if (ds0 && nch > 0) {
        /* w.Ca holds the state entering chunk 0: s0. */
        float *d = ds0 + rh * ssz, dm = 0.0f;
        for (int64_t i = 0; i < dk * dva; i++) dm += w.dCa[i] * w.Ca[i];
        for (int64_t dd = 0; dd < dk; dd++) {
            for (int64_t j = 0; j < dv; j++) d[dd * dv + j] += w.dCa[dd * dva + j];
            d[dk * dv + dd] += w.dCa[dd * dva + dv];
        }
        d[dk * dv + dk] += dm;
    }
}

int64_t sl_mlstm_scratch_floats(const sl_mlstm_desc *d)
{
    return buf_floats(d) * mlstm_team(d);
}

int64_t sl_mlstm_states_floats(const sl_mlstm_desc *d)
{
    return sl_chunk_states_floats(&d->rows, d->H, d->dk * d->dva + 1);
}

/* Every (row, head) of a run on the threads sl_chunk_team gives. */
static void run_all(const mlstm_run *run, sl_chunk_fn fn, float *scratch)
{
    const sl_mlstm_desc *d = run->s;
    sl_chunk_for(mlstm_team(d), d->rows.n * d->H, fn, run, scratch, buf_floats(d));
}

void sl_mlstm_fwd(const sl_mlstm_desc *d, const float *q, const float *k, const float *v,
                  const float *igate, const float *lfgate, const float *s0, float *h,
                  float *states, float *den, float *s_final, float *scratch)
{
    /* d, the inputs, s0, dout; h, states, den, s_final; no gradients. */
    const mlstm_run run = {d, q, k, v, igate, lfgate, s0, NULL, h, states, den, s_final,
                           NULL, NULL, NULL, NULL, NULL, NULL};
    run_all(&run, forward_head, scratch);
}

void sl_mlstm_bwd(const sl_mlstm_desc *d, const float *q, const float *k, const float *v,
                  const float *igate, const float *lfgate, const float *h, const float *states,
                  const float *den, const float *dout, float *dq, float *dk, float *dv,
                  float *digate, float *dlfgate, float *ds0, float *scratch)
{
    /* d, the inputs, s0, dout; h, states, den (read only), s_final; the gradients. */
    const mlstm_run run = {d, q, k, v, igate, lfgate, NULL, dout, (float *)h, (float *)states,
                           (float *)den, NULL, dq, dk, dv, digate, dlfgate, ds0};
    run_all(&run, backward_head, scratch);
}

/* Node layout: in = {q, k, v, igate, lfgate, s0} (q, k, v: the tensors the
 * blocks are read from, possibly one tensor three times; s0 may be NULL),
 * desc = sl_mlstm_desc, saved = mlstm_saved. */
static void mlstm_backward(sl_ctx *ctx, const sl_node *nd)
{
    const sl_mlstm_desc *s = nd->desc;
    const mlstm_saved *sv = nd->saved;
    sl_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2], *ig = nd->in[3], *lf = nd->in[4];
    sl_tensor *s0 = nd->in[5];
    float *dq = q->requires_grad ? sl_grad(ctx, q) : NULL;
    float *dk = k->requires_grad ? sl_grad(ctx, k) : NULL;
    float *dv = v->requires_grad ? sl_grad(ctx, v) : NULL;
    float *dig = ig->requires_grad ? sl_grad(ctx, ig) : NULL;
    float *dlf = lf->requires_grad ? sl_grad(ctx, lf) : NULL;
    float *ds0 = s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL;
    sl_mlstm_bwd(s, q->data, k->data, v->data, ig->data, lf->data, nd->out->data,
                 sv->states, sv->den, nd->out->grad, dq, dk, dv, dig, dlf, ds0,
                 sl_arena_floats(ctx, sl_mlstm_scratch_floats(s)));
}

/* Blocks of in's tensors ([B, T, *]), igate, lfgate: [B, T, H], s0: [rows,
 * H, dk*dv + dk + 1] or NULL -> h: [B, T, H*dv]; see sl_mlstm_in. */
sl_tensor *sl_mlstm_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *igate, sl_tensor *lfgate,
                       sl_tensor *s0, int64_t H, int64_t C, float *s_final, const sl_seqs *seqs)
{
    sl_tensor *q = in->q, *k = in->k, *v = in->v;
    const int64_t dk = in->dk, dv = in->dv;
    const sl_rec_layout io = sl_rec_in_layout(in, H, "sl_mlstm");
    sl_require(C > 0 && in->map == SL_REC_PLAIN, "sl_mlstm", "C > 0, map SL_REC_PLAIN");
    sl_require(igate->ndim == 3 && sl_same_shape(igate, lfgate) && igate->shape[0] == q->shape[0] &&
                   igate->shape[1] == q->shape[1] && igate->shape[2] == H,
               "sl_mlstm", "igate, lfgate [B, T, H]");
    sl_require(sl_seqs_check(seqs, q, "sl_mlstm") == SL_OK, "sl_mlstm",
               "seqs NULL or packed bounds over q [1, T, ...]");
    sl_mlstm_desc s = {.B = q->shape[0],
                       .T = q->shape[1],
                       .H = H,
                       .dk = dk,
                       .dv = dv,
                       .C = C,
                       .io = io,
                       .ds_final = sl_state_final_grad(ctx, s_final)};
    s.dva = s.dv + 1;
    /* The backward runs after the caller's bounds may be gone. */
    s.rows = sl_chunk_rows_keep(ctx, seqs, s.B, s.T, C);
    const int64_t ssz = sl_mlstm_state_floats(s.dk, s.dv);
    sl_require(!s0 || s0->n == s.rows.n * H * ssz, "sl_mlstm", "s0 [rows, H, dk*dv + dk + 1]");
    sl_tensor *o = SL_NEW(ctx, s.B, s.T, H * s.dv);
    sl_node *nd = SL_RECORD(ctx, mlstm_backward, o, q, k, v, igate, lfgate, s0);
    float *states = NULL, *den = NULL;
    if (nd) {
        mlstm_saved *sv = sl_arena_alloc(&ctx->arena, sizeof *sv);
        sv->states = states = sl_arena_floats(ctx, sl_mlstm_states_floats(&s));
        sv->den = den = sl_arena_floats(ctx, s.B * s.T * H);
        nd->saved = sv;
        SL_KEEP_DESC(ctx, nd, s);
    }
    sl_mlstm_fwd(&s, q->data, k->data, v->data, igate->data, lfgate->data, s0 ? s0->data : NULL,
                 o->data, states, den, s_final, sl_arena_floats(ctx, sl_mlstm_scratch_floats(&s)));
    return o;
}

/* q, k: [B, T, H*dk], v: [B, T, H*dv], the rest as sl_mlstm_in. */
sl_tensor *sl_mlstm(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *igate,
                    sl_tensor *lfgate, sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                    const sl_seqs *seqs)
{
    sl_require(q->ndim == 3 && sl_same_shape(q, k) && v->ndim == 3 && H > 0 &&
                   q->shape[2] % H == 0 && v->shape[2] % H == 0,
               "sl_mlstm", "q, k [B, T, H*dk], v [B, T, H*dv], H > 0");
    const sl_rec_in in = {.q = q, .k = k, .v = v, .dk = q->shape[2] / H, .dv = v->shape[2] / H};
    return sl_mlstm_in(ctx, &in, igate, lfgate, s0, H, C, s_final, seqs);
}

/* ------------------------------------------------------ reference, step */

/* Layouts as sl_mlstm. The recurrence exactly as written in mlstm.h, in
 * double; a fresh state's m is the sentinel (e^(-1e30 + ..) = 0 in double). */
void sl_mlstm_ref(const float *q, const float *k, const float *v, const float *igate,
                  const float *lfgate, const float *s0, int64_t B, int64_t T, int64_t H,
                  int64_t dk, int64_t dv, float *h, float *s_final, const sl_seqs *seqs)
{
    const int64_t ssz = sl_mlstm_state_floats(dk, dv), rows = sl_seq_count(seqs, B);
    double *S = malloc((size_t)ssz * sizeof(double));
    sl_require(S != NULL, "sl_mlstm_ref", "memory for one state");
    double *Cs = S, *n = S + dk * dv;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t hh = 0; hh < H; hh++) {
            const int64_t rh = r * H + hh, t0 = sl_seq_start(seqs, r, T);
            const int64_t len = sl_seq_len(seqs, r, T);
            for (int64_t i = 0; i < dk * dv + dk; i++) S[i] = s0 ? s0[rh * ssz + i] : 0.0;
            double m = s0 ? s0[rh * ssz + ssz - 1] : (double)SL_MLSTM_M_FRESH;
            for (int64_t t = t0; t < t0 + len; t++) {
                const float *qt = q + t * H * dk + hh * dk, *kt = k + t * H * dk + hh * dk;
                const float *vt = v + t * H * dv + hh * dv;
                const double it = igate[t * H + hh], lf = lfgate[t * H + hh];
                const double mt = fmax(lf + m, it);
                const double a = exp(lf + m - mt), bw = exp(it - mt);
                for (int64_t d = 0; d < dk; d++) {
                    for (int64_t j = 0; j < dv; j++)
                        Cs[d * dv + j] = a * Cs[d * dv + j] + bw * (double)kt[d] * vt[j];
                    n[d] = a * n[d] + bw * kt[d];
                }
                double den = 0.0;
                for (int64_t d = 0; d < dk; d++) den += n[d] * qt[d];
                const double z = fmax(fabs(den), floor_ref(mt));
                for (int64_t j = 0; j < dv; j++) {
                    double acc = 0.0;
                    for (int64_t d = 0; d < dk; d++) acc += Cs[d * dv + j] * qt[d];
                    h[t * H * dv + hh * dv + j] = (float)(acc / z);
                }
                m = mt;
            }
            if (s_final) {
                for (int64_t i = 0; i < dk * dv + dk; i++) s_final[rh * ssz + i] = (float)S[i];
                s_final[rh * ssz + ssz - 1] = (float)m;
            }
        }
    free(S);
}

/* state: [H, dk*dv + dk + 1] in place; q, k: [H*dk], v: [H*dv], igate,
 * lfgate: [H] -> h: [H*dv]. */
void sl_mlstm_step(float *state, const float *q, const float *k, const float *v, const float *igate,
                   const float *lfgate, int64_t H, int64_t dk, int64_t dv, float *h)
{
    const int64_t ssz = sl_mlstm_state_floats(dk, dv);
    for (int64_t hh = 0; hh < H; hh++) {
        float *Cs = state + hh * ssz, *n = Cs + dk * dv, *m = n + dk, *oh = h + hh * dv;
        const float *qh = q + hh * dk, *kh = k + hh * dk, *vh = v + hh * dv;
        const float it = igate[hh], lf = lfgate[hh];
        /* Exponents in double, against m rounded to the float it is kept
         * as (the chunked form's reasons: m and lf + m can be huge). */
        const float mt = (float)fmax((double)lf + *m, (double)it);
        const float a = sl_expf((float)(((double)lf + *m) - mt));
        const float bw = sl_expf((float)((double)it - mt));
        float den = 0.0f;
        memset(oh, 0, (size_t)dv * sizeof(float));
        for (int64_t d = 0; d < dk; d++) {
            float *row = Cs + d * dv;
            const float kb = bw * kh[d];
#pragma omp simd
            for (int64_t j = 0; j < dv; j++) {
                row[j] = a * row[j] + kb * vh[j];
                oh[j] += row[j] * qh[d];
            }
            n[d] = a * n[d] + kb;
            den += n[d] * qh[d];
        }
        const float fl = sl_expf(-mt), z = fabsf(den) > fl ? fabsf(den) : fl, inv = 1.0f / z;
        for (int64_t j = 0; j < dv; j++) oh[j] *= inv;
        *m = mt;
    }
}
