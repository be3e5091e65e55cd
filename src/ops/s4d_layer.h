/* The diagonal SSM of S4D as one layer piece, shared by the s4d and h3
 * mixers (src/mixers/s4d.c, h3.c): its parameters and their S4D inits, the
 * convolution form (sl_s4d_kernel -> sl_fftconv), the carried state's
 * terms (sl_s4d_state) when a state is given, and the one-token step.
 *
 *   y = K * u + D u,  K[l] = 2 Re sum_m C_m Bbar_m E_m^l   (ops/s4d_kernel.h)
 *
 * Parameters, declared in this order under a name prefix: log_dt [H],
 * A.log_re [H, M], A.im [H, M], C [S, H, M, 2], D [H] (S = 2 when
 * bidirectional). Inits: log_dt log-uniform over dt in [1e-3, 0.1]; A per
 * init (lin: -1/2 + i pi m; inv: -1/2 + i (N/pi)(N/(2m+1) - 1); real:
 * -(m+1)); C complex normal (each part N(0, 1/2)); D N(0, 1). State per
 * sequence: the modes x_m, [H, M, 2] floats (re, im). */
#ifndef SL_OPS_S4D_LAYER_H
#define SL_OPS_S4D_LAYER_H

#include <stdbool.h>

#include "core/core.h"

/* cache: NULL, or sl_s4d_ssm_cache_floats floats the owner keeps (zeroed
 * at first) where the step keeps E and Bbar between tokens with a copy of
 * the log_dt and A they came from: a token then costs O(H M) multiply-adds
 * instead of H M complex exponentials, and a changed parameter (a training
 * step, a loaded checkpoint) is seen by the copy's comparison. */
typedef struct sl_s4d_ssm {
    sl_tensor *log_dt, *a_log_re, *a_im, *c, *d;
    int64_t H, M;
    bool causal;
    float *cache;
} sl_s4d_ssm;

/* Declares the parameters (names prefix + "log_dt", ...) of H channels of
 * N/2 modes with A's init "lin", "inv" or "real". SL_OK; SL_ERR_CONFIG
 * naming mixer `who` for an odd N; SL_ERR_OOM. */
sl_status sl_s4d_ssm_params(sl_s4d_ssm *s, sl_params *p, const char *who, const char *prefix,
                            int64_t H, int64_t N, const char *init, bool causal);
/* Floats of one sequence's state (H*M*2), and of sl_s4d_ssm_step's scratch. */
int64_t sl_s4d_ssm_state_floats(const sl_s4d_ssm *s);
int64_t sl_s4d_ssm_scratch_floats(const sl_s4d_ssm *s);
/* Floats of the step's cache for H channels of state size N. */
int64_t sl_s4d_ssm_cache_floats(int64_t H, int64_t N);

/* u: [B, T, H] -> y: [B, T, H], the convolution form, on the tape. With a
 * state (causal only): the modes are the part of H*M*2 floats at `off` in
 * each row of state, [rows, sf], holding pos tokens (read as zeros at pos
 * 0), taken through sl_state_take: the convolution plus the state's terms
 * (ops/s4d_state.h), leaving each sequence's final modes there; gradients
 * flow to s0, and from s_final when the part is linked. */
sl_tensor *sl_s4d_ssm_forward(sl_ctx *ctx, const sl_s4d_ssm *s, sl_tensor *u, float *state,
                              int64_t sf, int64_t off, int64_t pos, const sl_seqs *seqs);
/* One token: u: [H] -> y: [H]; state: [H, M, 2]. */
void sl_s4d_ssm_step(const sl_s4d_ssm *s, float *state, const float *u, float *y, float *scratch);

#endif
