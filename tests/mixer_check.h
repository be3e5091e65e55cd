/* Checks every mixer must pass, driven through its vtable alone: step()
 * equals forward, a sequence forwarded in two calls with the state carried
 * equals one call, the whole mixer's gradient matches finite differences
 * (input and a sample of every parameter), and long inputs with large
 * values stay finite through forward and backward. */
#ifndef SL_MIXER_CHECK_H
#define SL_MIXER_CHECK_H

#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "mixers/mixer.h"
#include "mixers/recompute.h"

/* A mixer's setting for a test: its dimensions, options and layer. */
typedef struct mc_cfg {
    sl_mixer_dims dims;
    sl_opts opts;
    int64_t layer;
} mc_cfg;

/* The setting every mixer test starts from: D = 16, H = 2 (dk = 8), 2
 * layers, chunks of 5, so a dozen tokens cross several chunks; init_std 0.3
 * makes every path matter to the output; the mixer's default options;
 * causal unless the mixer has only a non-causal form. */
static inline void mc_tiny(mc_cfg *c, const sl_mixer_vtable *vt)
{
    memset(c, 0, sizeof *c);
    c->dims = (sl_mixer_dims){.d_model = 16,
                              .n_heads = 2,
                              .n_layers = 2,
                              .max_seq_len = 256,
                              .chunk_size = 5,
                              .conv_size = 4,
                              .causal = !vt->noncausal_only,
                              .rope_theta = 10000.0,
                              .norm_eps = 1e-5,
                              .init_std = 0.3};
    CHECK(sl_opts_defaults(&c->opts, vt->options) == SL_OK, "%s: defaults: %s", vt->name,
          sl_errmsg());
}

/* Applies one "key=value" to c: a field of sl_mixer_dims, `layer`, or one
 * of the mixer's options. False for an unknown key or a bad value. */
static inline bool mc_set(mc_cfg *c, const sl_mixer_vtable *vt, const char *key, const char *v)
{
    sl_mixer_dims *d = &c->dims;
    struct { const char *key; int64_t *p; } ints[] = {
        {"d_model", &d->d_model},     {"n_heads", &d->n_heads},       {"n_layers", &d->n_layers},
        {"max_seq_len", &d->max_seq_len}, {"chunk_size", &d->chunk_size},
        {"conv_size", &d->conv_size}, {"layer", &c->layer}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(key, ints[i].key) == 0) {
            *ints[i].p = atoll(v);
            return true;
        }
    struct { const char *key; bool *p; } bools[] = {
        {"causal", &d->causal}, {"bias", &d->bias}, {"rope", &d->rope}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (strcmp(key, bools[i].key) == 0) {
            *bools[i].p = strcmp(v, "true") == 0;
            return true;
        }
    struct { const char *key; double *p; } nums[] = {
        {"rope_theta", &d->rope_theta}, {"norm_eps", &d->norm_eps}, {"init_std", &d->init_std}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (strcmp(key, nums[i].key) == 0) {
            *nums[i].p = atof(v);
            return true;
        }
    return sl_opts_set(&c->opts, vt->name, "test", key, v, SL_FROM_TEXT) == SL_OK;
}

/* A mixer of layer c->layer with its parameters declared, allocated and
 * drawn. */
typedef struct mc_mixer {
    sl_mixer m;
    sl_params p;
} mc_mixer;

static inline void mc_create(mc_mixer *mc, const sl_mixer_vtable *vt, const mc_cfg *cfg,
                             uint64_t seed)
{
    memset(mc, 0, sizeof *mc);
    sl_params_init(&mc->p);
    strcpy(mc->p.prefix, "blocks.0.mixer.");
    CHECK(sl_mixer_create(&mc->m, vt, &cfg->dims, &cfg->opts, cfg->layer, &mc->p) == SL_OK,
          "init: %s", sl_errmsg());
    CHECK(sl_params_finalize(&mc->p) == SL_OK, "finalize: %s", sl_errmsg());
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    sl_params_randomize(&mc->p, &rng);
}

static inline void mc_free(mc_mixer *mc)
{
    free(mc->m.impl);
    sl_params_free(&mc->p);
}

static inline void mc_fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* A forward over the first `prefill` tokens with a state (none when 0),
 * then step() for the rest, vs one forward over [1, T, D]: the state the
 * forward leaves must be the one step() reads. */
static inline void mc_check_step(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t T,
                                 int64_t prefill, double tol)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 1);
    int64_t D = cfg->dims.d_model;
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, 1, T, D);
    mc_fill(&rng, x->data, x->n, 1.0f);
    sl_tensor *y = vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
    float *state = calloc((size_t)vt->state_floats(&mc.m, T), sizeof(float));
    float *scratch = calloc((size_t)vt->scratch_floats(&mc.m, T), sizeof(float));
    float *yt = malloc((size_t)D * sizeof(float));
    double worst = 0;
    if (prefill > 0) {
        sl_tensor *xp = SL_NEW(&ctx, 1, prefill, D);
        memcpy(xp->data, x->data, (size_t)(prefill * D) * sizeof(float));
        sl_tensor *yp = vt->forward(&mc.m, &ctx, xp, state, 0, NULL);
        worst = close_ratio(yp->data, y->data, prefill * D, tol, tol);
    }
    for (int64_t t = prefill; t < T; t++) {
        vt->step(&mc.m, state, x->data + t * D, yt, t, scratch);
        double r = close_ratio(yt, y->data + t * D, D, tol, tol);
        if (r > worst) worst = r;
    }
    CHECK(worst <= 1, "%s: prefill %lld + steps vs forward over %lld tokens: ratio %g", vt->name,
          (long long)prefill, (long long)T, worst);
    free(state);
    free(scratch);
    free(yt);
    sl_ctx_free(&ctx);
    mc_free(&mc);
}

