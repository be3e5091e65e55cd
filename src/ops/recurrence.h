/* The decayed matrix-state recurrence behind linear attention (Katharopoulos
 * et al. 2020), RetNet (Sun et al. 2023), GLA (Yang et al. 2023) and SSD
 * (Dao & Gu 2024). Per batch row b and head h, with q_t, k_t in R^dk and
 * v_t in R^dv:
 *     S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,   o_t = S_t^T q_t
 * (S: [dk, dv]; the output is read after token t is written). The log decay
 * g_t is one of:
 *     none          g = 0                          (linear attention)
 *     per head      g = log_gamma[h], constant      (RetNet)
 *     per token     g: [B, T, H], one scalar a head (Mamba2 / SSD)
 *     per key dim   g: [B, T, H*dk]                 (GLA)
 * Three forms that agree: a chunkwise-parallel op with its backward (the
 * training path), a naive step-by-step reference, and a one-token step. */
#ifndef SL_OPS_RECURRENCE_H
#define SL_OPS_RECURRENCE_H

#include "core/core.h"
#include "ops/chunk_runtime.h"

/* q, k: [B, T, H*dk], v: [B, T, H*dv] -> o: [B, T, H*dv], chunks of C tokens.
 * seqs: NULL, or a packed batch (B = 1; see sl_seqs): each sequence is
 * chunked from its own start and its state starts from its own row of s0;
 * the "rows" below are then the seqs->n sequences, else the B batch rows.
 * g: NULL, [B, T, H] or [B, T, H*dk]; log_gamma: [H] or NULL (not both; the
 * caller keeps it alive until the backward has run). Log decays are <= 0:
 * then no exponent the op forms is positive, and any T stays finite (a
 * positive one is clamped at e^88 by sl_expf). s0: [rows, H, dk, dv] or
 * NULL (zeros). s_final: NULL, or [rows, H, dk, dv] written with S_T; it may be
 * s0's data. Gradients flow to q, k, v, g and s0, and through s_final when
 * it is a linked state part (sl_state_final_grad). */
sl_tensor *sl_recurrence(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *g,
                         const float *log_gamma, sl_tensor *s0, int64_t H, int64_t C,
                         float *s_final, const sl_seqs *seqs);

/* Maps the op can apply to q and k as it reads them, fused: no mapped copy
 * is stored, and the gradient goes back through the map as it is written. */
enum { SL_REC_PLAIN, SL_REC_ELU1, SL_REC_RELU };

/* Where sl_recurrence_in reads q, k and v: blocks of columns of the last
 * dims of [B, T, *] tensors, read in place (q: columns [q_off, q_off + H*dk)
 * of the tensor q, and so on; q, k and v may be one packed projection). Their
 * gradients land in the same columns of the tensors' gradients, so the
 * projection needs no split into copies. On the way in, q and k go through
 * map (elu1: elu(x) + 1, relu), and are then scaled by q_scale and k_scale
 * (0 reads as 1). */
typedef struct sl_rec_in {
    sl_tensor *q, *k, *v;
    int64_t q_off, k_off, v_off;
    int64_t dk, dv;
    int map;
    float q_scale, k_scale;
} sl_rec_in;

/* What a chunked kernel keeps of an sl_rec_in: where each block's rows are
 * and what is applied to them as they are read. */
typedef struct sl_rec_layout {
    int64_t ldq, ldk, ldv;    /* row strides of the tensors q, k and v are read from */
    int64_t qoff, koff, voff; /* the first column of each block in its tensor */
    int map;
    float q_scale, k_scale; /* 1 for none */
} sl_rec_layout;

/* The kernel apart from the tape: what one run needs to know besides its
 * pointers. decay says what the log decay is: none, log_gamma per head
 * (caller-owned, alive until the backward has run), or g per token [B, T, H]
 * or per key dim [B, T, H*dk], passed to the kernel with the tensors. */
