/* Every mixer against its PyTorch oracle, for each committed fixture
 * FIXTURES/mixer_*.safetensors (globbed: a new oracle entry's fixture is
 * picked up with no change here). tools/oracle_mixers.py covers the decayed
 * linear-attention family and mamba2, tools/oracle_delta.py the delta rule,
 * tools/oracle_transnormer.py both kinds of transnormer layer,
 * tools/oracle_mlstm.py xLSTM's matrix memory, tools/oracle_hgrn.py HGRN's
 * lower-bounded gated recurrence, tools/oracle_s4d.py and oracle_h3.py the
 * diagonal SSM's complex recurrence, tools/oracle_lstm.py the LSTM,
 * tools/oracle_aaren.py Aaren's prefix softmax (each prefix's softmax
 * afresh): a naive float64 token loop
 * gave the output and the gradients of the input and of every weight for
 * the fixture's x, dy and weights; the C mixer, with its chunked forward
 * (chunks of 4 or 5 over T = 11: two full chunks and a ragged one) and
 * hand-written backward, must match to the recorded tolerance.
 *
 * The fixture's metadata names the mixer and carries the settings the
 * oracle used: sl_mixer_dims fields, the mixer's options and `layer` are
 * applied; other keys (B, T, tol, seed, and settings an oracle records for
 * every mixer it serves) are its record. SEQLAB_FIXTURES points at another
 * fixture directory. */
#include <dirent.h>
#include <string.h>

#include "mixer_check.h"
#include "train/safetensors.h"

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
    const int64_t D = m->dims.d_model, xs[3] = {B, T, D};
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

/* Metadata keys that are the fixture's record, not settings. */
static bool record_key(const char *k)
{
    static const char *const KEYS[] = {"mixer", "kind", "B", "T", "tol", "seed"};
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        if (strcmp(k, KEYS[i]) == 0) return true;
    return false;
}

/* The fixture at path; its mixer's name is stored in *seen. */
static void check_fixture(const char *path, const sl_mixer_vtable **seen)
{
    sl_st_file f;
    if (sl_st_read(path, &f) != SL_OK) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    const char *name = sl_st_meta_find(&f, "mixer");
    const sl_mixer_vtable *vt = name ? sl_mixer_lookup(name) : NULL;
    CHECK(vt, "%s: metadata 'mixer' names a registered mixer", path);
    if (!vt) {
        sl_st_close(&f);
        return;
    }
    *seen = vt;
    mc_cfg c;
    mc_tiny(&c, vt);
    c.dims.chunk_size = 4; /* unless the fixture says otherwise: T = 11 crosses chunk edges */
    for (size_t i = 0; i < f.nmeta; i++) {
        const char *k = f.meta[i].key, *v = f.meta[i].value;
        if (record_key(k)) continue;
        bool ok = mc_set(&c, vt, k, v);
        CHECK(ok || !sl_option_find(vt->options, k), "%s: metadata '%s' = %s: %s", path, k, v,
              sl_errmsg());
    }
    int64_t B = (int64_t)meta_float(&f, "B"), T = (int64_t)meta_float(&f, "T");
    double tol = meta_float(&f, "tol");
    CHECK(tol > 0 && B > 0 && T > 0, "%s: shapes and tolerance recorded", path);
    sl_mixer m = {0};
    sl_params p;
    sl_params_init(&p);
    if (sl_mixer_create(&m, vt, &c.dims, &c.opts, c.layer, &p) == SL_OK &&
        sl_params_finalize(&p) == SL_OK) {
        bool loaded = true;
        for (size_t i = 0; i < p.count; i++) {
            sl_param *q = p.list[i];
            char pname[160];
            snprintf(pname, sizeof pname, "param.%s", q->name);
            const void *w;
            if (sl_st_expect(&f, pname, SL_DT_F32, q->t.ndim, q->t.shape, &w) == SL_OK) {
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

int main(void)
{
    DIR *dir = opendir(fixture_dir());
    CHECK(dir, "%s: cannot list fixtures", fixture_dir());
    char paths[64][512];
    size_t n = 0;
    for (struct dirent *e; dir && (e = readdir(dir)) && n < 64;) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "mixer_", 6) == 0 && len > 12 &&
            strcmp(e->d_name + len - 12, ".safetensors") == 0)
            snprintf(paths[n++], sizeof paths[0], "%s/%s", fixture_dir(), e->d_name);
    }
    if (dir) closedir(dir);
    qsort(paths, n, sizeof paths[0], (int (*)(const void *, const void *))strcmp);
    bool has[64] = {false};
    for (size_t i = 0; i < n; i++) {
        const sl_mixer_vtable *vt = NULL;
        RUN_AS(strrchr(paths[i], '/') + 1, check_fixture(paths[i], &vt));
        for (size_t k = 0; vt && k < sl_mixer_count(); k++) has[k] |= sl_mixer_at(k) == vt;
    }
    /* attention is checked against the oracle as whole models
     * (tests/test_parity.c); every other mixer needs a fixture here. */
    for (size_t k = 0; k < sl_mixer_count(); k++) {
        const char *name = sl_mixer_at(k)->name;
        char test[96];
        snprintf(test, sizeof test, "%s has an oracle fixture", name);
        RUN_AS(test, CHECK(has[k] || strcmp(name, "attention") == 0, "no mixer_%s*.safetensors "
                                                                      "in %s", name, fixture_dir()));
    }
    return TEST_SUMMARY();
}
