/* The recurrent mixers against the PyTorch oracles (tools/oracle_mixers.py
 * for the decayed linear-attention family and mamba2, tools/oracle_delta.py
 * for the delta rule, tools/oracle_transnormer.py for both kinds of
 * transnormer layer, tools/oracle_mlstm.py for xLSTM's matrix memory): a
 * naive float64 token loop gave the output and the gradients
 * of the input and of every weight for the fixture's x, dy and weights; the
 * C mixer, with its chunked forward (chunks of 4 or 5 over T = 11: two full
 * chunks and a ragged one) and hand-written backward, must match to the
 * recorded tolerance. The fixture's metadata carries the config keys the
 * oracle used, and the layer index where a mixer's form depends on depth.
 * SEQLAB_FIXTURES points at another fixture directory. */
#include <string.h>

#include "check.h"
#include "mixers/mixer.h"
#include "train/safetensors.h"

extern const sl_mixer_vtable sl_mixer_linear_attention, sl_mixer_retnet, sl_mixer_gla,
    sl_mixer_deltanet, sl_mixer_gated_deltanet, sl_mixer_mamba2, sl_mixer_transnormer,
    sl_mixer_mlstm;

/* Config keys a fixture may set; each one present is applied as given. */
static const char *const CONFIG_KEYS[] = {"d_model",    "n_heads",     "chunk_size", "norm_eps",
                                          "rope_theta", "feature_map", "normalize",  "conv_size",
                                          "n_layers",   "block_size",  "decay"};

static const char *fixture_dir(void)
{
    const char *d = getenv("SEQLAB_FIXTURES");
    return d && d[0] ? d : "tests/fixtures";
}

static double meta_float(const sl_st_file *f, const char *key)
{
    const char *v = sl_st_meta_find(f, key);
    CHECK(v, "metadata '%s' missing", key);
    return v ? atof(v) : 0;
}

