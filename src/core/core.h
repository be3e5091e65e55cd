/* Core mechanics shared by every op, mixer and model: tensors, the per-step
 * arena, the autodiff tape, the flat parameter buffer, RNG, threads, errors.
 *
 * Memory model: parameters own flat storage (sl_params); every activation and
 * every activation gradient comes from the context's arena, which is reset
 * after each optimizer step. After the first step the arena has grown to its
 * peak, so the training loop does no malloc. */
#ifndef SL_CORE_H
#define SL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/status.h"

#define SL_MAX_DIMS 4

/* ---------------------------------------------------------------- errors */
/* Sets the thread's error message (printf-style) and returns code, so a
 * failing function ends with `return sl_fail(SL_ERR_X, "file %s: ...", ...)`. */
sl_status sl_fail(sl_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Out of memory where there is no caller to return a status to (the
 * per-step arena, the tape, in the middle of an op): prints a message naming
 * what and how many bytes and exits with status 3, the CLI's out-of-memory
 * status, instead of crashing. Model, batch and cache sizes are planned
 * before a run starts (sl_mem_check), so reaching it means the plan's
 * estimate was short. */
_Noreturn void sl_out_of_memory(const char *what, size_t bytes);

/* A buffer of at least `bytes` (64-byte aligned, contents undefined) owned
 * by the calling thread and kept for its next call with the same slot, so
 * that a kernel's large per-call scratch is not faulted in anew each time
 * (src/core/scratch.c). Valid until the thread asks again for that slot;
 * one slot per kernel level that may hold a buffer while calling another
 * (base_conv's channel block around fftconv's per-thread rows). Out of
 * memory: sl_out_of_memory. */
typedef enum { SL_SCRATCH_FFT, SL_SCRATCH_BLOCK, SL_SCRATCH_SLOTS } sl_scratch_slot;
void *sl_scratch(sl_scratch_slot slot, size_t bytes);

/* Shapes and call contracts (an op's operands, a mixer's mode) are the
 * calling code's responsibility, so a mismatch is a bug in seqlab, not bad
 * user input: report it and stop, instead of a silent out-of-bounds read. */
static inline void sl_require(bool ok, const char *op, const char *expected)
{
    if (!ok) {
        fprintf(stderr, "seqlab: internal error: %s: expected %s\n", op, expected);
        abort();
    }
}

/* ----------------------------------------------------------------- sizes */
/* Sizes worked out before allocating. The arithmetic saturates: a product
 * or sum past INT64_MAX (or of a negative size) is INT64_MAX, so a chain of
 * them never wraps and the check at its end still refuses it. */
static inline int64_t sl_size_mul(int64_t a, int64_t b)
{
    int64_t r;
    return a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
static inline int64_t sl_size_add(int64_t a, int64_t b)
{
    int64_t r;
    return a < 0 || b < 0 || __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}
/* This machine's physical memory in bytes (sysconf), INT64_MAX if unknown. */
int64_t sl_phys_bytes(void);
/* SL_OK when `bytes` fits in physical memory; else SL_ERR_OOM with "WHAT
 * would take N bytes: out of memory (this machine has M bytes of physical
 * memory)", WHAT printf-style: name the key or argument that sets the size. */
sl_status sl_mem_check(int64_t bytes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- tensor */
typedef struct sl_tensor {
    float *data;
    float *grad; /* NULL until a backward pass needs it (see sl_grad) */
    int64_t shape[SL_MAX_DIMS];
    int ndim;
    int64_t n; /* number of elements */
    bool requires_grad;
} sl_tensor;

/* Product of shape[from..ndim). */
int64_t sl_numel_from(const sl_tensor *t, int from);
/* Last dimension, and the product of all the others ("rows"). */
static inline int64_t sl_last(const sl_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t sl_rows(const sl_tensor *t) { return t->n / sl_last(t); }
bool sl_same_shape(const sl_tensor *a, const sl_tensor *b);

/* ------------------------------------------------------------ sequences */
/* A packed batch of variable-length sequences: a [1, T, ...] tensor holding
 * n sequences end to end, sequence i being tokens [cu[i], cu[i+1]) with
 * cu[0] = 0 and cu[n] = T (cu: [n + 1], the cu_seqlens of flash-attention).
 * Ops that mix across time never mix across these bounds, and each
 * sequence's state (s0, s_final, caches) is its own row, as a batch row's
 * is. A NULL sl_seqs means a plain [B, T, ...] batch of equal lengths. */
typedef struct sl_seqs {
    int64_t n;
    const int64_t *cu;
} sl_seqs;

/* Rows a time-mixing op iterates: the sequences, or the B batch rows. */
static inline int64_t sl_seq_count(const sl_seqs *s, int64_t B) { return s ? s->n : B; }
/* Row i's first token, counted over all B*T tokens, and its length. */
static inline int64_t sl_seq_start(const sl_seqs *s, int64_t i, int64_t T)
{
    return s ? s->cu[i] : i * T;
}
static inline int64_t sl_seq_len(const sl_seqs *s, int64_t i, int64_t T)
{
    return s ? s->cu[i + 1] - s->cu[i] : T;
}
/* SL_OK when s is NULL, or when x is [1, T, ...] and s's bounds are
 * 0 = cu[0] <= cu[1] <= ... <= cu[n] = T with n >= 1; else an SL_ERR_ARG
 * naming `who`. */
sl_status sl_seqs_check(const sl_seqs *s, const sl_tensor *x, const char *who);
struct sl_ctx;
/* An arena copy of s (NULL for NULL), for an op whose backward reads the
 * bounds after the caller's array may be gone. */
const sl_seqs *sl_seqs_keep(struct sl_ctx *ctx, const sl_seqs *s);
/* For a chunked kernel: off[r] = the chunks of C tokens in the rows before
 * row r (of sl_seq_count(s, B), each chunked from its own start), off[rows]
 * the total; off: [rows + 1] from the arena. Saved per-chunk states are
 * indexed by it. */
int64_t *sl_seq_chunk_offsets(struct sl_ctx *ctx, const sl_seqs *s, int64_t B, int64_t T,
                              int64_t C);

/* ----------------------------------------------------------------- arena */
/* A bump allocator. When a step needs more than the block holds, it takes
 * overflow chunks from malloc; the next reset replaces the block with one
 * sized to the peak, so steady-state steps never call malloc. */
typedef struct sl_arena_chunk sl_arena_chunk;
typedef struct sl_arena {
    char *base;
    size_t cap, used, peak;
    size_t overflow_bytes;
    sl_arena_chunk *overflow;
} sl_arena;

void sl_arena_init(sl_arena *a, size_t cap);
void *sl_arena_alloc(sl_arena *a, size_t bytes); /* 64-byte aligned, never NULL (sl_out_of_memory) */
void sl_arena_reset(sl_arena *a);
void sl_arena_free(sl_arena *a);

/* -------------------------------------------------------------------- rng */
/* xoshiro256** seeded by splitmix64: fast, and its whole state (4 words)
 * goes into checkpoints so a resumed run draws the same numbers. */
typedef struct sl_rng { uint64_t s[4]; } sl_rng;
void sl_rng_seed(sl_rng *r, uint64_t seed);
uint64_t sl_rng_u64(sl_rng *r);
float sl_rng_uniform(sl_rng *r);          /* [0, 1) */
float sl_rng_normal(sl_rng *r);           /* N(0, 1) */
uint64_t sl_rng_below(sl_rng *r, uint64_t n); /* uniform integer in [0, n) */

/* ---------------------------------------------------------------- threads */
/* One knob for OpenMP and OpenBLAS (OpenBLAS's OpenMP build uses the same
 * pool, so the two never oversubscribe the cores). n <= 0: all cores. */
void sl_set_threads(int n);
int sl_get_threads(void);

/* Seconds on a monotonic clock, for step times and benchmarks. */
double sl_seconds(void);

/* ------------------------------------------------------------------- tape */
struct sl_ctx;
struct sl_node;
typedef void (*sl_backward_fn)(struct sl_ctx *ctx, const struct sl_node *node);

/* One recorded op. Inputs are tensors, as many as the op has (an arena
 * array of nin, in the order recorded; NULL for an absent optional input).
 * Anything else the backward needs goes in one of three places:
 *   desc   the op's sizes and scalars (a window, an epsilon, a transpose
 *          flag): one named struct, the one its kernel takes where it has
 *          one, copied into the arena by sl_keep_desc;
 *   saved  arena data the forward computes for the backward (statistics
 *          such as 1 / rms or log-sum-exp, packed bounds);
 *   aux    caller-owned data that outlives the step (token ids). */
typedef struct sl_node {
    sl_backward_fn backward;
    sl_tensor *out;
    sl_tensor **in; /* [nin] */
    int nin;
    const void *desc;
    void *saved;
    const void *aux;
} sl_node;

/* A mixer's carried state as part of the graph, for a backward that
 * recomputes a long sequence chunk by chunk (mixers/recompute.h): one part
 * of the state (a kernel's s0 and s_final), `len` floats at `off` in each
 * of n rows of the mixer's state. The kernel reads ds_final, the gradient
 * of the loss w.r.t. what it writes to s_final, in its backward; s0's
 * gradient is the part's share of the gradient w.r.t. the state entering
 * the call. Links live in the arena and die with the step. */
typedef struct sl_state_link {
    struct sl_state_link *next;
    struct sl_tensor *s0; /* [n, len] or NULL (a fresh state) */
    float *s_final;       /* [n, len] */
    float *ds_final;      /* [n, len], zeros until the recompute fills it */
    int64_t off, len;
} sl_state_link;

typedef struct sl_ctx {
    sl_arena arena;
    sl_node *tape;
    size_t tape_len, tape_cap;
    bool grad_enabled; /* record the tape */
    bool training;     /* dropout active */
    bool link_states;  /* carried states join the graph (sl_state_link) */
    sl_state_link *links;
    struct sl_ctx *child; /* a recompute's scratch context, made on first use */
    sl_rng rng;        /* dropout masks */
} sl_ctx;

void sl_ctx_init(sl_ctx *ctx, size_t arena_bytes);
void sl_ctx_free(sl_ctx *ctx);
/* Drop the tape and every activation; parameters are untouched. */
void sl_ctx_reset(sl_ctx *ctx);
/* The arena's peak bytes, with its recompute child's (the two are live at
 * once). */
size_t sl_ctx_peak(const sl_ctx *ctx);
/* ctx's child context (made on first use, freed with ctx), reset, with
 * ctx's training flag: the scratch in which a recompute runs one chunk. */
sl_ctx *sl_ctx_child(sl_ctx *ctx);
/* The gradient a kernel's backward adds for its final state: the link's
 * ds_final when s_final is a linked part (ctx->link_states), else NULL. */
const float *sl_state_final_grad(const sl_ctx *ctx, const float *s_final);

/* One part of a mixer's carried state as a kernel's operands: `len` floats
 * at offset `off` of each of n rows `sf` floats apart in `state` (the
 * mixer's [n, sf] state, holding `pos` tokens). A mixer takes each part,
 * hands s0 and s_final to the kernel that carries it, and puts it back. */
typedef struct sl_state_part {
    sl_tensor *s0;  /* [n, len]: the part's rows; NULL without a state or at
                     * pos 0, where the rows belong to another sequence */
    float *s_final; /* [n, len] for the kernel's final state; NULL without a state */
    float *state;
    int64_t sf, off, len, n;
} sl_state_part;
/* With ctx->link_states on, s0 needs a gradient and the part is linked
 * (sl_state_link), so the recompute can carry gradients across calls. */
sl_state_part sl_state_take(sl_ctx *ctx, float *state, int64_t sf, int64_t off, int64_t len,
                            int64_t n, int64_t pos);
/* Copies s_final back into the part's place in each row (nothing without
 * a state). */
void sl_state_put(const sl_state_part *p);

/* New activation from the arena; data uninitialised, grad NULL. */
sl_tensor *sl_tensor_new(sl_ctx *ctx, int ndim, const int64_t *shape);
#define SL_NEW(ctx, ...) \
    sl_tensor_new((ctx), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
/* Same shape as t, data uninitialised. */
sl_tensor *sl_tensor_like(sl_ctx *ctx, const sl_tensor *t);
/* A view with another shape over the same data (and grad); numel must match. */
sl_tensor *sl_view(sl_ctx *ctx, sl_tensor *t, int ndim, const int64_t *shape);
#define SL_VIEW(ctx, t, ...) \
    sl_view((ctx), (t), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
/* Rows [r0, r0 + nr) of t's first dim as a view over the same data (and
 * grad): t: [R, ...] -> [nr, ...]. One block of a packed weight, with its
 * gradient landing in place. */
sl_tensor *sl_view_rows(sl_ctx *ctx, sl_tensor *t, int64_t r0, int64_t nr);
float *sl_arena_floats(sl_ctx *ctx, int64_t n);

/* Records an op if gradients are on and any input needs one; sets
 * out->requires_grad accordingly. Returns the node to fill in, or NULL when
 * nothing is recorded (the forward then skips saving anything). */
sl_node *sl_record(sl_ctx *ctx, sl_backward_fn fn, sl_tensor *out, int nin, sl_tensor *const *in);
/* As sl_record, but records whenever gradients are on: for an op that
 * owns parameters it updates itself, which need gradients when no input
 * does. */
sl_node *sl_record_always(sl_ctx *ctx, sl_backward_fn fn, sl_tensor *out, int nin,
                          sl_tensor *const *in);
#define SL_RECORD(ctx, fn, out, ...) \
    sl_record((ctx), (fn), (out), (int)(sizeof((sl_tensor *[]){__VA_ARGS__}) / sizeof(sl_tensor *)), \
              (sl_tensor *[]){__VA_ARGS__})

/* Copies an op's descriptor (bytes at desc) into the arena and points
 * node->desc at the copy; the caller's struct need not outlive the call. */
void sl_keep_desc(sl_ctx *ctx, sl_node *node, const void *desc, size_t bytes);
#define SL_KEEP_DESC(ctx, node, d) sl_keep_desc((ctx), (node), &(d), sizeof(d))

/* The gradient buffer of t, allocated from the arena and zeroed on first use
 * (parameters already own theirs). Backward functions accumulate into it. */
float *sl_grad(sl_ctx *ctx, sl_tensor *t);
/* Seeds d(loss)/d(loss) = 1 and runs the tape backwards. loss: [1]. */
void sl_backward(sl_ctx *ctx, sl_tensor *loss);
/* Runs the tape backwards from out with d(out) = dout (out->n floats). */
void sl_backward_with(sl_ctx *ctx, sl_tensor *out, const float *dout);

/* ---------------------------------------------------------------- params */
/* How sl_params_randomize fills a parameter, element by element:
 *   ZEROS, ONES   0, 1
 *   NORMAL        scale * N(0, 1)
 *   UNIFORM       scale * U(-1, 1)
 *   A_LOG         log(a), a uniform in (lo, hi] (lo >= 0): a state space
 *                 model's decay rate A = exp(A_log) per head
 *   DT_BIAS       softplus^-1(dt) = dt + log(-expm1(-dt)), dt log-uniform in
 *                 [lo, hi) (lo > 0): a time-step bias, so that at a zero
 *                 input softplus(dt_bias) = dt
 *   LOG_UNIFORM   log(a), a log-uniform in [lo, hi) (lo > 0): S4D's log dt
 *   FIXED         the values given at declaration (sl_param_add_fixed), no
 *                 draws: a structured init such as S4D's A
 *   ONES_SPAN     1 for the elements [lo, hi) of the flat tensor, 0 elsewhere:
 *                 one gate's block of a packed bias (the LSTM's forget gate)
 * DT_BIAS is Mamba's dt init (Gu & Dao 2023), A_LOG Mamba-2's A init (Dao &
 * Gu 2024); Gated DeltaNet uses both, Mamba DT_BIAS. Their
 * ranges (and LOG_UNIFORM's) are given with sl_param_add_range. */
typedef enum {
    SL_INIT_ZEROS,
    SL_INIT_ONES,
    SL_INIT_NORMAL,
    SL_INIT_UNIFORM,
    SL_INIT_A_LOG,
    SL_INIT_DT_BIAS,
    SL_INIT_LOG_UNIFORM,
    SL_INIT_FIXED,
    SL_INIT_ONES_SPAN
} sl_init_kind;

typedef struct sl_param {
    char name[96];
    sl_tensor t;     /* data/grad point into the flat buffers */
    size_t offset;   /* in floats, into each flat buffer */
    sl_init_kind init;
    float scale;     /* std for NORMAL, half-width for UNIFORM */
    float lo, hi;    /* the range of A_LOG and DT_BIAS, the span of ONES_SPAN */
    bool decay;      /* AdamW weight decay applies (not for norms and biases) */
    float *fixed;    /* FIXED's values: [t.n], owned */
} sl_param;

/* All parameters of a model in one flat buffer, and one each for gradients
 * and the two AdamW moments, so optimizer, zero-grad, grad-norm and
 * checkpoint I/O are flat loops. */
typedef struct sl_params {
    sl_param **list;
    size_t count, cap;
    char prefix[64]; /* prepended to names while declaring ("blocks.3.mixer.") */
    float *data, *grad, *m, *v;
    size_t total; /* floats in each flat buffer, including alignment padding */
} sl_params;

void sl_params_init(sl_params *p);
void sl_params_free(sl_params *p);
/* Declares a parameter; the returned tensor's storage exists after
 * sl_params_finalize. Names are prefix + name and must be unique. */
sl_tensor *sl_param_add(sl_params *p, const char *name, int ndim, const int64_t *shape,
                        sl_init_kind init, float scale, bool decay);
#define SL_PARAM(p, name, init, scale, decay, ...)                                         \
    sl_param_add((p), (name), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                 (int64_t[]){__VA_ARGS__}, (init), (scale), (decay))
/* The same for the ranged kinds (A_LOG, DT_BIAS): values drawn from [lo, hi]
 * as above. sl_params_finalize rejects a range the kind cannot take. */
sl_tensor *sl_param_add_range(sl_params *p, const char *name, int ndim, const int64_t *shape,
                              sl_init_kind init, float lo, float hi, bool decay);
#define SL_PARAM_RANGE(p, name, init, lo, hi, decay, ...)                                        \
    sl_param_add_range((p), (name), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                       (int64_t[]){__VA_ARGS__}, (init), (lo), (hi), (decay))
/* A FIXED parameter: its initial values are a copy of values: [numel]. */
sl_tensor *sl_param_add_fixed(sl_params *p, const char *name, int ndim, const int64_t *shape,
                              const float *values, bool decay);
sl_status sl_params_finalize(sl_params *p);
/* Draws every parameter from its init rule, in declaration order, from the
 * one stream rng: the same seed gives the same parameters. NORMAL takes two
 * 64-bit draws per element, UNIFORM, A_LOG and DT_BIAS one, ZEROS and ONES
 * and ONES_SPAN none. */
void sl_params_randomize(sl_params *p, sl_rng *rng);
sl_param *sl_params_find(const sl_params *p, const char *name);
size_t sl_params_numel(const sl_params *p); /* without padding */
void sl_params_zero_grad(sl_params *p);

#endif
