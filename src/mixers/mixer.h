/* The sequence-mixer interface: the one pluggable part of a block.
 *
 * A mixer has two forms that must agree: `forward`, the parallel form over a
 * whole sequence (training and prompt prefill), and `step`, the incremental
 * form that consumes one token and a fixed-layout state (the KV cache for
 * attention, a matrix or vector state for recurrent mixers). Adding a paper's
 * mixer = one file here with a vtable, plus one line in registry.c. */
#ifndef SL_MIXER_H
#define SL_MIXER_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/options.h"

typedef struct sl_mixer sl_mixer;

/* What a mixer knows of the model around it: the shared dimensions and the
 * few model-wide knobs several mixers read. Its own settings are its
 * options (sl_mixer.opts), declared in its vtable. */
typedef struct sl_mixer_dims {
    int64_t d_model, n_heads, n_layers, max_seq_len;
    int64_t chunk_size; /* tokens per chunk of a chunkwise-parallel form */
    int64_t conv_size;  /* short causal depthwise conv kernel; 0 = none */
    bool causal, bias;
    bool rope;          /* the model's positions are RoPE, applied inside the mixer */
    double rope_theta, norm_eps, init_std;
} sl_mixer_dims;

/* How tests/test_mixers.c exercises a mixer, declared by the mixer: the
 * tolerances its fp32 fast forms meet against its step(), a split or a
 * packed batch, the finite-difference settings of its whole-mixer gradient
 * check, and the variants (settings "key=value,..." of its options and of
 * the sl_mixer_dims fields, plus `layer=i`) that cover all its paths. Zero
 * fields take the defaults in tests/mixer_check.h. */
typedef struct sl_mixer_checks {
    double tol;        /* step == forward, split == whole, packed == alone */
    double tol_packed; /* packed == alone, when tighter than tol */
    float fd_h;        /* finite-difference step */
    double fd_atol, fd_rtol;
    const char *const *variants; /* NULL-terminated; NULL: the defaults only */
} sl_mixer_checks;

typedef struct sl_mixer_vtable {
    const char *name;
    const char *paper;    /* citation shown by `seqlab mixers` */
    const char *equation; /* the recurrence or product in one line */
    sl_option_table options;
    /* Declares parameters; p->prefix is already "blocks.{i}.mixer.". */
    sl_status (*init)(sl_mixer *m, sl_params *p);
    /* x: [B, T, D] -> [B, T, D]. state == NULL: training, no state. Else
     * state: [B, state_floats] holding `pos` tokens already seen; the
     * forward continues from it and leaves it holding pos + T tokens.
     * seqs == NULL: B rows of T tokens. Else x is a packed batch [1, T, D]
     * of seqs->n sequences (see sl_seqs), each mixed as if run alone, and
     * state, when given, is [seqs->n, state_floats], every sequence at
     * `pos`. */
    sl_tensor *(*forward)(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                          const sl_seqs *seqs);
    /* Per-sequence state size for sequences up to max_len tokens. */
    int64_t (*state_floats)(const sl_mixer *m, int64_t max_len);
    /* Scratch floats step() needs. */
    int64_t (*scratch_floats)(const sl_mixer *m, int64_t max_len);
    /* One token of one sequence: x_t: [D] -> y_t: [D], at position pos. */
    void (*step)(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                 float *scratch);
    /* Whether step() and the stateful forward go on past max_seq_len
     * tokens: the state is bounded and nothing in the mixer is indexed by
     * position up to max_seq_len (a windowed ring cache). NULL: no. The
     * decoder then goes on as long as every layer streams and positions
     * are not learned. */
    bool (*streams)(const sl_mixer *m);
    /* Human-readable state size per token or per sequence, for `seqlab mixers`. */
    const char *state_desc;
    /* Has a non-causal form (config causal = false; forward only, no state
     * or step) besides its causal one. Creating a mixer without one in a
     * non-causal model fails. */
    bool bidirectional;
    /* The carried state takes no gradient: it grows with the length (a KV
     * cache, a long convolution's history) or its stateful forward is for
     * inference only. The mixer then trains whole, never in chunks
     * (mixers/recompute.h). */
    bool state_no_grad;
    /* Tokens a forward call must start at a multiple of for its carried
     * state to be all it needs from earlier calls, as the recompute
     * (mixers/recompute.h) requires; NULL means any position. */
    int64_t (*align)(const sl_mixer *m);
    /* Has only a non-causal form (a mixer that pools or scans over the
     * whole sequence, as PoNet and Hydra do): it builds only in a model
     * with causal = false, and state_floats, scratch_floats and step are
     * NULL (there is nothing to decode with). bidirectional is then false:
     * that flag means "besides a causal form". */
    bool noncausal_only;
    sl_mixer_checks checks;
} sl_mixer_vtable;

struct sl_mixer {
    const sl_mixer_vtable *vt;
    sl_mixer_dims dims;
    sl_opts opts; /* resolved values of vt->options */
    int64_t layer;
    void *impl;   /* the mixer's own parameters and settings (malloc'd) */
};

/* m->impl = `bytes` zeroed bytes for the mixer's own struct; NULL (with
 * an SL_ERR_OOM message naming the mixer) when memory runs out. */
static inline void *sl_mixer_impl(sl_mixer *m, size_t bytes)
{
    m->impl = calloc(1, bytes);
    if (!m->impl)
        sl_fail(SL_ERR_OOM, "mixer '%s' of layer %lld: out of memory", m->vt->name,
                (long long)m->layer);
    return m->impl;
}

/* The init std of a residual branch's output projection: GPT-2's
 * init_std / sqrt(2 n_layers), so the residual stream's variance does not
 * grow with depth. */
static inline float sl_mixer_out_std(const sl_mixer_dims *d)
{
    return (float)d->init_std / sqrtf(2.0f * (float)d->n_layers);
}

/* registry.c */
const sl_mixer_vtable *sl_mixer_lookup(const char *name);
size_t sl_mixer_count(void);
const sl_mixer_vtable *sl_mixer_at(size_t i);

/* Creates layer `layer`'s mixer from its vtable, dimensions and resolved
 * options (opts->table must be vt->options), and declares its params. */
sl_status sl_mixer_create(sl_mixer *m, const sl_mixer_vtable *vt, const sl_mixer_dims *dims,
                          const sl_opts *opts, int64_t layer, sl_params *p);
void sl_mixer_destroy(sl_mixer *m);

#endif
