/* Model inputs and heads (docs/formats.md, "Inputs and heads"): finite
 * differences of every parameter through each read-in (tokens, vectors,
 * both) and head (lm, tag, regress, classify with mean, last and first
 * pooling); rows shorter than T (packed) give each row's outputs as if it
 * ran alone; the metrics count only counted targets; and the config's
 * refusals (a head other than the task's, a tied head without tokens, a
 * decoder for a non-lm model). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "model/model.h"
#include "train/metrics.h"

enum { B = 3, T = 7, NIN = 3 };

static void tiny(sl_config *c, const char *input, const char *head, int64_t n_out)
{
    sl_config_defaults(c);
    c->vocab_size = 9;
    c->d_model = 8;
    c->n_heads = 2;
    c->n_layers = 2;
    c->max_seq_len = T;
    c->seq_len = T;
    c->init_std = 0.3;
    c->bias = true;
    strcpy(c->input, input);
    strcpy(c->head, head);
    c->n_in = strcmp(input, "vectors") == 0 || strcmp(input, "both") == 0 ? NIN : 0;
    c->n_out = n_out;
}

/* Every array a batch of io may hold, filled at random: tokens (-1 at
 * every third position for input both), vectors, targets (every fourth
 * ignored), values, mask (every fifth off), lengths as given (NULL: T). */
typedef struct arrays {
    int32_t tokens[B * T], targets[B * T];
    float vectors[B * T * NIN], values[B * T * 4];
    uint8_t mask[B * T];
    int64_t lengths[B];
} arrays;

static sl_batch fill(arrays *a, const sl_model *m, const int64_t *lengths, uint64_t seed)
{
    sl_rng r;
    sl_rng_seed(&r, seed);
    const sl_task_io *io = &m->io;
    const int64_t classes = io->head == SL_HEAD_LM ? m->cfg.vocab_size : io->n_out;
    for (int64_t i = 0; i < B * T; i++) {
        a->tokens[i] = io->input == SL_INPUT_BOTH && i % 3 == 0
                           ? -1
                           : (int32_t)sl_rng_below(&r, (uint64_t)m->cfg.vocab_size);
        a->targets[i] = i % 4 == 1 ? -1 : (int32_t)sl_rng_below(&r, (uint64_t)classes);
        a->mask[i] = i % 5 != 2;
    }
    for (int64_t i = 0; i < B * T * NIN; i++) a->vectors[i] = sl_rng_normal(&r);
    for (int64_t i = 0; i < B * T * 4; i++) a->values[i] = sl_rng_normal(&r);
    if (io->head == SL_HEAD_CLASSIFY)
        for (int64_t b = 0; b < B; b++) a->targets[b] = (int32_t)(b % classes);
    for (int64_t b = 0; b < B; b++) a->lengths[b] = lengths ? lengths[b] : T;
    return (sl_batch){.B = B,
                      .T = T,
                      .tokens = io->input != SL_INPUT_VECTORS ? a->tokens : NULL,
                      .vectors = io->input != SL_INPUT_TOKENS ? a->vectors : NULL,
                      .targets = io->head != SL_HEAD_REGRESS ? a->targets : NULL,
                      .values = io->head == SL_HEAD_REGRESS ? a->values : NULL,
                      .mask = io->head == SL_HEAD_REGRESS ? a->mask : NULL,
                      .lengths = a->lengths};
}

static double loss_of(sl_model *m, sl_ctx *ctx, const sl_batch *b)
{
    sl_ctx_reset(ctx);
    return sl_model_batch_loss(m, ctx, b, NULL, NULL)->data[0];
}

/* Central differences of the batch loss against the tape's gradient,
 * three entries of every parameter. */