enum { SL_REC_DECAY_NONE, SL_REC_DECAY_HEAD, SL_REC_DECAY_TOKEN, SL_REC_DECAY_KEY };
typedef struct sl_recurrence_desc {
    int64_t B, T, H, dk, dv, C;
    sl_rec_layout io;   /* where q, k and v are read from */
    sl_chunk_rows rows; /* the sequences and their chunks */
    int decay;
    const float *log_gamma; /* [H] (SL_REC_DECAY_HEAD) */
    const float *ds_final;  /* [rows, H, dk, dv], the gradient w.r.t. s_final, or NULL */
} sl_recurrence_desc;

/* Floats of scratch sl_recurrence_fwd and sl_recurrence_bwd need (one
 * buffer per thread), and of the chunk-entry states the forward saves for
 * the backward ([chunks, H, dk, dv], sl_chunk_state_at). */
int64_t sl_recurrence_scratch_floats(const sl_recurrence_desc *d);
int64_t sl_recurrence_states_floats(const sl_recurrence_desc *d);

/* q, k, v: the tensors the blocks are read from (d->io), g as d->decay says
 * (or NULL), s0: [rows, H, dk, dv] or NULL -> o: [B*T, H*dv]; states (NULL
 * when no backward follows) and s_final (or NULL) written. */
void sl_recurrence_fwd(const sl_recurrence_desc *d, const float *q, const float *k,
                       const float *v, const float *g, const float *s0, float *o, float *states,
                       float *s_final, float *scratch);
/* The adjoint from the forward's states and dout: [B*T, H*dv]; each
 * gradient (laid out as its input) is added to, or NULL when not wanted. */
void sl_recurrence_bwd(const sl_recurrence_desc *d, const float *q, const float *k,
                       const float *v, const float *g, const float *states, const float *dout,
                       float *dq, float *dk, float *dv, float *dg, float *ds0, float *scratch);

/* in's layout. Aborts naming op unless in's tensors are [B, T, *] alike
 * with its blocks in range, and blocks of one tensor coincide or do not
 * overlap (the backward writes each head's columns from its own thread, so
 * a partial overlap would race). */
sl_rec_layout sl_rec_in_layout(const sl_rec_in *in, int64_t H, const char *op);

/* sl_recurrence on blocks of in's tensors: the same op, state and
 * gradients. */
sl_tensor *sl_recurrence_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *g,
                            const float *log_gamma, sl_tensor *s0, int64_t H, int64_t C,
                            float *s_final, const sl_seqs *seqs);

/* The non-causal form with a symmetric decay (bidirectional linear
 * attention; RetNet / TransNormer encoders): over each whole row or packed
 * sequence,
 *     o_t = sum_j e^(|t - j| log_gamma[h]) (q_t . k_j) v_j
 * with q, k, v the blocks of in (mapped and scaled as sl_recurrence_in reads
 * them) and log_gamma: [H] or NULL (no decay); o: [B, T, H*dv]; no state in
 * or out. Built from ops: the causal op (j <= t), plus the causal op over
 * time-reversed sequences (j >= t), minus the diagonal j = t that both
 * count; so it is O(T) and its backward is theirs. */
sl_tensor *sl_recurrence_bidir(sl_ctx *ctx, const sl_rec_in *in, const float *log_gamma,
                               int64_t H, int64_t C, const sl_seqs *seqs);

/* The oracle: the recurrence token by token, state and sums in double.
 * Same layouts as sl_recurrence; g has gw floats per head (1 or dk) or is
 * NULL; s0 and s_final may be NULL. */
void sl_recurrence_ref(const float *q, const float *k, const float *v, const float *g, int64_t gw,
                       const float *log_gamma, const float *s0, int64_t B, int64_t T, int64_t H,
                       int64_t dk, int64_t dv, float *o, float *s_final, const sl_seqs *seqs);

/* One token of one sequence, state in place. state: [H, dk, dv], q, k:
 * [H*dk], v: [H*dv], g: [H*gw] or NULL, log_gamma: [H] or NULL -> o:
 * [H*dv]. */
void sl_recurrence_step(float *state, const float *q, const float *k, const float *v,
                        const float *g, int64_t gw, const float *log_gamma, int64_t H, int64_t dk,
                        int64_t dv, float *o);

#endif
