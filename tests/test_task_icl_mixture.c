/* The icl_mixture task: families drawn by weight, each one's function
 * shape and target scale, splits, bad options. */
#include <stdlib.h>

#include "check.h"
#include "icl_check.h"

extern const sl_task_vtable sl_task_icl_mixture;

static void test_splits(void)
{
    const uint64_t golden[4] = {0xc11afa4db6906b84ull, 0x19f89f583d519efcull, 0xe653ecd8d964903dull,
                                0xccc236b1101dc67full};
    icl_check_splits(&sl_task_icl_mixture, 82, NULL, 5000, golden);
}

static const char *const ONLY[SL_ICL_FAMILIES][9] = {
    {"sparse", "0", "relu", "0", "tree", "0", NULL},
    {"linear", "0", "relu", "0", "tree", "0", NULL},
    {"linear", "0", "sparse", "0", "tree", "0", NULL},
    {"linear", "0", "sparse", "0", "relu", "0", NULL},
};

/* A validation batch of B rows of one family (d = 20, 41 points). */
static sl_batch family_batch(sl_task *t, int f, int64_t B)
{
    CHECK(synth_open(t, &sl_task_icl_mixture, 82, ONLY[f]) == SL_OK, "%s", sl_errmsg());
    sl_batch b = icl_batch(t, SL_SPLIT_VAL, 9, 0, B, 82);
    icl_check_layout(&b, 20, 20, 41);
    for (int64_t r = 0; r < B; r++) CHECK(sl_icl_row_family(t, r) == f, "row %lld", (long long)r);
    CHECK(sl_icl_row_family(t, B) == -1, "no such row");
    return b;
}

/* Row r's examples: xs [41, 20], ys [41]. */
static void examples(const sl_batch *b, int64_t r, double *xs, double *ys)
{
    for (int64_t i = 0; i < 41; i++) {
        for (int64_t j = 0; j < 20; j++) xs[i * 20 + j] = b->vectors[(r * 82 + 2 * i) * 20 + j];
        ys[i] = b->values[r * 82 + 2 * i];
    }
}

/* Each family alone: targets of about unit variance; linear ones are
 * linear (least squares on 30 examples predicts the rest), the sparse w
 * has 3 nonzero coordinates (least squares' predictions at the unit
 * vectors), a tree takes at most 16 values; ReLU networks are not linear. */
static void test_families(void)
{
    enum { B = 300 };
    double xs[41 * 20], ys[41], e[20] = {0};
    for (int f = 0; f < SL_ICL_FAMILIES; f++) {
        sl_task t;
        sl_batch b = family_batch(&t, f, B);
        double y2 = 0, lin = 0;
        for (int64_t r = 0; r < B; r++) {
            examples(&b, r, xs, ys);
            for (int i = 0; i < 41; i++) y2 += ys[i] * ys[i];
            double miss = 0;
            for (int i = 30; i < 41; i++) {
                double y;
                sl_icl_least_squares(xs, ys, 30, 20, xs + i * 20, &y);
                miss += (y - ys[i]) * (y - ys[i]);
            }
            lin += miss / 11;
            if (f == SL_ICL_LINEAR || f == SL_ICL_SPARSE)
                CHECK(miss / 11 < 1e-10, "%s row %lld: least squares misses by %g",
                      sl_icl_family_name(f), (long long)r, miss / 11);
            if (f == SL_ICL_SPARSE) {
                int nonzero = 0;
                for (int j = 0; j < 20; j++) {
                    double w;
                    e[j] = 1;
                    sl_icl_least_squares(xs, ys, 41, 20, e, &w);
                    e[j] = 0;
                    nonzero += fabs(w) > 1e-7;
                }
                CHECK(nonzero == 3, "row %lld: %d nonzero coordinates", (long long)r, nonzero);
            }
            if (f == SL_ICL_TREE) {
                int distinct = 0;
                for (int i = 0; i < 41; i++) {
                    int j = 0;
                    while (j < i && ys[j] != ys[i]) j++;
                    distinct += j == i;
                }
                CHECK(distinct <= 16, "row %lld: %d leaf values", (long long)r, distinct);
            }
        }
        const double var = y2 / (B * 41.0);
        CHECK(fabs(var - 1) < 0.2, "%s: E y^2 = %g", sl_icl_family_name(f), var);
        if (f == SL_ICL_RELU) CHECK(lin / B > 1e-3, "relu: linear fit misses by %g", lin / B);
        sl_batch_free(&b);
        sl_task_close(&t);
    }
}