static void check_gradients(const sl_config *c, const int64_t *lengths, const char *what)
{
    sl_model m;
    CHECK(sl_model_create(&m, c) == SL_OK, "%s: create: %s", what, sl_errmsg());
    sl_model_init_weights(&m, 4);
    arrays a;
    const sl_batch b = fill(&a, &m, lengths, 7);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_params_zero_grad(&m.params);
    sl_backward(&ctx, sl_model_batch_loss(&m, &ctx, &b, NULL, NULL));
    ctx.grad_enabled = false;
    int bad = 0;
    for (size_t k = 0; k < m.params.count; k++) {
        sl_param *q = m.params.list[k];
        for (int64_t i = 0; i < q->t.n; i += q->t.n / 3 + 1) {
            const float x0 = q->t.data[i], h = 1e-2f;
            q->t.data[i] = x0 + h;
            const double lp = loss_of(&m, &ctx, &b);
            q->t.data[i] = x0 - h;
            const double lm = loss_of(&m, &ctx, &b);
            q->t.data[i] = x0;
            const double num = (lp - lm) / (2 * h), ana = q->t.grad[i];
            if (fabs(ana - num) > 3e-4 + 2e-2 * fabs(num) && bad++ < 5)
                fprintf(stderr, "  %s: %s[%lld]: analytic %g numeric %g\n", what, q->name,
                        (long long)i, ana, num);
        }
    }
    CHECK(bad == 0, "%s: %d parameter gradients off", what, bad);
    sl_ctx_free(&ctx);
    sl_model_free(&m);
}

static const int64_t SHORT[B] = {7, 1, 4};

static void test_gradients(void)
{
    sl_config c;
    tiny(&c, "vectors", "regress", 2);
    check_gradients(&c, NULL, "vectors -> regress");
    check_gradients(&c, SHORT, "vectors -> regress, short rows");
    tiny(&c, "both", "tag", 5);
    check_gradients(&c, NULL, "both -> tag");
    tiny(&c, "tokens", "lm", 0);
    c.tie_embeddings = false;
    check_gradients(&c, SHORT, "tokens -> lm, short rows");
    static const char *const POOLS[] = {"mean", "last", "first"};
    for (int p = 0; p < 3; p++) {
        tiny(&c, "tokens", "classify", 4);
        strcpy(c.pool, POOLS[p]);
        c.causal = p != 0;
        check_gradients(&c, SHORT, POOLS[p]);
    }
}

/* The outputs of rows shorter than T (packed) against each row alone as
 * a batch of one row of its length. */
static void check_alone(const sl_config *c, const char *what)
{
    sl_model m;
    CHECK(sl_model_create(&m, c) == SL_OK, "%s: create: %s", what, sl_errmsg());
    sl_model_init_weights(&m, 5);
    arrays a;
    const sl_batch b = fill(&a, &m, SHORT, 8);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_batch rows;
    sl_tensor *all = sl_model_forward_batch(&m, &ctx, &b, &rows);
    const bool classify = m.io.head == SL_HEAD_CLASSIFY;
    const int64_t C = sl_last(all);
    CHECK(rows.B == 1 && rows.T == 12 && sl_rows(all) == (classify ? B : 12), "%s: packed rows",
          what);
    int64_t at = 0;
    double worst = 0;
    for (int64_t i = 0; i < B; i++) {
        const int64_t L = SHORT[i];
        const sl_batch one = {.B = 1,
                              .T = L,
                              .tokens = b.tokens ? b.tokens + i * T : NULL,
                              .vectors = b.vectors ? b.vectors + i * T * NIN : NULL};
        sl_batch r1;
        sl_tensor *y = sl_model_forward_batch(&m, &ctx, &one, &r1);
        const float *p = all->data + (classify ? i : at) * C;
        for (int64_t j = 0; j < y->n; j++)
            worst = fmax(worst, fabs(p[j] - y->data[j]) / (1e-5 + 1e-4 * fabs(y->data[j])));
        at += L;
    }
    CHECK(worst <= 1, "%s: short rows vs alone: ratio %g", what, worst);
    if (!classify && rows.targets)
        CHECK(rows.targets[7] == b.targets[T] && rows.targets[8] == b.targets[2 * T],
              "%s: targets packed with their rows", what);
    sl_ctx_free(&ctx);
    sl_model_free(&m);
}

static void test_short_rows_match_alone(void)
{
    sl_config c;
    tiny(&c, "tokens", "lm", 0);
    check_alone(&c, "tokens -> lm");
    tiny(&c, "both", "regress", 3);
    c.causal = false;
    check_alone(&c, "both -> regress, bidirectional");
    tiny(&c, "tokens", "classify", 4);
    strcpy(c.pool, "mean");
    c.causal = false;
    check_alone(&c, "classify, mean");
    strcpy(c.pool, "last");
    c.causal = true;
    check_alone(&c, "classify, last");
}

