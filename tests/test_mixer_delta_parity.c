/* The delta-rule mixers against the PyTorch oracle (tools/oracle_delta.py):
 * a naive float64 token loop gave the output and the gradients of the input
 * and of every weight for the fixture's x, dy and weights; the C mixer, with
 * its chunked forward (chunk 4 over T = 11: two full chunks and a ragged
 * one) and hand-written backward, must match to the recorded tolerance.
 * SEQLAB_FIXTURES points at another fixture directory. */
#include <string.h>

#include "check.h"
#include "mixers/mixer.h"
#include "train/safetensors.h"

extern const sl_mixer_vtable sl_mixer_deltanet, sl_mixer_gated_deltanet;

static const char *fixture_dir(void)
{
    const char *d = getenv("SEQLAB_FIXTURES");
    return d && d[0] ? d : "tests/fixtures";
}

static int64_t meta_int(const sl_st_file *f, const char *key)
{
    const char *v = sl_st_meta_find(f, key);
    CHECK(v, "metadata '%s' missing", key);
    return v ? atoll(v) : 0;
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

static void check_fixture(const sl_mixer_vtable *vt)
{
    char path[512];
    snprintf(path, sizeof path, "%s/mixer_%s.safetensors", fixture_dir(), vt->name);
    sl_st_file f;
    if (sl_st_read(path, &f) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    sl_config c;
    sl_config_defaults(&c);
    int64_t B = meta_int(&f, "B"), T = meta_int(&f, "T");
    c.d_model = meta_int(&f, "d_model");
    c.n_heads = meta_int(&f, "n_heads");
    c.conv_size = meta_int(&f, "conv_size");
    c.norm_eps = meta_float(&f, "norm_eps");
    c.chunk_size = 4;
    double tol = meta_float(&f, "tol");
    CHECK(tol > 0 && B > 0 && T > 0, "%s: shapes and tolerance recorded", path);
    sl_mixer m = {vt, &c, 0, NULL};
    sl_params p;
    sl_params_init(&p);
    CHECK(vt->init(&m, &p) == SL_OK && sl_params_finalize(&p) == SL_OK, "%s", sl_errmsg());
    for (size_t i = 0; i < p.count; i++) {
        sl_param *q = p.list[i];
        char name[160];
        snprintf(name, sizeof name, "param.%s", q->name);
        const void *w;
        if (sl_st_expect(&f, name, SL_DT_F32, q->t.ndim, q->t.shape, &w) == SL_OK)
            memcpy(q->t.data, w, (size_t)q->t.n * sizeof(float));
        else
            CHECK(0, "%s", sl_errmsg());
    }
    int64_t xs[3] = {B, T, c.d_model};
    const void *xd, *dyd;
    if (sl_st_expect(&f, "x", SL_DT_F32, 3, xs, &xd) == SL_OK &&
        sl_st_expect(&f, "dy", SL_DT_F32, 3, xs, &dyd) == SL_OK) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_params_zero_grad(&p);
        sl_tensor *x = SL_NEW(&ctx, B, T, c.d_model);
        memcpy(x->data, xd, (size_t)x->n * sizeof(float));
        x->requires_grad = true;
        sl_tensor *y = vt->forward(&m, &ctx, x, NULL, 0);
        sl_backward_with(&ctx, y, dyd);
        expect_close(&f, "y", 3, xs, y->data, tol);
        expect_close(&f, "grad.x", 3, xs, x->grad, tol);
        for (size_t i = 0; i < p.count; i++) {
            sl_param *q = p.list[i];
            char name[160];
            snprintf(name, sizeof name, "grad.%s", q->name);
            expect_close(&f, name, q->t.ndim, q->t.shape, q->t.grad, tol);
        }
        sl_ctx_free(&ctx);
    } else {
        CHECK(0, "%s", sl_errmsg());
    }
    free(m.impl);
    sl_params_free(&p);
    sl_st_close(&f);
}

static void test_parity_deltanet(void) { check_fixture(&sl_mixer_deltanet); }
static void test_parity_gated_deltanet(void) { check_fixture(&sl_mixer_gated_deltanet); }

int main(void)
{
    RUN(test_parity_deltanet);
    RUN(test_parity_gated_deltanet);
    return TEST_SUMMARY();
}
