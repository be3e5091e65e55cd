/* Whole-model parity with the PyTorch oracle (tools/oracle.py): for each
 * committed fixture, the C model loads the same checkpoint and must give the
 * oracle's logits and loss, every parameter gradient, and the losses of 10
 * AdamW steps on the fixture's batch, within the tolerances the fixture
 * records; and the same for models with other inputs and heads (vector
 * read-in, tag, regress and pooled classify heads, rows of their own
 * lengths). SEQLAB_FIXTURES overrides the directory (`make parity` points it
 * at freshly generated fixtures). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/safetensors.h"

static const char *fixture_dir(void)
{
    const char *d = getenv("SEQLAB_FIXTURES");
    return d && d[0] ? d : "tests/fixtures";
}

static double meta_tol(const sl_st_file *f, const char *key)
{
    const char *v = sl_st_meta_find(f, key);
    return v ? atof(v) : 0;
}

/* The model of a checkpoint tools/oracle.py --init wrote (no seqlab
 * format metadata: the C engine trains no task with these heads yet):
 * built from its stored config, every tensor taken by name and shape. */
static sl_status load_oracle_ckpt(const char *path, sl_model *m)
{
    sl_st_file f;
    sl_status st = sl_st_read(path, &f);
    if (st) return st;
    const char *json = sl_st_meta_find(&f, "config");
    sl_config c;
    sl_config_defaults(&c);
    st = json ? sl_config_parse_stored(&c, json, path) : sl_fail(SL_ERR_FORMAT, "%s: no config", path);
    if (!st) st = sl_model_create(m, &c);
    for (size_t i = 0; !st && i < m->params.count; i++) {
        sl_param *q = m->params.list[i];
        const void *data;
        st = sl_st_expect(&f, q->name, SL_DT_F32, q->t.ndim, q->t.shape, &data);
        if (!st) memcpy(q->t.data, data, (size_t)q->t.n * sizeof(float));
        else sl_model_free(m);
    }
    sl_st_close(&f);
    return st;
}

/* Fixture NAME and the model of the checkpoint beside it (written by the C
 * engine, or by the oracle's --init); false, with a failed check, when
 * either cannot be read. */
static bool open_fixture(const char *name, bool oracle_init, sl_st_file *f, sl_model *m)
{
    char fx[512], ck[512];
    snprintf(fx, sizeof fx, "%s/parity_%s.safetensors", fixture_dir(), name);
    snprintf(ck, sizeof ck, "%s/parity_%s.ckpt.safetensors", fixture_dir(), name);
    if (sl_st_read(fx, f) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return false;
    }
    if ((oracle_init ? load_oracle_ckpt(ck, m) : sl_checkpoint_load(ck, m, NULL)) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        sl_st_close(f);
        return false;
    }
    return true;
}

/* Every parameter's gradient against the fixture's grad.NAME. */
static void check_grads(const char *name, const sl_st_file *f, const sl_model *m, double tol)
{
    for (size_t i = 0; i < m->params.count; i++) {
        const sl_param *q = m->params.list[i];
        char gname[160];
        const void *want;
        snprintf(gname, sizeof gname, "grad.%s", q->name);
        if (sl_st_expect(f, gname, SL_DT_F32, q->t.ndim, q->t.shape, &want) != SL_OK) {
            CHECK(0, "%s", sl_errmsg());
            continue;
        }
        const double r = close_ratio(q->t.grad, want, q->t.n, tol, tol);
        CHECK(r <= 1, "%s: %s off by %.3g x tolerance", name, q->name, r);
    }
}

static void check_fixture(const char *name)
{
    sl_st_file f;
    sl_model m;
    if (!open_fixture(name, false, &f, &m)) return;
    const sl_st_tensor *tok = sl_st_find(&f, "tokens"), *tgt = sl_st_find(&f, "targets");
    CHECK(tok && tgt && tok->dtype == SL_DT_I32 && tok->ndim == 2, "%s: tokens", name);
    if (!tok || !tgt) goto out;
    int64_t B = tok->shape[0], T = tok->shape[1], V = m.cfg.vocab_size;
    double tol_loss = meta_tol(&f, "tol_loss"), tol_grad = meta_tol(&f, "tol_grad");
    double tol_losses = meta_tol(&f, "tol_losses");
    CHECK(tol_loss > 0 && tol_grad > 0 && tol_losses > 0, "%s: tolerances recorded", name);

    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_params_zero_grad(&m.params);
    sl_tensor *logits = sl_model_forward(&m, &ctx, tok->data, B, T);
    sl_tensor *loss = sl_cross_entropy(&ctx, logits, tgt->data, -1);
    sl_backward(&ctx, loss);
    const void *want;
    int64_t lshape[3] = {B, T, V}, one = 1;
    if (sl_st_expect(&f, "logits", SL_DT_F32, 3, lshape, &want) == SL_OK)
        CHECK(close_ratio(logits->data, want, B * T * V, tol_grad, tol_grad) <= 1, "%s: logits", name);
    else
        CHECK(0, "%s", sl_errmsg());
    if (sl_st_expect(&f, "loss", SL_DT_F32, 1, &one, &want) == SL_OK)
        CHECK_CLOSE(loss->data[0], *(const float *)want, 0, tol_loss, "loss");
    check_grads(name, &f, &m, tol_grad);
    /* Ten AdamW updates on the same batch, as the trainer does them. */
    int64_t ten = 10;
    if (sl_st_expect(&f, "losses", SL_DT_F32, 1, &ten, &want) == SL_OK) {
        const float *w = want;
        for (int64_t s = 0; s < 10; s++) {
            sl_ctx_reset(&ctx);
            sl_params_zero_grad(&m.params);
            sl_tensor *l = sl_model_loss(&m, &ctx, tok->data, tgt->data, B, T);
            CHECK_CLOSE(l->data[0], w[s], 0, tol_losses, "loss before update");
            sl_backward(&ctx, l);
            sl_clip_grad(&m.params, m.cfg.grad_clip);
            sl_adamw_step(&m.params, &m.cfg, s, sl_lr_at(&m.cfg, s));
        }
    } else {
        CHECK(0, "%s", sl_errmsg());
    }
    sl_ctx_free(&ctx);
out:
    sl_model_free(&m);
    sl_st_close(&f);
}

