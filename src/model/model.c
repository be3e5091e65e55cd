/* Model construction, the training forward and incremental decoding. The
 * decoder reuses the same ops on one-token tensors, so the only code that
 * differs between forward and step is each mixer's own step(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "mixers/recompute.h"
#include "ops/ops.h"

static void set_prefix(sl_params *p, const char *fmt, int64_t i)
{
    snprintf(p->prefix, sizeof p->prefix, fmt, (long long)i);
}

static void declare_norm(sl_model *m, const char *name, sl_tensor **w, sl_tensor **b)
{
    char key[64];
    snprintf(key, sizeof key, "%s.weight", name);
    *w = sl_param_add(&m->params, key, 1, &m->cfg.d_model, SL_INIT_ONES, 0, false);
    *b = NULL;
    if (m->cfg.bias && strcmp(m->cfg.norm, "layernorm") == 0) {
        snprintf(key, sizeof key, "%s.bias", name);
        *b = sl_param_add(&m->params, key, 1, &m->cfg.d_model, SL_INIT_ZEROS, 0, false);
    }
}

static int64_t ff_width(const sl_config *c) { return c->d_ff ? c->d_ff : 4 * c->d_model; }

sl_status sl_model_create(sl_model *m, const sl_config *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const sl_config *c = &m->cfg;
    if (c->vocab_size < 1)
        return sl_fail(SL_ERR_CONFIG, "config key 'vocab_size' = %lld: expected >= 1",
                       (long long)c->vocab_size);
    sl_status st = sl_config_validate(c);
    if (st) return st;
    sl_params *p = &m->params;
    sl_params_init(p);
    int64_t D = c->d_model, V = c->vocab_size, F = ff_width(c);
    float std = (float)c->init_std, out_std = std / sqrtf(2.0f * (float)c->n_layers);
    m->embed = SL_PARAM(p, "embed.weight", SL_INIT_NORMAL, std, true, V, D);
    if (strcmp(c->pos, "learned") == 0)
        m->pos = SL_PARAM(p, "pos.weight", SL_INIT_NORMAL, std, true, c->max_seq_len, D);
    bool swiglu = strcmp(c->mlp, "swiglu") == 0, has_mlp = strcmp(c->mlp, "none") != 0;
    for (int64_t i = 0; i < c->n_layers && st == SL_OK; i++) {
        sl_block *b = &m->blocks[i];
        set_prefix(p, "blocks.%lld.", i);
        declare_norm(m, "norm1", &b->norm1_w, &b->norm1_b);
        if (has_mlp) declare_norm(m, "norm2", &b->norm2_w, &b->norm2_b);
        set_prefix(p, "blocks.%lld.mixer.", i);
        const sl_mixer_vtable *vt;
        sl_mixer_dims dims;
        sl_opts opts;
        st = sl_config_layer(c, i, &vt, &dims, &opts);
        if (!st) st = sl_mixer_create(&b->mixer, vt, &dims, &opts, i, p);
        if (st || !has_mlp) continue;
        set_prefix(p, "blocks.%lld.mlp.", i);
        b->fc1_w = SL_PARAM(p, "fc1.weight", SL_INIT_NORMAL, std, true, swiglu ? 2 * F : F, D);
        if (c->bias) b->fc1_b = SL_PARAM(p, "fc1.bias", SL_INIT_ZEROS, 0, false, swiglu ? 2 * F : F);
        b->fc2_w = SL_PARAM(p, "fc2.weight", SL_INIT_NORMAL, out_std, true, D, F);
        if (c->bias) b->fc2_b = SL_PARAM(p, "fc2.bias", SL_INIT_ZEROS, 0, false, D);
    }
    p->prefix[0] = '\0';
    if (st == SL_OK) {
        declare_norm(m, "norm", &m->norm_w, &m->norm_b);
        if (!c->tie_embeddings) m->head = SL_PARAM(p, "head.weight", SL_INIT_NORMAL, std, true, V, D);
        st = sl_params_finalize(p);
    }
    if (st == SL_ERR_OOM) {
        char why[768];
        snprintf(why, sizeof why, "%s", sl_errmsg());
        st = sl_fail(SL_ERR_OOM, "config keys vocab_size = %lld, d_model = %lld, n_layers = %lld, "
                                 "d_ff = %lld, max_seq_len = %lld: %s",
                     (long long)V, (long long)D, (long long)c->n_layers, (long long)F,
                     (long long)c->max_seq_len, why);
    }
    if (st) sl_model_free(m);
    return st;
}

sl_status sl_model_plan_batch(const sl_config *c, int64_t B, int64_t T, bool train,
                              const char *key)
{
    /* Per token: its id and target, the logits and their softmax, and
     * about 24 D floats of activations per layer (a one-layer attention
     * model measures 25 D); gradients double the floats when training. */
    int64_t floats = sl_size_add(sl_size_mul(2, c->vocab_size),
                                 sl_size_mul(sl_size_mul(24, c->d_model), c->n_layers));
    if (train) floats = sl_size_mul(2, floats);
    const int64_t per_token = sl_size_add(2 * sizeof(int32_t), sl_size_mul(floats, sizeof(float)));
    return sl_mem_check(sl_size_mul(sl_size_mul(B, T), per_token),
                        "%s: a batch of %lld x %lld tokens (ids, logits and activations)", key,
                        (long long)B, (long long)T);
}

