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
#include "ops/select_rows.h"
#include "ops/seq_pool.h"

_Static_assert((int)SL_POOL_MEAN == (int)SL_SEQ_MEAN && (int)SL_POOL_LAST == (int)SL_SEQ_LAST &&
                   (int)SL_POOL_FIRST == (int)SL_SEQ_FIRST,
               "a task's pooling is the op's");

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
    sl_status st = sl_config_validate(c);
    if (!st) st = sl_config_io(c, &m->io);
    if (st) return st;
    const bool tokens_in = m->io.input != SL_INPUT_VECTORS, lm = m->io.head == SL_HEAD_LM;
    if ((tokens_in || lm) && c->vocab_size < 1)
        return sl_fail(SL_ERR_CONFIG, "config key 'vocab_size' = %lld: expected >= 1 (input = %s, "
                                      "head = %s)",
                       (long long)c->vocab_size, sl_input_name(m->io.input),
                       sl_head_name(m->io.head));
    if (lm && c->tie_embeddings && !tokens_in)
        return sl_fail(SL_ERR_CONFIG, "config key 'tie_embeddings' = true: input = vectors has no "
                                      "embed.weight to tie the head to");
    sl_params *p = &m->params;
    sl_params_init(p);
    int64_t D = c->d_model, V = c->vocab_size, F = ff_width(c);
    float std = (float)c->init_std, out_std = std / sqrtf(2.0f * (float)c->n_layers);
    if (tokens_in) m->embed = SL_PARAM(p, "embed.weight", SL_INIT_NORMAL, std, true, V, D);
    if (m->io.input != SL_INPUT_TOKENS)
        m->in_w = SL_PARAM(p, "in.weight", SL_INIT_NORMAL, std, true, D, c->n_in);
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
        if (!lm) {
            m->head = SL_PARAM(p, "head.weight", SL_INIT_NORMAL, std, true, c->n_out, D);
            m->head_b = SL_PARAM(p, "head.bias", SL_INIT_ZEROS, 0, false, c->n_out);
        } else if (!c->tie_embeddings) {
            m->head = SL_PARAM(p, "head.weight", SL_INIT_NORMAL, std, true, V, D);
        }
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
    const int64_t outs = c->vocab_size > c->n_out ? c->vocab_size : c->n_out;
    int64_t floats = sl_size_add(sl_size_mul(2, outs),
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

/* The read-in: tokens [B*T] through embed.weight, vectors [B*T, n_in]
 * through in.weight, or both, each position one or the other (token -1: a
 * vector position) -> [B, T, D]. */
static sl_tensor *read_in(const sl_model *m, sl_ctx *ctx, const int32_t *tokens,
                          const float *vectors, int64_t B, int64_t T)
{
    sl_tensor *x = m->embed ? sl_embedding(ctx, m->embed, tokens, B, T) : NULL;
    if (!m->in_w) return x;
    const int64_t n_in = m->cfg.n_in, R = B * T;
    sl_tensor *v = SL_NEW(ctx, B, T, n_in);
    for (int64_t r = 0; r < R; r++) {
        float *vr = v->data + r * n_in;
        if (tokens && tokens[r] >= 0) memset(vr, 0, (size_t)n_in * sizeof(float));
        else memcpy(vr, vectors + r * n_in, (size_t)n_in * sizeof(float));
    }
    sl_tensor *y = sl_linear(ctx, v, m->in_w, NULL);
    return x ? sl_add(ctx, x, y) : y;
}

/* Read-in, blocks and final norm. tokens: [B*T] (or NULL), vectors:
 * [B*T, n_in] (or NULL), as the model's input reads them -> [B, T, D].
 * state == NULL: training. Otherwise each layer's state continues from
 * position pos; with step, T == 1 and mixers run their step(). seqs: NULL,
 * or the bounds of a packed batch (B = 1). */
static sl_tensor *trunk(sl_model *m, sl_ctx *ctx, const int32_t *tokens, const float *vectors,
                        int64_t B, int64_t T, float *const *state, int64_t pos, bool step,
                        float *scratch, const sl_seqs *seqs)
{
    const float p = (float)m->cfg.dropout;
    const int64_t rt = m->cfg.recompute_tokens;
    sl_tensor *x = read_in(m, ctx, tokens, vectors, B, T);
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

/* x: [..., D] -> [..., V or n_out] */
static sl_tensor *head(sl_model *m, sl_ctx *ctx, sl_tensor *x)
{
    return sl_linear(ctx, x, m->head ? m->head : m->embed, m->head_b);
}

sl_tensor *sl_model_forward(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t B, int64_t T)
{
    return head(m, ctx, trunk(m, ctx, tokens, NULL, B, T, NULL, 0, false, NULL, NULL));
}

sl_tensor *sl_model_forward_packed(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t T,
                                   const sl_seqs *seqs)
{
    return head(m, ctx, trunk(m, ctx, tokens, NULL, 1, T, NULL, 0, false, NULL, seqs));
}

sl_tensor *sl_model_loss(sl_model *m, sl_ctx *ctx, const int32_t *tokens, const int32_t *targets,
                         int64_t B, int64_t T)
{
    const sl_batch b = {.B = B, .T = T, .tokens = (int32_t *)tokens, .targets = (int32_t *)targets};
    return sl_model_batch_loss(m, ctx, &b, NULL, NULL);
}

/* The first lengths[i] elements (`size` bytes each) of every row i of
 * src (rows T elements apart), end to end in a new arena array of
 * S = cu[B] elements; NULL for NULL. */
static void *pack_rows(sl_ctx *ctx, const void *src, size_t size, const sl_batch *b,
                       const int64_t *cu)
{
    if (!src) return NULL;
    char *dst = sl_arena_alloc(&ctx->arena, (size_t)cu[b->B] * size);
    for (int64_t i = 0; i < b->B; i++)
        memcpy(dst + (size_t)cu[i] * size, (const char *)src + (size_t)(i * b->T) * size,
               (size_t)b->lengths[i] * size);
    return dst;
}

/* b's rows end to end in *p (B = 1), their bounds in the returned seqs;
 * both in ctx's arena, as the tape's nodes keep pointers to them. */
static const sl_seqs *pack(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_batch *p)
{
    int64_t *cu = sl_arena_alloc(&ctx->arena, (size_t)(b->B + 1) * sizeof *cu);
    cu[0] = 0;
    for (int64_t i = 0; i < b->B; i++) {
        sl_require(b->lengths[i] >= 1 && b->lengths[i] <= b->T, "sl_model_forward_batch",
                   "lengths in [1, T]");
        cu[i + 1] = cu[i] + b->lengths[i];
    }
    sl_seqs *seqs = sl_arena_alloc(&ctx->arena, sizeof *seqs);
    *seqs = (sl_seqs){b->B, cu};
    const bool per_position = m->io.head != SL_HEAD_CLASSIFY;
    *p = (sl_batch){.B = 1, .T = cu[b->B]};
    p->tokens = pack_rows(ctx, b->tokens, sizeof *b->tokens, b, cu);
    p->vectors = pack_rows(ctx, b->vectors, (size_t)m->cfg.n_in * sizeof(float), b, cu);
    p->targets = per_position ? pack_rows(ctx, b->targets, sizeof *b->targets, b, cu) : b->targets;
    p->values = pack_rows(ctx, b->values, (size_t)m->cfg.n_out * sizeof(float), b, cu);
    p->mask = pack_rows(ctx, b->mask, 1, b, cu);
    if (per_position) {
        p->pos = sl_arena_alloc(&ctx->arena, (size_t)cu[b->B] * sizeof *p->pos);
        for (int64_t i = 0; i < b->B; i++)
            for (int64_t t = 0; t < b->lengths[i]; t++) p->pos[cu[i] + t] = i * b->T + t;
    }
    return seqs;
}

/* The final norm's output of a batch's positions ([B, T, D], or [1, S, D]
 * packed), or of its sequences pooled ([B, D], classify); *rows as
 * sl_model_forward_batch's. */
static sl_tensor *features(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_batch *rows)
{
    bool short_row = false;
    for (int64_t i = 0; b->lengths && i < b->B; i++) short_row |= b->lengths[i] != b->T;
    const sl_seqs *seqs = NULL;
    *rows = *b;
    if (short_row) seqs = pack(m, ctx, b, rows);
    rows->lengths = NULL;
    sl_tensor *x = trunk(m, ctx, rows->tokens, rows->vectors, rows->B, rows->T, NULL, 0, false,
                         NULL, seqs);
    if (m->io.head == SL_HEAD_CLASSIFY) x = sl_seq_pool(ctx, x, (sl_seq_pool_kind)m->io.pool, seqs);
    return x;
}

sl_tensor *sl_model_forward_batch(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_batch *rows)
{
    return head(m, ctx, features(m, ctx, b, rows));
}

/* Keeps only the rows of x whose target counts, and their targets in
 * *rows, when some do not: a head over a large vocabulary then costs what
 * the labelled positions need (MQAR labels one in sixteen). */
static sl_tensor *counted_rows(sl_ctx *ctx, sl_tensor *x, sl_batch *rows)
{
    const int64_t R = sl_rows(x);
    int64_t n = 0;
    for (int64_t r = 0; r < R; r++) n += rows->targets[r] >= 0;
    if (n == R || n == 0) return x;
    int64_t *idx = sl_arena_alloc(&ctx->arena, (size_t)n * sizeof *idx);
    int64_t *pos = sl_arena_alloc(&ctx->arena, (size_t)n * sizeof *pos);
    int32_t *tgt = sl_arena_alloc(&ctx->arena, (size_t)n * sizeof *tgt);
    for (int64_t r = 0, i = 0; r < R; r++)
        if (rows->targets[r] >= 0) {
            idx[i] = r;
            pos[i] = rows->pos ? rows->pos[r] : r;
            tgt[i++] = rows->targets[r];
        }
    *rows = (sl_batch){.B = 1, .T = n, .targets = tgt, .pos = pos};
    return sl_select_rows(ctx, x, idx, n);
}

sl_tensor *sl_model_batch_loss(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_tensor **out,
                               sl_batch *rows)
{
    sl_batch r;
    sl_tensor *x = features(m, ctx, b, &r);
    if (m->io.head == SL_HEAD_LM || m->io.head == SL_HEAD_TAG) x = counted_rows(ctx, x, &r);
    sl_tensor *y = head(m, ctx, x);
    if (out) *out = y;
    if (rows) *rows = r;
    if (m->io.head == SL_HEAD_REGRESS) return sl_mse(ctx, y, r.values, r.mask);
    return sl_cross_entropy(ctx, y, r.targets, -1);
}

/* ---------------------------------------------------------- decoding */

sl_status sl_decoder_init(sl_decoder *d, sl_model *m)
{
    memset(d, 0, sizeof *d);
    d->m = m;
    if (!m->cfg.causal)
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'causal' = false: a bidirectional model cannot generate");
    if (m->io.input != SL_INPUT_TOKENS || m->io.head != SL_HEAD_LM)
        return sl_fail(SL_ERR_CONFIG,
                       "config keys input = %s, head = %s: only a token model with an lm head "
                       "generates",
                       sl_input_name(m->io.input), sl_head_name(m->io.head));
    int64_t L = m->cfg.max_seq_len, scratch = 0, floats = m->cfg.vocab_size;
    d->streams = !m->pos;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const sl_mixer *mx = &m->blocks[l].mixer;
        int64_t s = mx->vt->scratch_floats(mx, L);
        d->streams &= mx->vt->streams && mx->vt->streams(mx);
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
    if (!d->streams && d->pos + T > c->max_seq_len)
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
    sl_tensor *x = trunk(d->m, &d->ctx, tokens, NULL, 1, T, d->state, d->pos, step, d->scratch,
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
    if (d->streams && *len == L) {
        memmove(ctx_ids, ctx_ids + 1, (size_t)(L - 1) * sizeof *ctx_ids);
        ctx_ids[L - 1] = id;
        return sl_decoder_step(d, id);
    }
    if (d->pos < L || d->streams) {
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