/* A fixture of a model other than tokens -> lm (tools/oracle.py's
 * make_io_fixture): its batch (rows of their own lengths), outputs, loss,
 * gradients and ten AdamW steps through sl_model_batch_loss. */
static void check_io_fixture(const char *name)
{
    sl_st_file f;
    sl_model m;
    if (!open_fixture(name, true, &f, &m)) return;
    const sl_st_tensor *len = sl_st_find(&f, "lengths"), *tok = sl_st_find(&f, "tokens");
    const sl_st_tensor *vec = sl_st_find(&f, "vectors"), *tgt = sl_st_find(&f, "targets");
    const sl_st_tensor *val = sl_st_find(&f, "values"), *msk = sl_st_find(&f, "mask");
    const sl_st_tensor *out = sl_st_find(&f, "outputs");
    CHECK(len && out && len->dtype == SL_DT_I32 && out->dtype == SL_DT_F32 && out->ndim == 2,
          "%s: lengths, outputs", name);
    if (!len || !out) goto out;
    const int64_t B = len->shape[0];
    int64_t T = 0, lengths[64];
    for (int64_t b = 0; b < B && b < 64; b++) {
        lengths[b] = ((const int32_t *)len->data)[b];
        T = lengths[b] > T ? lengths[b] : T;
    }
    const sl_batch batch = {.B = B,
                            .T = T,
                            .tokens = tok ? (int32_t *)tok->data : NULL,
                            .vectors = vec ? (float *)vec->data : NULL,
                            .targets = tgt ? (int32_t *)tgt->data : NULL,
                            .values = val ? (float *)val->data : NULL,
                            .mask = msk ? (uint8_t *)msk->data : NULL,
                            .lengths = lengths};
    CHECK(B <= 64 && (tok != NULL) == (m.io.input != SL_INPUT_VECTORS) &&
              (vec != NULL) == (m.io.input != SL_INPUT_TOKENS) &&
              (val != NULL) == (m.io.head == SL_HEAD_REGRESS),
          "%s: the arrays of the model's inputs and head", name);
    const double tol_loss = meta_tol(&f, "tol_loss"), tol_grad = meta_tol(&f, "tol_grad");
    const double tol_losses = meta_tol(&f, "tol_losses");
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_batch rows;
    sl_tensor *y = sl_model_forward_batch(&m, &ctx, &batch, &rows);
    CHECK(y->n == out->shape[0] * out->shape[1] &&
              close_ratio(y->data, out->data, y->n, tol_grad, tol_grad) <= 1,
          "%s: outputs", name);
    sl_ctx_reset(&ctx);
    sl_params_zero_grad(&m.params);
    sl_tensor *loss = sl_model_batch_loss(&m, &ctx, &batch, NULL, NULL);
    sl_backward(&ctx, loss);
    CHECK_CLOSE(loss->data[0], ((const float *)sl_st_find(&f, "loss")->data)[0], 0, tol_loss,
                "loss");
    check_grads(name, &f, &m, tol_grad);
    const float *w = sl_st_find(&f, "losses")->data;
    for (int64_t s = 0; s < 10; s++) {
        sl_ctx_reset(&ctx);
        sl_params_zero_grad(&m.params);
        sl_tensor *l = sl_model_batch_loss(&m, &ctx, &batch, NULL, NULL);
        CHECK_CLOSE(l->data[0], w[s], 0, tol_losses, "loss before update");
        sl_backward(&ctx, l);
        sl_clip_grad(&m.params, m.cfg.grad_clip);
        sl_adamw_step(&m.params, &m.cfg, s, sl_lr_at(&m.cfg, s));
    }
    sl_ctx_free(&ctx);
out:
    sl_model_free(&m);
    sl_st_close(&f);
}

static void test_parity_gpt(void) { check_fixture("gpt"); }
static void test_parity_llama(void) { check_fixture("llama"); }
static void test_parity_bidir(void) { check_fixture("bidir"); }
static void test_parity_window(void) { check_fixture("window"); }
static void test_parity_gqa(void) { check_fixture("gqa"); }
static void test_parity_head_regress(void) { check_io_fixture("head_regress"); }
static void test_parity_head_tag(void) { check_io_fixture("head_tag"); }
static void test_parity_head_classify(void) { check_io_fixture("head_classify"); }

int main(void)
{
    RUN(test_parity_gpt);
    RUN(test_parity_llama);
    RUN(test_parity_bidir);
    RUN(test_parity_window);
    RUN(test_parity_gqa);
    RUN(test_parity_head_regress);
    RUN(test_parity_head_tag);
    RUN(test_parity_head_classify);
    return TEST_SUMMARY();
}
