/* Differentiable primitives. Each op allocates its output from the context's
 * arena, records itself on the tape when gradients are on, and has its
 * hand-written backward beside its forward in the same file. Fast paths keep
 * their naive reference (suffix _ref) next to them; tests compare the two and
 * check every backward by finite differences.
 *
 * Shapes: B batch, T time, D model width, H heads, V vocabulary. "[..., D]"
 * means any leading dims, flattened to rows. */
#ifndef SL_OPS_H
#define SL_OPS_H

#include "core/core.h"

/* ---- matmul.c ---------------------------------------------------------- */
/* y = x W^T + b. x: [..., K], w: [N, K] (PyTorch's Linear layout), b: [N] or
 * NULL; y: [..., N]. One sgemm forward, two backward (dx, dW), row sums (db). */
sl_tensor *sl_linear(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *b);
/* Batched matmul C[i] = op(A[i]) op(B[i]), op = transpose when ta/tb.
 * a: [Bt, M, K] (or [K, M] when ta), b: [Bt, K, N] (or [N, K] when tb),
 * 2-D inputs are a batch of one; c: [Bt, M, N]. */
sl_tensor *sl_matmul(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, bool ta, bool tb);
/* Naive triple-loop reference of C = op(A) op(B) for row-major float
 * matrices; beta = 0 overwrites C, 1 accumulates. */
void sl_gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float beta, float *C);
/* The fast path behind every op here: OpenBLAS sgemm (sgemv when M == 1). */
void sl_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
             const float *B, float beta, float *C);

/* ---- elementwise.c ----------------------------------------------------- */
sl_tensor *sl_add(sl_ctx *ctx, sl_tensor *a, sl_tensor *b); /* same shape */
sl_tensor *sl_mul(sl_ctx *ctx, sl_tensor *a, sl_tensor *b); /* same shape */
sl_tensor *sl_scale(sl_ctx *ctx, sl_tensor *a, float s);

/* ---- norm.c -------------------------------------------------------------- */
/* LayerNorm over the last dim. x: [..., D], w: [D], b: [D] or NULL. */
sl_tensor *sl_layernorm(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *b, float eps);
/* RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * w. x: [..., D], w: [D]. */
sl_tensor *sl_rmsnorm(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, float eps);
/* Their kernels and row functions (for step()): ops/norm.h. */

/* ---- activation.c -------------------------------------------------------- */
/* GELU, tanh approximation (PyTorch's approximate='tanh'). */
sl_tensor *sl_gelu(sl_ctx *ctx, sl_tensor *x);
sl_tensor *sl_silu(sl_ctx *ctx, sl_tensor *x);
/* x: [..., 2F] -> silu(x[..., :F]) * x[..., F:]: [..., F]. */
sl_tensor *sl_swiglu(sl_ctx *ctx, sl_tensor *x);
/* a, z: [...] (same shape) -> a * silu(z), the output gate of Mamba-style
 * blocks; keeps no silu(z) for the backward (recomputed from z). */
sl_tensor *sl_silu_gate(sl_ctx *ctx, sl_tensor *a, sl_tensor *z);

/* ---- softmax.c ----------------------------------------------------------- */
/* Softmax over the last dim. */
sl_tensor *sl_softmax(sl_ctx *ctx, sl_tensor *x);

/* ---- embedding.c --------------------------------------------------------- */
/* w: [V, D], ids: [B*T] -> [B, T, D]. Ids must lie in [0, V) (callers
 * check), or be -1: a zero row that takes no gradient. */
sl_tensor *sl_embedding(sl_ctx *ctx, sl_tensor *w, const int32_t *ids, int64_t B, int64_t T);

/* ---- loss.c -------------------------------------------------------------- */
/* Mean cross-entropy over positions whose target != ignore_index.
 * logits: [..., V], targets: one per row. Returns [1]; 0 if every target is
 * ignored. */