void sl_model_init_weights(sl_model *m, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    sl_params_randomize(&m->params, &rng);
}

void sl_model_free(sl_model *m)
{
    for (int64_t i = 0; i < m->cfg.n_layers; i++) sl_mixer_destroy(&m->blocks[i].mixer);
    sl_params_free(&m->params);
}

/* x: [..., D] */
static sl_tensor *norm(const sl_model *m, sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *b)
{
    float eps = (float)m->cfg.norm_eps;
    if (strcmp(m->cfg.norm, "rmsnorm") == 0) return sl_rmsnorm(ctx, x, w, eps);
    return sl_layernorm(ctx, x, w, b, eps);
}

/* x: [..., D] -> [..., D] */
static sl_tensor *mlp(const sl_model *m, sl_ctx *ctx, const sl_block *b, sl_tensor *x)
{
    sl_tensor *h = sl_linear(ctx, x, b->fc1_w, b->fc1_b);
    h = strcmp(m->cfg.mlp, "swiglu") == 0 ? sl_swiglu(ctx, h) : sl_gelu(ctx, h);
    return sl_linear(ctx, h, b->fc2_w, b->fc2_b);
}

/* Embedding, blocks and final norm. tokens: [B*T] -> [B, T, D].
 * state == NULL: training. Otherwise each layer's state continues from
 * position pos; with step, T == 1 and mixers run their step(). seqs: NULL,
 * or the bounds of a packed batch (B = 1). */
static sl_tensor *trunk(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t B, int64_t T,
                        float *const *state, int64_t pos, bool step, float *scratch,
                        const sl_seqs *seqs)
{
    const float p = (float)m->cfg.dropout;
    const int64_t rt = m->cfg.recompute_tokens;
    sl_tensor *x = sl_embedding(ctx, m->embed, tokens, B, T);
    if (m->pos) x = sl_add_positions(ctx, x, m->pos, pos, seqs);
    x = sl_dropout(ctx, x, p);
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        sl_block *b = &m->blocks[l];
        sl_tensor *h = norm(m, ctx, x, b->norm1_w, b->norm1_b), *y;
        if (step) {
            y = sl_tensor_like(ctx, h);
            b->mixer.vt->step(&b->mixer, state[l], h->data, y->data, pos, scratch);
        } else if (!state && !seqs && ctx->grad_enabled && rt > 0 && T > rt &&
                   sl_mixer_chunkable(&b->mixer)) {
            y = sl_mixer_recompute(ctx, &b->mixer, h, rt);
        } else {
            y = b->mixer.vt->forward(&b->mixer, ctx, h, state ? state[l] : NULL, pos, seqs);
        }
        x = sl_add(ctx, x, sl_dropout(ctx, y, p));
        if (!b->fc1_w) continue;
        h = norm(m, ctx, x, b->norm2_w, b->norm2_b);
        x = sl_add(ctx, x, sl_dropout(ctx, mlp(m, ctx, b, h), p));
    }
    return norm(m, ctx, x, m->norm_w, m->norm_b);
}

static sl_tensor *head(sl_model *m, sl_ctx *ctx, sl_tensor *x)
{
    return sl_linear(ctx, x, m->head ? m->head : m->embed, NULL);
}

sl_tensor *sl_model_forward(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t B, int64_t T)
{
    return head(m, ctx, trunk(m, ctx, tokens, B, T, NULL, 0, false, NULL, NULL));
}

sl_tensor *sl_model_forward_packed(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t T,
                                   const sl_seqs *seqs)
{
    return head(m, ctx, trunk(m, ctx, tokens, 1, T, NULL, 0, false, NULL, seqs));
}

sl_tensor *sl_model_loss(sl_model *m, sl_ctx *ctx, const int32_t *tokens, const int32_t *targets,
                         int64_t B, int64_t T)
{
    return sl_cross_entropy(ctx, sl_model_forward(m, ctx, tokens, B, T), targets, -1);
}

/* ---------------------------------------------------------- decoding */