/* forward(x[:, :T1]) then forward(x[:, T1:]) with the state vs one forward
 * over B sequences, for each split point. */
static inline void mc_check_split(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t B,
                                  int64_t T, const int64_t *splits, int nsplits, double tol)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 3);
    int64_t D = cfg->dims.d_model, sf = vt->state_floats(&mc.m, T + 1);
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    for (int si = 0; si < nsplits; si++) {
        int64_t T1 = splits[si], T2 = T - T1;
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        ctx.grad_enabled = false;
        sl_tensor *x = SL_NEW(&ctx, B, T, D), *x1 = SL_NEW(&ctx, B, T1, D), *x2 = SL_NEW(&ctx, B, T2, D);
        mc_fill(&rng, x->data, x->n, 1.0f);
        for (int64_t b = 0; b < B; b++) {
            memcpy(x1->data + b * T1 * D, x->data + b * T * D, (size_t)(T1 * D) * sizeof(float));
            memcpy(x2->data + b * T2 * D, x->data + (b * T + T1) * D, (size_t)(T2 * D) * sizeof(float));
        }
        float *state = calloc((size_t)(B * sf), sizeof(float));
        /* Garbage in the state must not leak into a sequence that starts at pos 0. */
        for (int64_t i = 0; i < B * sf; i++) state[i] = 7.0f;
        sl_tensor *yw = vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
        sl_tensor *y1 = vt->forward(&mc.m, &ctx, x1, state, 0, NULL);
        sl_tensor *y2 = vt->forward(&mc.m, &ctx, x2, state, T1, NULL);
        double worst = 0;
        for (int64_t b = 0; b < B; b++) {
            double r1 = close_ratio(y1->data + b * T1 * D, yw->data + b * T * D, T1 * D, tol, tol);
            double r2 = close_ratio(y2->data + b * T2 * D, yw->data + (b * T + T1) * D, T2 * D, tol, tol);
            worst = fmax(worst, fmax(r1, r2));
        }
        CHECK(worst <= 1, "%s: split at %lld: ratio %g", vt->name, (long long)T1, worst);
        free(state);
        sl_ctx_free(&ctx);
    }
    mc_free(&mc);
}

/* The chunked recompute (mixers/recompute.h) against the plain forward and
 * backward over B sequences of T tokens, chunks of Tc: the output, the
 * input's gradient and every parameter's, each to tol relative to its rms
 * (the chunks' state hand-overs round as a split forward does). A mixer
 * that cannot run chunked is not checked. */
static inline void mc_check_recompute(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t B,
                                      int64_t T, int64_t Tc, double tol)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 8);
    if (!sl_mixer_chunkable(&mc.m)) {
        mc_free(&mc);
        return;
    }
    const int64_t n = B * T * cfg->dims.d_model, np = (int64_t)mc.p.total;
    sl_rng rng;
    sl_rng_seed(&rng, 9);
    float *x0 = malloc((size_t)n * sizeof(float)), *dy = malloc((size_t)n * sizeof(float));
    float *ref = malloc((size_t)(2 * n + np) * sizeof(float));
    mc_fill(&rng, x0, n, 1.0f);
    mc_fill(&rng, dy, n, 1.0f);
    for (int pass = 0; pass < 2; pass++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_params_zero_grad(&mc.p);
        sl_tensor *x = SL_NEW(&ctx, B, T, cfg->dims.d_model);
        memcpy(x->data, x0, (size_t)n * sizeof(float));
        x->requires_grad = true;
        sl_tensor *y = pass ? sl_mixer_recompute(&ctx, &mc.m, x, Tc)
                            : vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
        sl_backward_with(&ctx, y, dy);
        const float *got[3] = {y->data, sl_grad(&ctx, x), mc.p.grad};
        const int64_t len[3] = {n, n, np}, off[3] = {0, n, 2 * n};
        static const char *const what[3] = {"output", "input gradient", "parameter gradients"};
        for (int i = 0; i < 3; i++) {
            if (pass == 0) {
                memcpy(ref + off[i], got[i], (size_t)len[i] * sizeof(float));
                continue;
            }
            const double r = close_ratio(got[i], ref + off[i], len[i],
                                         tol * fmax(rms(ref + off[i], len[i]), 1e-6), tol);
            CHECK(r <= 1, "%s: recompute in chunks of %lld, %s: ratio %g", vt->name,
                  (long long)Tc, what[i], r);
        }
        sl_ctx_free(&ctx);
    }
    free(x0);
    free(dy);
    free(ref);
    mc_free(&mc);
}

