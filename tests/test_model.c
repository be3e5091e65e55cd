/* Model: incremental decoding (prefill + step) reproduces the full forward,
 * a packed batch gives each sequence's logits, whole-model gradients match
 * finite differences, shapes and names. */
#include <string.h>

#include "check.h"
#include "model/model.h"
#include "ops/ops.h"

static void tiny(sl_config *c)
{
    sl_config_defaults(c);
    c->vocab_size = 11;
    c->d_model = 16;
    c->n_heads = 2;
    c->n_layers = 2;
    c->max_seq_len = 24;
    c->seq_len = 24;
    c->init_std = 0.3; /* large weights make every path matter to the output */
}

/* Logits of every position from one forward vs prefill(k) + steps. */
static void check_decode(const sl_config *c, const char *what)
{
    sl_model m;
    CHECK(sl_model_create(&m, c) == SL_OK, "%s: create: %s", what, sl_errmsg());
    sl_model_init_weights(&m, 3);
    int64_t T = c->max_seq_len, V = c->vocab_size;
    int32_t tok[64];
    sl_rng r;
    sl_rng_seed(&r, 5);
    for (int64_t t = 0; t < T; t++) tok[t] = (int32_t)sl_rng_below(&r, (uint64_t)V);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *full = sl_model_forward(&m, &ctx, tok, 1, T);
    for (int64_t k = 1; k <= T; k += 7) {
        sl_decoder d;
        CHECK(sl_decoder_init(&d, &m) == SL_OK, "%s: decoder", what);
        CHECK(sl_decoder_prefill(&d, tok, k) == SL_OK, "%s: prefill", what);
        double worst = close_ratio(d.logits, full->data + (k - 1) * V, V, 1e-4, 1e-4);
        for (int64_t t = k; t < T; t++) {
            CHECK(sl_decoder_step(&d, tok[t]) == SL_OK, "%s: step", what);
            double w = close_ratio(d.logits, full->data + t * V, V, 1e-4, 1e-4);
            if (w > worst) worst = w;
        }
        CHECK(worst <= 1, "%s: prefill %lld + steps vs forward: ratio %g", what, (long long)k, worst);
        CHECK(sl_decoder_step(&d, tok[0]) == SL_ERR_SHAPE, "%s: past max_seq_len", what);
        /* After a reset the decoder must behave as if new. */
        sl_decoder_reset(&d);
        CHECK(sl_decoder_prefill(&d, tok, k) == SL_OK, "%s: prefill after reset", what);
        CHECK(close_ratio(d.logits, full->data + (k - 1) * V, V, 1e-4, 1e-4) <= 1,
              "%s: reset + prefill %lld", what, (long long)k);
        sl_decoder_free(&d);
    }
    sl_ctx_free(&ctx);
    sl_model_free(&m);
}

static void test_decode_matches_forward_learned(void)
{
    sl_config c;
    tiny(&c);
    check_decode(&c, "learned");
}

static void test_decode_matches_forward_rope_rms_swiglu_bias(void)
{
    sl_config c;
    tiny(&c);
    strcpy(c.pos, "rope");
    strcpy(c.norm, "rmsnorm");
    strcpy(c.mlp, "swiglu");
    c.bias = true;
    c.tie_embeddings = false;
    check_decode(&c, "rope");
}

static void test_decode_matches_forward_window(void)
{
    sl_config c;
    tiny(&c);
    CHECK(sl_config_set(&c, "attention.window", "5") == SL_OK, "%s", sl_errmsg());
    strcpy(c.mlp, "none");
    check_decode(&c, "window");
}

/* Windowed attention with RoPE (a ring cache, no learned positions) decodes
 * past max_seq_len: a model with max_seq_len 12, prefilled and stepped (by
 * sl_decoder_next, which keeps the last 12 ids) to 40 tokens, gives the
 * logits of one forward over the 40 tokens of the same weights with
 * max_seq_len 48. Grouped heads ride along. With learned positions the
 * same model stops at max_seq_len. */