sl_status sl_decoder_init(sl_decoder *d, sl_model *m)
{
    memset(d, 0, sizeof *d);
    d->m = m;
    if (!m->cfg.causal)
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'causal' = false: a bidirectional model cannot generate");
    int64_t L = m->cfg.max_seq_len, scratch = 0, floats = m->cfg.vocab_size;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const sl_mixer *mx = &m->blocks[l].mixer;
        int64_t s = mx->vt->scratch_floats(mx, L);
        floats = sl_size_add(floats, mx->vt->state_floats(mx, L));
        if (s > scratch) scratch = s;
    }
    sl_status st = sl_mem_check(sl_size_mul(sl_size_add(floats, scratch), sizeof(float)),
                                "config key 'max_seq_len' = %lld: the decoding state (KV cache or "
                                "recurrent state) of %lld layers",
                                (long long)L, (long long)m->cfg.n_layers);
    if (st) return st;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const sl_mixer *mx = &m->blocks[l].mixer;
        d->state[l] = calloc((size_t)mx->vt->state_floats(mx, L), sizeof(float));
        if (!d->state[l]) {
            sl_decoder_free(d);
            return sl_fail(SL_ERR_OOM, "out of memory for the decoding state");
        }
    }
    sl_ctx_init(&d->ctx, 0);
    d->ctx.grad_enabled = false;
    d->scratch = calloc((size_t)scratch, sizeof(float));
    d->logits = calloc((size_t)m->cfg.vocab_size, sizeof(float));
    if (!d->scratch || !d->logits) {
        sl_decoder_free(d);
        return sl_fail(SL_ERR_OOM, "out of memory for the decoding state");
    }
    return SL_OK;
}

void sl_decoder_free(sl_decoder *d)
{
    for (int64_t l = 0; l < SL_MAX_LAYERS; l++) free(d->state[l]);
    free(d->scratch);
    free(d->logits);
    sl_ctx_free(&d->ctx);
    memset(d, 0, sizeof *d);
}

static sl_status check_tokens(const sl_decoder *d, const int32_t *tokens, int64_t T)
{
    const sl_config *c = &d->m->cfg;
    if (d->pos + T > c->max_seq_len)
        return sl_fail(SL_ERR_SHAPE, "sequence of %lld tokens exceeds max_seq_len = %lld",
                       (long long)(d->pos + T), (long long)c->max_seq_len);
    for (int64_t t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return sl_fail(SL_ERR_ARG, "token id %d outside the vocabulary [0, %lld)", tokens[t],
                           (long long)c->vocab_size);
    return SL_OK;
}

/* Logits of the last row only: [B, T, D] -> d->logits [V]. */
static void last_logits(sl_decoder *d, sl_ctx *ctx, sl_tensor *x)
{
    int64_t D = d->m->cfg.d_model;
    sl_tensor *last = SL_NEW(ctx, 1, D);
    memcpy(last->data, x->data + (x->n - D), (size_t)D * sizeof(float));
    sl_tensor *lg = head(d->m, ctx, last);
    memcpy(d->logits, lg->data, (size_t)lg->n * sizeof(float));
}

static sl_status run(sl_decoder *d, const int32_t *tokens, int64_t T, bool step)
{
    sl_status st = check_tokens(d, tokens, T);
    if (st) return st;
    sl_ctx_reset(&d->ctx);
    sl_tensor *x = trunk(d->m, &d->ctx, tokens, 1, T, d->state, d->pos, step, d->scratch,
                          NULL);
    last_logits(d, &d->ctx, x);
    d->pos += T;
    return SL_OK;
}

sl_status sl_decoder_prefill(sl_decoder *d, const int32_t *tokens, int64_t T)
{
    if (T < 1) return sl_fail(SL_ERR_ARG, "empty prompt: need at least one token");
    return run(d, tokens, T, false);
}

sl_status sl_decoder_step(sl_decoder *d, int32_t token) { return run(d, &token, 1, true); }

void sl_decoder_reset(sl_decoder *d)
{
    for (int64_t l = 0; l < d->m->cfg.n_layers; l++) {
        const sl_mixer *mx = &d->m->blocks[l].mixer;
        memset(d->state[l], 0,
               (size_t)mx->vt->state_floats(mx, d->m->cfg.max_seq_len) * sizeof(float));
    }
    d->pos = 0;
}

sl_status sl_decoder_next(sl_decoder *d, int32_t *ctx_ids, int64_t *len, int32_t id)
{
    const int64_t L = d->m->cfg.max_seq_len;
    if (d->pos < L) {
        ctx_ids[(*len)++] = id;
        return sl_decoder_step(d, id);
    }
    const int64_t keep = (L + 1) / 2;
    memmove(ctx_ids, ctx_ids + *len - (keep - 1), (size_t)(keep - 1) * sizeof *ctx_ids);
    ctx_ids[keep - 1] = id;
    *len = keep;
    sl_decoder_reset(d);
    return sl_decoder_prefill(d, ctx_ids, keep);
}