/* The mixer and its input; gradcheck's in[] holds only the probed tensor. */
typedef struct mc_gc_arg {
    sl_mixer *m;
    sl_tensor *x;
} mc_gc_arg;

static inline sl_tensor *mc_forward_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    mc_gc_arg *a = arg;
    return a->m->vt->forward(a->m, ctx, a->x, NULL, 0, NULL);
}

/* d(mixer)/d(x) and d/d(every parameter), probing up to max_probe elements
 * of each. */
static inline void mc_check_gradient(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t B,
                                     int64_t T, float h, double atol, double rtol, int64_t max_probe)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 5);
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, B, T, cfg->dims.d_model);
    size_t nin = 1 + mc.p.count;
    sl_tensor **in = malloc(nin * sizeof *in);
    in[0] = x;
    for (size_t i = 0; i < mc.p.count; i++) in[1 + i] = &mc.p.list[i]->t;
    mc_gc_arg a = {&mc.m, x};
    for (size_t i = 0; i < nin; i++) {
        /* One input at a time, so a failure names it; the parameters not
         * probed still accumulate into p.grad, which nothing reads. */
        const char *name = i ? mc.p.list[i - 1]->name : "input";
        CHECK(gradcheck(name, mc_forward_fn, &in[i], 1, &a, h, atol, rtol, max_probe), "%s: %s",
              vt->name, name);
    }
    free(in);
    gc_free(x);
    mc_free(&mc);
}

/* Forward and backward over [1, T, D] inputs of the given scale: every
 * output and input gradient finite. */
static inline void mc_check_long_finite(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t T,
                                        float scale)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 7);
    sl_rng rng;
    sl_rng_seed(&rng, 8);
    sl_tensor *x = GC_LEAF(&rng, scale, 1, T, cfg->dims.d_model);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
    float *dy = malloc((size_t)y->n * sizeof(float));
    mc_fill(&rng, dy, y->n, 1.0f);
    sl_backward_with(&ctx, y, dy);
    bool finite = true;
    for (int64_t i = 0; i < y->n; i++) finite &= isfinite(y->data[i]) && isfinite(x->grad[i]);
    for (size_t i = 0; i < mc.p.total; i++) finite &= isfinite(mc.p.grad[i]);
    CHECK(finite, "%s: T %lld scale %g: finite outputs and gradients", vt->name, (long long)T, scale);
    free(dy);
    sl_ctx_free(&ctx);
    gc_free(x);
    mc_free(&mc);
}

/* A packed batch [1, sum(lens), D] with its sl_seqs vs each sequence run
 * alone as [1, len, D]: outputs, and the input gradient under the same
 * upstream gradient, must agree (nothing leaks across a bound, in either
 * pass). With `stateful`, the packed forward also starts every sequence from
 * its own state carried in from a first call over `pre` tokens, and must
 * leave the state each one-by-one run leaves. lens may hold 0 (an empty
 * sequence), and should hold lengths on both sides of the chunk size. */