/* Accuracy over counted targets only; MSE and MAE over counted rows. */
static void test_metrics(void)
{
    sl_tensor out = {.ndim = 2, .shape = {4, 3}, .n = 12};
    float o[12] = {0, 5, 1, /* argmax 1 */ 9, 0, 0, /* 0 */ 0, 0, 2, /* 2 */ 1, 1, 0 /* 0 */};
    out.data = o;
    int32_t t[4] = {1, 2, -1, 0};
    sl_metrics mt;
    sl_metrics_init(&mt, SL_HEAD_TAG);
    sl_metrics_add(&mt, 1.5, &out, &(sl_batch){.targets = t});
    sl_metrics_add(&mt, 2.5, &out, &(sl_batch){.targets = t});
    char json[256];
    sl_metrics_json(&mt, json, sizeof json);
    CHECK(strcmp(json, "\"loss\":2.000000,\"accuracy\":0.666667") == 0, "tag: %s", json);
    float v[12] = {0};
    v[0] = 1; /* row 0 off by 1 in one column */
    v[6] = 3; /* row 2 not counted */
    uint8_t mask[4] = {1, 1, 0, 1};
    sl_metrics_init(&mt, SL_HEAD_REGRESS);
    memset(o, 0, sizeof o);
    o[1] = -2;
    sl_metrics_add(&mt, 0.5, &out, &(sl_batch){.values = v, .mask = mask});
    sl_metrics_json(&mt, json, sizeof json);
    CHECK(strcmp(json, "\"loss\":0.500000,\"mse\":0.555556,\"mae\":0.333333") == 0, "regress: %s",
          json);
    sl_metrics_init(&mt, SL_HEAD_LM);
    sl_metrics_add(&mt, NAN, &out, &(sl_batch){.targets = t});
    sl_metrics_json(&mt, json, sizeof json);
    CHECK(strcmp(json, "\"loss\":null,\"bpc\":null,\"accuracy\":null") == 0, "NaN: %s", json);
}

static void test_config_refusals(void)
{
    sl_config c;
    tiny(&c, "auto", "regress", 0);
    const sl_task_io icl = {SL_INPUT_VECTORS, 5, SL_HEAD_REGRESS, 1, SL_POOL_LAST};
    CHECK(sl_config_adopt_io(&c, &icl, "task 'x'") == SL_OK, "auto adopts");
    CHECK(strcmp(c.input, "vectors") == 0 && c.n_in == 5 && c.n_out == 1, "adopted");
    tiny(&c, "tokens", "auto", 0);
    CHECK(sl_config_adopt_io(&c, &icl, "task 'x'") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "'input'") && strstr(sl_errmsg(), "task 'x'"),
          "input other than the task's: %s", sl_errmsg());
    tiny(&c, "auto", "auto", 0);
    c.n_out = 2;
    CHECK(sl_config_adopt_io(&c, &icl, "task 'x'") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "'n_out' = 2"),
          "n_out other than the task's: %s", sl_errmsg());
    tiny(&c, "vectors", "lm", 0);
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "tie_embeddings"),
          "tied head without tokens: %s", sl_errmsg());
    tiny(&c, "tokens", "tag", 0);
    CHECK(sl_model_create(&m, &c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'n_out'"),
          "tag without classes: %s", sl_errmsg());
    strcpy(c.head, "softmax");
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'head'"),
          "unknown head: %s", sl_errmsg());
    tiny(&c, "tokens", "tag", 3);
    CHECK(sl_model_create(&m, &c) == SL_OK, "tag model");
    CHECK(m.head && m.head->shape[0] == 3 && m.head_b && !m.in_w, "head.weight [3, D], head.bias");
    sl_decoder d;
    CHECK(sl_decoder_init(&d, &m) == SL_ERR_CONFIG && strstr(sl_errmsg(), "head = tag"),
          "no decoding with a tag head: %s", sl_errmsg());
    sl_model_free(&m);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_gradients);
    RUN(test_short_rows_match_alone);
    RUN(test_metrics);
    RUN(test_config_refusals);
    return TEST_SUMMARY();
}