sl_tensor *sl_cross_entropy(sl_ctx *ctx, sl_tensor *logits, const int32_t *targets,
                            int32_t ignore_index);

/* Mean squared error over counted rows: pred, target: [R, C] (target a
 * plain array), mask: [R], 1 = counted (NULL: all). Returns [1], the mean of
 * (pred - target)^2 over counted rows and their C columns; 0 if none. */
sl_tensor *sl_mse(sl_ctx *ctx, sl_tensor *pred, const float *target, const uint8_t *mask);

/* ---- dropout.c ----------------------------------------------------------- */
/* Inverted dropout with ctx->rng; the identity when !ctx->training or p == 0. */
sl_tensor *sl_dropout(sl_ctx *ctx, sl_tensor *x, float p);

/* ---- position.c ---------------------------------------------------------- */
/* x + pos[pos0 .. pos0+T). x: [B, T, D], pos: [Tmax, D]; with seqs (a packed
 * batch) t restarts at each sequence. */
sl_tensor *sl_add_positions(sl_ctx *ctx, sl_tensor *x, sl_tensor *pos, int64_t pos0,
                            const sl_seqs *seqs);
/* Rotary embedding on the q and k parts of a packed projection.
 * qkv: [B, T, (H + 2 Hkv) dh] laid out (q: [H, dh] | k: [Hkv, dh] | v:
 * [Hkv, dh]); pairs (i, i + dh/2) of each q and k head rotate by angle
 * (pos0 + t) * theta^(-2i/dh); v passes through.
 * seqs: NULL, or a packed batch (qkv [1, T, ...]) whose positions restart at
 * each sequence's start: token t of sequence i is at pos0 + t - cu[i]. */
sl_tensor *sl_rope_qk(sl_ctx *ctx, sl_tensor *qkv, int64_t H, int64_t Hkv, int64_t pos0,
                      float theta, const sl_seqs *seqs);
/* The same rotation on one vector of H heads, in place (for step()). x: [H*dh]. */
void sl_rope_apply(float *x, int64_t H, int64_t dh, int64_t pos, float theta);

/* ---- attention.c --------------------------------------------------------- */
/* Fused multi-head scaled dot-product attention with an online softmax, tiled
 * so memory is O(T) per head (no T x T buffer), forward and backward.
 * qkv: [B, T, (H + 2 Hkv) dh] packed (q: H heads | k: Hkv | v: Hkv), Hkv
 * dividing H (grouped-query attention: query head h reads key/value head
 * h / (H / Hkv); Hkv = H is multi-head, 1 multi-query); out: [B, T, H*dh].
 * causal: key j visible to query i iff j <= i; window > 0 also requires
 * |i - j| < window. Scale 1/sqrt(dh). seqs: NULL, or a packed batch (qkv
 * [1, T, ...]): no query sees a key of another sequence, and i, j above
 * count within the sequence (a block-diagonal mask; an empty sequence is
 * allowed). Work is split over (batch row or sequence) x head, each item one
 * thread's, so results do not depend on the thread count. */
sl_tensor *sl_attention(sl_ctx *ctx, sl_tensor *qkv, int64_t H, int64_t Hkv, bool causal,
                        int64_t window, const sl_seqs *seqs);
/* The obvious O(T^2)-memory reference (forward only) on the same layout. */
void sl_attention_ref(const float *qkv, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t dh,
                      bool causal, int64_t window, float *out, const sl_seqs *seqs);
/* One query against a KV cache, the state: kc, vc: [Tk, Hkv*dh] (rows are
 * the positions 0..Tk-1; the query sits at position Tk-1, so a row order
 * other than by position changes only the float sums), q: [H*dh] -> out:
 * [H*dh]. scratch: at least Tk floats. */
void sl_attention_decode(const float *kc, const float *vc, const float *q, int64_t Tk,
                         int64_t H, int64_t Hkv, int64_t dh, int64_t window, float *out,
                         float *scratch);

#endif