/* Families come in proportion to their weights: 1 : 0 : 3 : 0 over 4000
 * rows, within 5 standard deviations. */
static void test_weights(void)
{
    const char *const kv[] = {"linear", "1", "sparse", "0", "relu", "3", "tree", "0", NULL};
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_mixture, 82, kv) == SL_OK, "%s", sl_errmsg());
    int64_t n[SL_ICL_FAMILIES] = {0};
    for (uint64_t s = 0; s < 100; s++) {
        sl_batch b = icl_batch(&t, SL_SPLIT_TRAIN, s, 0, 40, 82);
        for (int64_t r = 0; r < 40; r++) n[sl_icl_row_family(&t, r)]++;
        sl_batch_free(&b);
    }
    CHECK(n[SL_ICL_SPARSE] == 0 && n[SL_ICL_TREE] == 0, "weight 0, never drawn");
    CHECK(fabs(n[SL_ICL_RELU] - 3000.0) < 5 * sqrt(4000 * 0.75 * 0.25), "relu %lld of 4000",
          (long long)n[SL_ICL_RELU]);
    sl_task_close(&t);
}

/* With the curriculum at d = 2 < sparsity, a sparse w uses both
 * coordinates; trees split on the coordinates there are. */
static void test_small_dims(void)
{
    const char *const kv[] = {"dims_start", "2", "linear", "0", "relu", "0", NULL};
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_mixture, 82, kv) == SL_OK, "%s", sl_errmsg());
    sl_batch b = icl_batch(&t, SL_SPLIT_TRAIN, 4, 0, 50, 82);
    icl_check_layout(&b, 20, 2, 11);
    for (int64_t r = 0; r < 50; r++) {
        const float *y = b.values + r * 82;
        CHECK(isfinite(y[0]) && isfinite(y[20]), "finite targets");
    }
    sl_batch_free(&b);
    sl_task_close(&t);
}

static void test_shape(void)
{
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_mixture, 82, NULL) == SL_OK, "%s", sl_errmsg());
    sl_icl_shape s;
    CHECK(sl_icl_task_shape(&t, &s) && s.n_in == 20 && s.dims == 20 && s.points == 41 && s.norm == 1,
          "mixture shape");
    CHECK(sl_icl_row_family(&t, 0) == -1, "no batch yet");
    sl_task_close(&t);
}

static void test_bad_options(void)
{
    const sl_task_vtable *vt = &sl_task_icl_mixture;
    const char *const none[] = {"linear", "0", "sparse", "0", "relu", "0", "tree", "0", NULL};
    synth_check_rejects(vt, 82, none, "linear, sparse, relu, tree");
    synth_check_rejects(vt, 40, NULL, "seq_len");
    sl_opts o;
    sl_opts_defaults(&o, vt->options);
    const char *bad[][2] = {{"relu", "-1"}, {"hidden", "0"}, {"sparsity", "0"}, {"tree", "nan"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(sl_opts_set(&o, "task 'icl_mixture'", "test", bad[i][0], bad[i][1], SL_FROM_TEXT) ==
                      SL_ERR_CONFIG &&
                  strstr(sl_errmsg(), bad[i][0]),
              "%s = %s: %s", bad[i][0], bad[i][1], sl_errmsg());
}

int main(void)
{
    RUN(test_splits);
    RUN(test_families);
    RUN(test_weights);
    RUN(test_small_dims);
    RUN(test_shape);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
