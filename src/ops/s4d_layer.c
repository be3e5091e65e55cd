/* The S4D SSM layer piece: parameters with their inits, the forward (with
 * or without a carried state) and the step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fftconv.h"
#include "ops/s4d_kernel.h"
#include "ops/s4d_layer.h"
#include "ops/s4d_state.h"

/* A's initial values: log(-Re A) and Im A, [H, M] each. */
static void init_a(const char *kind, int64_t H, int64_t M, float *log_re, float *im)
{
    const double N = 2.0 * (double)M, pi = 3.14159265358979323846;
    for (int64_t c = 0; c < H; c++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t i = c * M + m;
            const double n = (double)m;
            log_re[i] = (float)log(strcmp(kind, "real") == 0 ? n + 1.0 : 0.5);
            im[i] = strcmp(kind, "lin") == 0   ? (float)(pi * n)
                    : strcmp(kind, "inv") == 0 ? (float)(N / pi * (N / (2.0 * n + 1.0) - 1.0))
                                               : 0.0f;
        }
}

sl_status sl_s4d_ssm_params(sl_s4d_ssm *s, sl_params *p, const char *who, const char *prefix,
                            int64_t H, int64_t N, const char *init, bool causal)
{
    if (N % 2)
        return sl_fail(SL_ERR_CONFIG, "mixer '%s': d_state %lld must be even (N/2 complex modes)",
                       who, (long long)N);
    const int64_t M = N / 2, S = causal ? 1 : 2;
    s->H = H;
    s->M = M;
    s->causal = causal;
    float *a = malloc((size_t)(2 * H * M) * sizeof(float));
    if (!a) return sl_fail(SL_ERR_OOM, "%sA: out of memory", prefix);
    init_a(init, H, M, a, a + H * M);
    char name[96];
#define NAME(x) (snprintf(name, sizeof name, "%s%s", prefix, x), name)
    s->log_dt = SL_PARAM_RANGE(p, NAME("log_dt"), SL_INIT_LOG_UNIFORM, 1e-3f, 0.1f, false, H);
    s->a_log_re = sl_param_add_fixed(p, NAME("A.log_re"), 2, (int64_t[]){H, M}, a, false);
    s->a_im = sl_param_add_fixed(p, NAME("A.im"), 2, (int64_t[]){H, M}, a + H * M, false);
    s->c = SL_PARAM(p, NAME("C"), SL_INIT_NORMAL, 0.70710678f, true, S, H, M, 2);
    s->d = SL_PARAM(p, NAME("D"), SL_INIT_NORMAL, 1.0f, true, H);
#undef NAME
    free(a);
    return SL_OK;
}

int64_t sl_s4d_ssm_state_floats(const sl_s4d_ssm *s) { return 2 * s->H * s->M; }

int64_t sl_s4d_ssm_scratch_floats(const sl_s4d_ssm *s) { return 4 * s->H * s->M; }

sl_tensor *sl_s4d_ssm_forward(sl_ctx *ctx, const sl_s4d_ssm *s, sl_tensor *u, float *state,
                              int64_t sf, int64_t off, int64_t pos, const sl_seqs *seqs)
{
    sl_tensor *K = sl_s4d_kernel(ctx, s->log_dt, s->a_log_re, s->a_im, s->c, s->d, u->shape[1]);
    sl_tensor *y = sl_fftconv(ctx, u, K, s->causal, seqs);
    if (!state) return y;
    sl_require(s->causal, "s4d", "a carried state only in the causal form");
    sl_require(sl_seqs_check(seqs, u, "s4d") == SL_OK, "s4d",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, H]");
    const sl_state_part sp = sl_state_take(ctx, state, sf, off, sl_s4d_ssm_state_floats(s),
                                           sl_seq_count(seqs, u->shape[0]), pos);
    y = sl_s4d_state(ctx, y, u, sp.s0, sp.s_final, s->log_dt, s->a_log_re, s->a_im, s->c, seqs);
    sl_state_put(&sp);
    return y;
}

/* Cache layout: a valid flag, E [H, M, 2], Bbar [H, M, 2], then the
 * parameters they came from: log_dt [H], A.log_re [H, M], A.im [H, M]. */
int64_t sl_s4d_ssm_cache_floats(int64_t H, int64_t N) { return 1 + 2 * H * N + H + H * N; }

/* Whether the cache's copy of the parameters is theirs byte for byte. */
static bool cache_current(const sl_s4d_ssm *s, const float *key)
{
    const size_t H = (size_t)s->H, HM = (size_t)(s->H * s->M);
    return memcmp(key, s->log_dt->data, H * sizeof(float)) == 0 &&
           memcmp(key + H, s->a_log_re->data, HM * sizeof(float)) == 0 &&
           memcmp(key + H + HM, s->a_im->data, HM * sizeof(float)) == 0;
}

void sl_s4d_ssm_step(const sl_s4d_ssm *s, float *state, const float *u, float *y, float *scratch)
{
    const int64_t sf = sl_s4d_ssm_state_floats(s), H = s->H, HM = s->H * s->M;
    float *E = s->cache ? s->cache + 1 : scratch, *Bb = E + sf;
    if (!s->cache) {
        sl_s4d_modes(H, s->M, s->log_dt->data, s->a_log_re->data, s->a_im->data, E, Bb);
    } else {
        float *key = Bb + sf;
        /* Sequences stepped on several threads share the cache. */
#pragma omp critical(sl_s4d_ssm_cache)
        if (s->cache[0] == 0 || !cache_current(s, key)) {
            sl_s4d_modes(H, s->M, s->log_dt->data, s->a_log_re->data, s->a_im->data, E, Bb);
            memcpy(key, s->log_dt->data, (size_t)H * sizeof(float));
            memcpy(key + H, s->a_log_re->data, (size_t)HM * sizeof(float));
            memcpy(key + H + HM, s->a_im->data, (size_t)HM * sizeof(float));
            s->cache[0] = 1;
        }
    }
    sl_s4d_step(H, s->M, E, Bb, s->c->data, s->d->data, u, state, y);
}