static void test_windowed_decoder_streams_past_max_seq_len(void)
{
    enum { T = 40, L = 12 };
    sl_config c;
    tiny(&c);
    strcpy(c.pos, "rope");
    c.n_heads = 4;
    CHECK(sl_config_set(&c, "attention.window", "5") == SL_OK, "%s", sl_errmsg());
    CHECK(sl_config_set(&c, "attention.n_kv_heads", "2") == SL_OK, "%s", sl_errmsg());
    sl_config big = c;
    c.max_seq_len = c.seq_len = L;
    big.max_seq_len = big.seq_len = 48;
    sl_model m, mb;
    CHECK(sl_model_create(&m, &c) == SL_OK && sl_model_create(&mb, &big) == SL_OK, "%s",
          sl_errmsg());
    sl_model_init_weights(&m, 3);
    sl_model_init_weights(&mb, 3);
    const int64_t V = c.vocab_size;
    int32_t tok[T], ids[L];
    sl_rng r;
    sl_rng_seed(&r, 9);
    for (int64_t t = 0; t < T; t++) tok[t] = (int32_t)sl_rng_below(&r, (uint64_t)V);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *full = sl_model_forward(&mb, &ctx, tok, 1, T);
    sl_decoder d;
    CHECK(sl_decoder_init(&d, &m) == SL_OK && d.streams, "streaming decoder: %s", sl_errmsg());
    int64_t len = 3;
    memcpy(ids, tok, sizeof(int32_t) * (size_t)len);
    CHECK(sl_decoder_prefill(&d, ids, len) == SL_OK, "prefill: %s", sl_errmsg());
    double worst = close_ratio(d.logits, full->data + 2 * V, V, 1e-4, 1e-4);
    for (int64_t t = 3; t < T; t++) {
        CHECK(sl_decoder_next(&d, ids, &len, tok[t]) == SL_OK, "t %lld: %s", (long long)t,
              sl_errmsg());
        double w = close_ratio(d.logits, full->data + t * V, V, 1e-4, 1e-4);
        if (w > worst) worst = w;
    }
    CHECK(worst <= 1, "decoding past max_seq_len vs forward: ratio %g", worst);
    CHECK(d.pos == T && len == L && !memcmp(ids, tok + T - L, sizeof ids), "pos %lld, len %lld",
          (long long)d.pos, (long long)len);
    sl_decoder_free(&d);
    sl_model_free(&m);
    strcpy(c.pos, "learned");
    CHECK(sl_model_create(&m, &c) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_decoder_init(&d, &m) == SL_OK && !d.streams, "learned positions do not stream");
    CHECK(sl_decoder_prefill(&d, tok, L) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_decoder_step(&d, tok[L]) == SL_ERR_SHAPE, "past max_seq_len with learned positions");
    sl_decoder_free(&d);
    sl_model_free(&m);
    sl_model_free(&mb);
    sl_ctx_free(&ctx);
}

/* Every registered mixer inside the whole model: prefill + steps must give
 * the forward's logits (chunk 5 makes prompts and steps cross chunk edges). */
static void test_decode_matches_forward_every_mixer(void)
{
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        sl_config c;
        tiny(&c);
        c.chunk_size = 5;
        c.init_std = 0.1;
        strcpy(c.pos, "none");
        strcpy(c.mixer, sl_mixer_at(i)->name);
        if (!sl_mixer_at(i)->noncausal_only) check_decode(&c, c.mixer);
    }
    /* A hybrid stack: attention, then a recurrent layer. */
    sl_config c;
    tiny(&c);
    c.chunk_size = 5;
    c.n_layer_mixers = 2;
    strcpy(c.layer_mixers[0], "attention");
    strcpy(c.layer_mixers[1], "gated_deltanet");
    check_decode(&c, "hybrid");
}

/* Training through the chunked recompute (recompute_tokens below T) gives
 * the plain loss and gradients: a hybrid stack whose attention layer runs
 * whole and whose recurrent layers run in chunks of 7 tokens. */
static void test_recompute_matches_plain_training(void)
{
    sl_config c;
    tiny(&c);
    c.chunk_size = 5;
    c.n_layers = 3;
    c.n_layer_mixers = 3;
    strcpy(c.layer_mixers[0], "mamba2");
    strcpy(c.layer_mixers[1], "attention");
    strcpy(c.layer_mixers[2], "gated_deltanet");
    const int64_t B = 2, T = 24;
    int32_t tok[48], tgt[48];
    sl_rng r;
    sl_rng_seed(&r, 8);
    for (int64_t i = 0; i < B * T; i++) {
        tok[i] = (int32_t)sl_rng_below(&r, (uint64_t)c.vocab_size);
        tgt[i] = (int32_t)sl_rng_below(&r, (uint64_t)c.vocab_size);
    }
    float loss[2], *grad[2];
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        c.recompute_tokens = pass ? 7 : 0;
        sl_model m;
        CHECK(sl_model_create(&m, &c) == SL_OK, "create: %s", sl_errmsg());
        sl_model_init_weights(&m, 3);
        sl_params_zero_grad(&m.params);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *l = sl_model_loss(&m, &ctx, tok, tgt, B, T);
        sl_backward(&ctx, l);
        CHECK((ctx.child != NULL) == (pass == 1), "the recurrent layers ran chunked iff asked");
        loss[pass] = l->data[0];
        n = m.params.total;
        grad[pass] = malloc(n * sizeof(float));
        memcpy(grad[pass], m.params.grad, n * sizeof(float));
        sl_ctx_free(&ctx);
        sl_model_free(&m);
    }
    CHECK(fabsf(loss[0] - loss[1]) <= 1e-5f * fabsf(loss[0]), "loss %g vs %g", loss[0], loss[1]);
    const double r1 = close_ratio(grad[1], grad[0], (long long)n, 1e-4 * rms(grad[0], (long long)n),
                                  1e-3);
    CHECK(r1 <= 1, "gradients with the recompute: ratio %g", r1);
    free(grad[0]);
    free(grad[1]);
}