static inline void mc_check_packed(const sl_mixer_vtable *vt, const mc_cfg *cfg,
                                   const int64_t *lens, int64_t n, double tol)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 9);
    const int64_t D = cfg->dims.d_model;
    int64_t *cu = malloc((size_t)(n + 1) * sizeof *cu);
    cu[0] = 0;
    for (int64_t i = 0; i < n; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[n];
    sl_seqs seqs = {n, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 10);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *x = SL_NEW(&ctx, 1, T, D);
    x->requires_grad = true;
    mc_fill(&rng, x->data, x->n, 1.0f);
    float *dy = malloc((size_t)(T * D) * sizeof(float));
    mc_fill(&rng, dy, T * D, 1.0f);
    sl_tensor *y = vt->forward(&mc.m, &ctx, x, NULL, 0, &seqs);
    sl_backward_with(&ctx, y, dy);
    double worst_y = 0, worst_dx = 0;
    for (int64_t i = 0; i < n; i++) {
        if (lens[i] == 0) continue;
        sl_ctx c1;
        sl_ctx_init(&c1, 1 << 20);
        sl_tensor *xi = SL_NEW(&c1, 1, lens[i], D);
        xi->requires_grad = true;
        memcpy(xi->data, x->data + cu[i] * D, (size_t)(lens[i] * D) * sizeof(float));
        sl_tensor *yi = vt->forward(&mc.m, &c1, xi, NULL, 0, NULL);
        sl_backward_with(&c1, yi, dy + cu[i] * D);
        worst_y = fmax(worst_y, close_ratio(y->data + cu[i] * D, yi->data, lens[i] * D, tol, tol));
        worst_dx = fmax(worst_dx, close_ratio(x->grad + cu[i] * D, xi->grad, lens[i] * D, tol, tol));
        sl_ctx_free(&c1);
    }
    CHECK(worst_y <= 1 && worst_dx <= 1, "%s: packed vs one by one: y ratio %g, dx ratio %g",
          vt->name, worst_y, worst_dx);

    /* With states: each sequence continues its own prefix of `pre` tokens
     * (a bidirectional mixer has no state). */
    if (!cfg->dims.causal) {
        free(dy);
        free(cu);
        sl_ctx_free(&ctx);
        mc_free(&mc);
        return;
    }
    const int64_t pre = 3, sf = vt->state_floats(&mc.m, pre + T + 1);
    float *sp = calloc((size_t)(n * sf), sizeof(float)), *s1 = calloc((size_t)sf, sizeof(float));
    sl_ctx c2;
    sl_ctx_init(&c2, 1 << 20);
    c2.grad_enabled = false;
    int64_t cup[64];
    CHECK(n < 64, "at most 63 sequences");
    for (int64_t i = 0; i <= n; i++) cup[i] = i * pre;
    sl_seqs pseqs = {n, cup};
    sl_tensor *xp = SL_NEW(&c2, 1, n * pre, D);
    mc_fill(&rng, xp->data, xp->n, 1.0f);
    vt->forward(&mc.m, &c2, xp, sp, 0, &pseqs);
    sl_tensor *ys = vt->forward(&mc.m, &c2, x, sp, pre, &seqs);
    double worst_s = 0, worst_st = 0;
    for (int64_t i = 0; i < n; i++) {
        memset(s1, 0, (size_t)sf * sizeof(float));
        sl_tensor *xpi = SL_NEW(&c2, 1, pre, D);
        memcpy(xpi->data, xp->data + i * pre * D, (size_t)(pre * D) * sizeof(float));
        vt->forward(&mc.m, &c2, xpi, s1, 0, NULL);
        if (lens[i] > 0) {
            sl_tensor *xi = SL_NEW(&c2, 1, lens[i], D);
            memcpy(xi->data, x->data + cu[i] * D, (size_t)(lens[i] * D) * sizeof(float));
            sl_tensor *yi = vt->forward(&mc.m, &c2, xi, s1, pre, NULL);
            worst_s = fmax(worst_s, close_ratio(ys->data + cu[i] * D, yi->data, lens[i] * D, tol, tol));
        }
        worst_st = fmax(worst_st, close_ratio(sp + i * sf, s1, sf, tol, tol));
    }
    CHECK(worst_s <= 1 && worst_st <= 1,
          "%s: packed with states vs one by one: y ratio %g, final state ratio %g", vt->name,
          worst_s, worst_st);
    free(sp);
    free(s1);
    sl_ctx_free(&c2);
    free(dy);
    free(cu);
    sl_ctx_free(&ctx);
    mc_free(&mc);
}

/* A bidirectional (causal = false) mixer looks ahead: changing the last
 * token of [1, T, D] changes the output at the first. (The gradient, packed
 * and per-op definition checks show it looks ahead correctly.) */
static inline void mc_check_sees_future(const sl_mixer_vtable *vt, const mc_cfg *cfg, int64_t T)
{
    mc_mixer mc;
    mc_create(&mc, vt, cfg, 11);
    const int64_t D = cfg->dims.d_model;
    sl_rng rng;
    sl_rng_seed(&rng, 12);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, 1, T, D);
    mc_fill(&rng, x->data, x->n, 1.0f);
    sl_tensor *y1 = vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
    mc_fill(&rng, x->data + (T - 1) * D, D, 1.0f);
    sl_tensor *y2 = vt->forward(&mc.m, &ctx, x, NULL, 0, NULL);
    double diff = 0;
    for (int64_t j = 0; j < D; j++) diff = fmax(diff, fabs(y1->data[j] - y2->data[j]));
    CHECK(diff > 1e-4, "%s: bidirectional output at t = 0 moves with token %lld: %g", vt->name,
          (long long)(T - 1), diff);
    sl_ctx_free(&ctx);
    mc_free(&mc);
}

#endif