/* Compares n floats with the fixture's tensor `name` of the given shape. */
static void expect_close(const sl_st_file *f, const char *name, int ndim, const int64_t *shape,
                         const float *got, double tol)
{
    const void *want;
    if (sl_st_expect(f, name, SL_DT_F32, ndim, shape, &want) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double r = close_ratio(got, want, n, tol, tol);
    CHECK(r <= 1, "%s off by %.3g x tolerance", name, r);
}

/* Forward and backward of the mixer with the fixture's weights and x, dy. */
static void run_and_compare(const sl_st_file *f, const sl_mixer_vtable *vt, sl_mixer *m,
                            sl_params *p, int64_t B, int64_t T, double tol)
{
    const int64_t D = m->cfg->d_model, xs[3] = {B, T, D};
    const void *xd, *dyd;
    if (sl_st_expect(f, "x", SL_DT_F32, 3, xs, &xd) != SL_OK ||
        sl_st_expect(f, "dy", SL_DT_F32, 3, xs, &dyd) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_params_zero_grad(p);
    sl_tensor *x = SL_NEW(&ctx, B, T, D);
    memcpy(x->data, xd, (size_t)x->n * sizeof(float));
    x->requires_grad = true;
    sl_tensor *y = vt->forward(m, &ctx, x, NULL, 0, NULL);
    sl_backward_with(&ctx, y, dyd);
    expect_close(f, "y", 3, xs, y->data, tol);
    expect_close(f, "grad.x", 3, xs, x->grad, tol);
    for (size_t i = 0; i < p->count; i++) {
        sl_param *q = p->list[i];
        char name[160];
        snprintf(name, sizeof name, "grad.%s", q->name);
        expect_close(f, name, q->t.ndim, q->t.shape, q->t.grad, tol);
    }
    sl_ctx_free(&ctx);
}

/* The fixture mixer_NAME{variant}.safetensors of vt's mixer. */
static void check_fixture(const sl_mixer_vtable *vt, const char *variant)
{
    char path[512];
    snprintf(path, sizeof path, "%s/mixer_%s%s.safetensors", fixture_dir(), vt->name, variant);
    sl_st_file f;
    if (sl_st_read(path, &f) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    sl_config c;
    sl_config_defaults(&c);
    c.chunk_size = 4; /* unless the fixture says otherwise: T = 11 crosses chunk edges */
    for (size_t i = 0; i < sizeof CONFIG_KEYS / sizeof CONFIG_KEYS[0]; i++) {
        const char *v = sl_st_meta_find(&f, CONFIG_KEYS[i]);
        if (v) CHECK(sl_config_set(&c, CONFIG_KEYS[i], v) == SL_OK, "%s", sl_errmsg());
    }
    int64_t B = (int64_t)meta_float(&f, "B"), T = (int64_t)meta_float(&f, "T");
    double tol = meta_float(&f, "tol");
    CHECK(tol > 0 && B > 0 && T > 0, "%s: shapes and tolerance recorded", path);
    const char *layer = sl_st_meta_find(&f, "layer");
    sl_mixer m = {vt, &c, layer ? atoll(layer) : 0, NULL};
    sl_params p;
    sl_params_init(&p);
    if (vt->init(&m, &p) == SL_OK && sl_params_finalize(&p) == SL_OK) {
        bool loaded = true;
        for (size_t i = 0; i < p.count; i++) {
            sl_param *q = p.list[i];
            char name[160];
            snprintf(name, sizeof name, "param.%s", q->name);
            const void *w;
            if (sl_st_expect(&f, name, SL_DT_F32, q->t.ndim, q->t.shape, &w) == SL_OK) {
                memcpy(q->t.data, w, (size_t)q->t.n * sizeof(float));
            } else {
                CHECK(0, "%s", sl_errmsg());
                loaded = false;
            }
        }
        if (loaded && tol > 0 && B > 0 && T > 0) run_and_compare(&f, vt, &m, &p, B, T, tol);
    } else {
        CHECK(0, "%s: %s", path, sl_errmsg());
    }
    free(m.impl);
    sl_params_free(&p);
    sl_st_close(&f);
}

/* elu + 1 with the normaliser, and Based's Taylor features without it. */
static void test_parity_linear_attention(void)
{
    check_fixture(&sl_mixer_linear_attention, "");
    check_fixture(&sl_mixer_linear_attention, "_taylor");
}

static void test_parity_retnet(void) { check_fixture(&sl_mixer_retnet, ""); }
static void test_parity_gla(void) { check_fixture(&sl_mixer_gla, ""); }
static void test_parity_deltanet(void) { check_fixture(&sl_mixer_deltanet, ""); }
static void test_parity_gated_deltanet(void) { check_fixture(&sl_mixer_gated_deltanet, ""); }
/* The oracle differentiates through the stabiliser m; the C backward holds
 * it fixed (src/ops/mlstm.h): the two must agree. */
static void test_parity_mlstm(void) { check_fixture(&sl_mixer_mlstm, ""); }

/* With the short conv (and its bias) in front of x, B, C, and without. */
static void test_parity_mamba2(void)
{
    check_fixture(&sl_mixer_mamba2, "");
    check_fixture(&sl_mixer_mamba2, "_noconv");
}

/* NormAttention with the decay (three heads: the ALiBi interleave) and
 * DiagAttention over blocks of 4. */
static void test_parity_transnormer(void)
{
    check_fixture(&sl_mixer_transnormer, "_norm");
    check_fixture(&sl_mixer_transnormer, "_diag");
}

int main(void)
{
    RUN(test_parity_linear_attention);
    RUN(test_parity_retnet);
    RUN(test_parity_gla);
    RUN(test_parity_deltanet);
    RUN(test_parity_gated_deltanet);
    RUN(test_parity_mamba2);
    RUN(test_parity_transnormer);
    RUN(test_parity_mlstm);
    return TEST_SUMMARY();
}