/* Logits of a packed batch (lengths 0, 1 and across chunk edges) vs each
 * sequence through sl_model_forward alone. */
static void check_packed(const sl_config *c, const char *what)
{
    sl_model m;
    CHECK(sl_model_create(&m, c) == SL_OK, "%s: create: %s", what, sl_errmsg());
    sl_model_init_weights(&m, 3);
    static const int64_t cu[] = {0, 7, 7, 8, 20, 24};
    const sl_seqs seqs = {5, cu};
    const int64_t T = 24, V = c->vocab_size;
    int32_t tok[24];
    sl_rng r;
    sl_rng_seed(&r, 6);
    for (int64_t t = 0; t < T; t++) tok[t] = (int32_t)sl_rng_below(&r, (uint64_t)V);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *packed = sl_model_forward_packed(&m, &ctx, tok, T, &seqs);
    double worst = 0;
    for (int64_t i = 0; i < seqs.n; i++) {
        const int64_t L = cu[i + 1] - cu[i];
        if (L == 0) continue;
        sl_tensor *one = sl_model_forward(&m, &ctx, tok + cu[i], 1, L);
        worst = fmax(worst, close_ratio(packed->data + cu[i] * V, one->data, L * V, 1e-4, 1e-4));
    }
    CHECK(worst <= 1, "%s: packed vs one by one: ratio %g", what, worst);
    sl_ctx_free(&ctx);
    sl_model_free(&m);
}

static void test_packed_matches_one_by_one(void)
{
    sl_config c;
    tiny(&c);
    check_packed(&c, "learned positions");
    strcpy(c.pos, "rope");
    check_packed(&c, "rope");
    c.causal = false;
    check_packed(&c, "bidirectional");
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        tiny(&c);
        c.chunk_size = 5;
        strcpy(c.mixer, sl_mixer_at(i)->name);
        if (!sl_mixer_at(i)->noncausal_only) check_packed(&c, c.mixer);
        c.causal = false;
        if (sl_mixer_at(i)->bidirectional || sl_mixer_at(i)->noncausal_only)
            check_packed(&c, c.mixer);
    }
}

static void test_bidirectional_cannot_decode(void)
{
    sl_config c;
    tiny(&c);
    c.causal = false;
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create");
    sl_decoder d;
    CHECK(sl_decoder_init(&d, &m) == SL_ERR_CONFIG && strstr(sl_errmsg(), "causal"), "refused");
    sl_decoder_free(&d);
    sl_model_free(&m);
}

/* A model with causal = false builds from the mixers that have a
 * bidirectional form and refuses, naming the mixer and the key, one that
 * has none; a causal model refuses, the same way, a mixer with only a
 * non-causal form. */
static void test_bidirectional_mixers(void)
{
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *vt = sl_mixer_at(i);
        sl_config c;
        tiny(&c);
        c.causal = false;
        strcpy(c.mixer, vt->name);
        sl_model m;
        sl_status st = sl_model_create(&m, &c);
        if (vt->noncausal_only) {
            CHECK(st == SL_OK, "%s: bidirectional model: %s", vt->name, sl_errmsg());
            sl_model_free(&m);
            c.causal = true;
            CHECK(sl_model_create(&m, &c) == SL_ERR_CONFIG && strstr(sl_errmsg(), vt->name) &&
                      strstr(sl_errmsg(), "'causal'"),
                  "%s: causal model refused: %s", vt->name, sl_errmsg());
            continue;
        }
        if (vt->bidirectional) {
            CHECK(st == SL_OK, "%s: bidirectional model: %s", vt->name, sl_errmsg());
        } else {
            CHECK(st == SL_ERR_CONFIG && strstr(sl_errmsg(), vt->name) &&
                      strstr(sl_errmsg(), "causal"),
                  "%s: refused: %s", vt->name, sl_errmsg());
            continue;
        }
        sl_model_free(&m);
    }
}

static void test_parameter_names_and_count(void)
{
    sl_config c;
    tiny(&c);
    c.bias = true;
    c.tie_embeddings = false;
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create");
    const char *names[] = {"embed.weight", "pos.weight", "blocks.0.norm1.weight",
                           "blocks.0.norm1.bias", "blocks.1.mixer.qkv.weight",
                           "blocks.1.mixer.qkv.bias", "blocks.1.mixer.out.weight",
                           "blocks.1.mixer.out.bias", "blocks.1.norm2.weight",
                           "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "norm.weight",
                           "head.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(sl_params_find(&m.params, names[i]) != NULL, "%s", names[i]);
    int64_t D = 16, F = 64, V = 11, L = 2, P = 24;
    int64_t per_layer = 2 * 2 * D + (3 * D * D + 3 * D) + (D * D + D) + (F * D + F) + (D * F + D);
    int64_t want = V * D + P * D + L * per_layer + 2 * D + V * D;
    CHECK((int64_t)sl_params_numel(&m.params) == want, "numel %zu vs %lld",
          sl_params_numel(&m.params), (long long)want);
    sl_model_free(&m);
}

static void test_layer_mixers_and_bad_names(void)
{
    sl_config c;
    tiny(&c);
    c.n_layer_mixers = 2;
    strcpy(c.layer_mixers[0], "attention");
    strcpy(c.layer_mixers[1], "nonesuch");
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "nonesuch") &&
              strstr(sl_errmsg(), "layer 1"),
          "unknown mixer named: %s", sl_errmsg());
    c.n_heads = 3;
    CHECK(sl_model_create(&m, &c) == SL_ERR_SHAPE && strstr(sl_errmsg(), "n_heads"),
          "heads must divide d_model: %s", sl_errmsg());
}

/* The whole model's loss gradient w.r.t. a sample of every parameter, by
 * central differences in double on the float32 loss. */
static void test_model_gradients_finite_differences(void)
{
    sl_config c;
    tiny(&c);
    c.max_seq_len = 8;
    c.seq_len = 8;
    c.init_std = 0.2;
    strcpy(c.pos, "rope");
    c.bias = true;
    c.tie_embeddings = false;
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create");
    sl_model_init_weights(&m, 9);
    int64_t B = 2, T = 8;
    int32_t tok[16], tgt[16];
    sl_rng r;
    sl_rng_seed(&r, 2);
    for (int i = 0; i < 16; i++) {
        tok[i] = (int32_t)sl_rng_below(&r, 11);
        tgt[i] = i % 5 == 0 ? -1 : (int32_t)sl_rng_below(&r, 11);
    }
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_params_zero_grad(&m.params);
    sl_backward(&ctx, sl_model_loss(&m, &ctx, tok, tgt, B, T));
    ctx.grad_enabled = false;
    int bad = 0;
    for (size_t k = 0; k < m.params.count; k++) {
        sl_param *q = m.params.list[k];
        for (int64_t i = 0; i < q->t.n; i += q->t.n / 3 + 1) {
            float x0 = q->t.data[i], h = 1e-2f;
            q->t.data[i] = x0 + h;
            sl_ctx_reset(&ctx);
            double lp = sl_model_loss(&m, &ctx, tok, tgt, B, T)->data[0];
            q->t.data[i] = x0 - h;
            sl_ctx_reset(&ctx);
            double lm = sl_model_loss(&m, &ctx, tok, tgt, B, T)->data[0];
            q->t.data[i] = x0;
            double num = (lp - lm) / (2 * h), ana = q->t.grad[i];
            /* float32 loss ~2.4 with ~1e-7 relative rounding over 2h = 0.02:
             * ~3e-5 absolute noise; h^2 curvature error is of the same order. */
            if (fabs(ana - num) > 3e-4 + 2e-2 * fabs(num)) {
                if (bad++ < 5)
                    fprintf(stderr, "  %s[%lld]: analytic %g numeric %g\n", q->name, (long long)i,
                            ana, num);
            }
        }
    }
    CHECK(bad == 0, "%d parameter gradients off", bad);
    sl_ctx_free(&ctx);
    sl_model_free(&m);
}

int main(void)
{
    RUN(test_decode_matches_forward_learned);
    RUN(test_decode_matches_forward_rope_rms_swiglu_bias);
    RUN(test_decode_matches_forward_window);
    RUN(test_windowed_decoder_streams_past_max_seq_len);
    RUN(test_decode_matches_forward_every_mixer);
    RUN(test_recompute_matches_plain_training);
    RUN(test_packed_matches_one_by_one);
    RUN(test_bidirectional_cannot_decode);
    RUN(test_bidirectional_mixers);
    RUN(test_parameter_names_and_count);
    RUN(test_layer_mixers_and_bad_names);
    RUN(test_model_gradients_finite_differences);
    return TEST_SUMMARY();
}
