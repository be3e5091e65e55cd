/* The icl_regression task: Garg et al.'s prompts, curriculum, splits, the
 * Gaussian draw, bad options; the trainer feeds the curriculum its step,
 * also after a resume. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "icl_check.h"
#include "train/trainer.h"

extern const sl_task_vtable sl_task_icl_regression;

static void test_splits(void)
{
    const uint64_t golden[4] = {0xf762d6956354e10aull, 0x797f54ae35e9f6daull, 0x099349de6564c2b1ull,
                                0xe13b898fac215cd1ull};
    icl_check_splits(&sl_task_icl_regression, 82, NULL, 5000, golden);
}

/* sl_synth_normal: mean 0, variance 1, kurtosis 3, and the share within
 * one standard deviation, over 200k draws. */
static void test_normal(void)
{
    enum { N = 200000 };
    sl_rng r;
    sl_rng_seed(&r, 11);
    double m1 = 0, m2 = 0, m4 = 0, inside = 0;
    for (int i = 0; i < N; i++) {
        const double z = sl_synth_normal(&r);
        m1 += z;
        m2 += z * z;
        m4 += z * z * z * z;
        inside += fabs(z) < 1;
    }
    CHECK(fabs(m1 / N) < 5 / sqrt(N), "mean %g", m1 / N);
    CHECK(fabs(m2 / N - 1) < 5 * sqrt(2.0 / N), "variance %g", m2 / N);
    CHECK(fabs(m4 / N - 3) < 5 * sqrt(96.0 / N), "fourth moment %g", m4 / N);
    CHECK(fabs(inside / N - 0.682689492) < 5 * sqrt(0.22 / N), "within 1: %g", inside / N);
}

/* d and p at a step: Garg's schedule, capped at the ends; no curriculum
 * with every = 0; held-out splits at the ends. */
static void test_curriculum(void)
{
    const sl_icl_curriculum c = {5, 1, 20, 11, 2, 41, 2000};
    static const struct { int64_t step, d, p; } at[] = {
        {0, 5, 11}, {1999, 5, 11}, {2000, 6, 13}, {4001, 7, 15}, {29999, 19, 39},
        {30000, 20, 41}, {1000000, 20, 41}, {(int64_t)1 << 50, 20, 41}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        int64_t d, p;
        sl_icl_size(&c, SL_SPLIT_TRAIN, at[i].step, &d, &p);
        CHECK(d == at[i].d && p == at[i].p, "step %lld: d %lld p %lld", (long long)at[i].step,
              (long long)d, (long long)p);
        sl_icl_size(&c, SL_SPLIT_VAL, at[i].step, &d, &p);
        CHECK(d == 20 && p == 41, "validation at the ends");
    }
    const sl_icl_curriculum coarse = {5, 4, 20, 11, 7, 41, 10}, off = {5, 1, 20, 11, 2, 41, 0};
    int64_t d, p;
    sl_icl_size(&coarse, SL_SPLIT_TRAIN, 35, &d, &p);
    CHECK(d == 17 && p == 32, "3 increments: d %lld p %lld", (long long)d, (long long)p);
    sl_icl_size(&coarse, SL_SPLIT_TRAIN, 40, &d, &p);
    CHECK(d == 20 && p == 39, "capped: d %lld p %lld", (long long)d, (long long)p);
    sl_icl_size(&off, SL_SPLIT_TRAIN, 0, &d, &p);
    CHECK(d == 20 && p == 41, "no curriculum");
}

/* Batches of each split and step have the layout of their (d, p). */
static void test_layout(void)
{
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_regression, 90, NULL) == SL_OK, "%s", sl_errmsg());
    CHECK(t.io.n_in == 20, "n_in = dims");
    static const struct { sl_split s; int64_t step, d, p; } cases[] = {
        {SL_SPLIT_TRAIN, 0, 5, 11}, {SL_SPLIT_TRAIN, 6500, 8, 17}, {SL_SPLIT_TRAIN, 90000, 20, 41},
        {SL_SPLIT_VAL, 0, 20, 41}, {SL_SPLIT_TEST, 6500, 20, 41}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_batch b = icl_batch(&t, cases[i].s, 3 + i, cases[i].step, 8, 90);
        icl_check_layout(&b, 20, cases[i].d, cases[i].p);
        sl_batch_free(&b);
    }
    sl_task_close(&t);
    const char *const off[] = {"curriculum_every", "0", "dims", "6", "points", "4", NULL};
    if (synth_open(&t, &sl_task_icl_regression, 8, off)) {
        CHECK(0, "%s", sl_errmsg());
        return;
    }
    sl_batch b = icl_batch(&t, SL_SPLIT_TRAIN, 1, 0, 8, 8);
    icl_check_layout(&b, 6, 6, 4);
    sl_batch_free(&b);
    sl_task_close(&t);
}

/* Targets are w . x for one w per prompt: least squares on the first 30
 * examples predicts the others to float rounding; over many prompts y^2 / d and
 * x_j^2 average 1. */
static void test_targets(void)
{
    enum { B = 200, D = 20, P = 41, T = 82 };
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_regression, T, NULL) == SL_OK, "%s", sl_errmsg());
    sl_batch b = icl_batch(&t, SL_SPLIT_VAL, 5, 0, B, T);
    double *xs = malloc(sizeof(double) * (P * D + P)), *ys = xs + P * D;
    double y2 = 0, x2 = 0, worst = 0;
    for (int64_t r = 0; r < B; r++) {
        for (int64_t i = 0; i < P; i++) {
            for (int64_t j = 0; j < D; j++) xs[i * D + j] = b.vectors[(r * T + 2 * i) * D + j];
            ys[i] = b.values[r * T + 2 * i];
            y2 += ys[i] * ys[i];
            for (int64_t j = 0; j < D; j++) x2 += xs[i * D + j] * xs[i * D + j];
        }
        for (int64_t i = 30; i < P; i++) {
            double y;
            CHECK(sl_icl_least_squares(xs, ys, 30, D, xs + i * D, &y) == SL_OK, "%s", sl_errmsg());
            const double e = fabs(y - ys[i]) / (1 + fabs(ys[i]));
            if (e > worst) worst = e;
        }
    }
    CHECK(worst < 1e-5, "least squares from 30 examples misses by %g", worst);
    const double n = (double)B * P;
    CHECK(fabs(y2 / (n * D) - 1) < 0.1, "E y^2 / d = %g", y2 / (n * D));
    CHECK(fabs(x2 / (n * D) - 1) < 0.02, "E x_j^2 = %g", x2 / (n * D));
    free(xs);
    sl_batch_free(&b);
    sl_task_close(&t);
}

static void test_bad_options(void)
{
    const sl_task_vtable *vt = &sl_task_icl_regression;
    synth_check_rejects(vt, 81, NULL, "seq_len");
    synth_check_rejects(vt, 81, NULL, "points");
    const char *const dims[] = {"dims", "4", NULL};
    synth_check_rejects(vt, 82, dims, "dims_start");
    const char *const points[] = {"points_start", "42", NULL};
    synth_check_rejects(vt, 82, points, "points_start");
    sl_opts o;
    sl_opts_defaults(&o, vt->options);
    const char *bad[][2] = {{"dims", "0"}, {"dims_inc", "0"}, {"points", "0"},
                            {"curriculum_every", "-1"}, {"dims", "2000"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(sl_opts_set(&o, "task 'icl_regression'", "test", bad[i][0], bad[i][1], SL_FROM_TEXT) ==
                      SL_ERR_CONFIG &&
                  strstr(sl_errmsg(), bad[i][0]),
              "%s = %s: %s", bad[i][0], bad[i][1], sl_errmsg());
}

static char dir[64];

/* A tiny run at lr 0 (the weights never move, so a step's loss depends on
 * its batch alone) with 1 point at step 0 and 6 from step 1 on when
 * `every` is 1, 6 throughout when 0; stop_step 0 runs all 5 steps, and a
 * run stopped early is resumed to the end. */
static void train_run(const char *out, const char *every, int64_t stop_step)
{
    sl_config c;
    sl_config_defaults(&c);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, out);
    const char *kv[][2] = {
        {"task", "icl_regression"}, {"d_model", "16"}, {"n_heads", "2"}, {"n_layers", "1"},
        {"max_seq_len", "12"}, {"seq_len", "12"}, {"batch_size", "4"}, {"steps", "5"}, {"lr", "0"},
        {"min_lr", "0"}, {"warmup_steps", "0"}, {"log_every", "1"}, {"eval_batches", "1"},
        {"threads", "1"}, {"tie_embeddings", "false"}, {"out_dir", path},
        {"icl_regression.dims", "4"}, {"icl_regression.dims_start", "4"},
        {"icl_regression.points", "6"}, {"icl_regression.points_start", "1"},
        {"icl_regression.points_inc", "5"}, {"icl_regression.curriculum_every", every}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK(sl_config_set(&c, kv[i][0], kv[i][1]) == SL_OK, "%s: %s", kv[i][0], sl_errmsg());
    if (stop_step) c.stop_step = stop_step;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "%s: %s", out, sl_errmsg());
    if (!stop_step) return;
    c.stop_step = -1;
    char ck[200];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", path);
    CHECK(sl_train(&c, ck, NULL) == SL_OK, "%s resumed: %s", out, sl_errmsg());
}

/* The logged loss of step s of run `out` as text ("" when missing). */
static void logged_loss(const char *out, int s, char *buf, size_t n)
{
    char path[128], key[32];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, out);
    snprintf(key, sizeof key, "{\"step\":%d,\"loss\":", s);
    size_t len;
    char *text = slurp(path, &len), *at = text ? strstr(text, key) : NULL;
    snprintf(buf, n, "%.*s", at ? (int)strcspn(at + strlen(key), ",") : 0, at ? at + strlen(key) : "");
    free(text);
}

/* The batch of step 0 has 1 point, later ones 6: step 1's loss differs
 * from the run without curriculum and the others match it; the resumed
 * run (stopped after 3 steps) matches the straight one at every step. */
static void test_trainer_step(void)
{
    strcpy(dir, "/tmp/seqlab-icl-XXXXXX");
    CHECK(mkdtemp(dir), "temporary directory");
    train_run("curriculum", "1", 0);
    train_run("none", "0", 0);
    train_run("resumed", "1", 3);
    for (int s = 1; s <= 5; s++) {
        char a[64], b[64], r[64];
        logged_loss("curriculum", s, a, sizeof a);
        logged_loss("none", s, b, sizeof b);
        logged_loss("resumed", s, r, sizeof r);
        CHECK(*a && *b && *r, "step %d logged", s);
        CHECK((strcmp(a, b) == 0) == (s > 1), "step %d: %s vs %s without curriculum", s, a, b);
        CHECK(strcmp(a, r) == 0, "step %d: %s vs %s resumed", s, a, r);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
}

/* The score hook: a model predicting y_i exactly scores 0 at every k, one
 * predicting 0 scores what sl_icl_model_errors gives, whichever order its
 * output rows come in (rows->pos); the baselines' curves come along, least
 * squares exact from k = d on. */
static void test_score(void)
{
    enum { B = 8, D = 4, P = 9, T = 2 * P };
    const char *const kv[] = {"dims", "4", "points", "9", "curriculum_every", "0", NULL};
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_regression, T, kv) == SL_OK, "%s", sl_errmsg());
    sl_batch b = icl_batch(&t, SL_SPLIT_TEST, 7, 0, B, T);
    float out_data[B * T];
    int64_t pos[B * T];
    sl_tensor out = {.ndim = 2, .shape = {B * T, 1}, .n = B * T, .data = out_data};
    /* Rows in reverse order, each predicting its own target. */
    for (int64_t r = 0; r < B * T; r++) {
        pos[r] = B * T - 1 - r;
        out_data[r] = b.values[pos[r]];
    }
    sl_batch rows = {.B = 1, .T = B * T, .pos = pos};
    sl_scores sc;
    sl_scores_init(&sc);
    CHECK(t.vt->score(&t, &b, &out, &rows, &sc) == SL_OK, "%s", sl_errmsg());
    for (int64_t k = 0; k < P; k++)
        CHECK(sl_scores_mean(&sc, "err_by_k", k) == 0, "exact predictions, k = %lld", (long long)k);
    for (int64_t k = D; k < P; k++)
        CHECK(sl_scores_mean(&sc, "least_squares_by_k", k) < 1e-8, "least squares at k = %lld: %g",
              (long long)k, sl_scores_mean(&sc, "least_squares_by_k", k));
    CHECK(sl_scores_mean(&sc, "least_squares_by_k", 0) > 0.1 &&
              !isnan(sl_scores_mean(&sc, "gd_step_by_k", P - 1)) &&
              !isnan(sl_scores_mean(&sc, "ridge_by_k", 1)) &&
              !isnan(sl_scores_mean(&sc, "nearest3_by_k", 2)) &&
              !isnan(sl_scores_mean(&sc, "averaging_by_k", 3)),
          "every baseline's curve");
    sl_scores_free(&sc);
    /* Zero predictions, rows in order: the model's curve is the targets'. */
    memset(out_data, 0, sizeof out_data);
    rows.pos = NULL;
    double sum[P] = {0};
    int64_t count[P] = {0};
    sl_icl_shape sh;
    CHECK(sl_icl_task_shape(&t, &sh), "shape");
    CHECK(sl_icl_model_errors(&b, &sh, out_data, sum, count) == SL_OK, "%s", sl_errmsg());
    CHECK(t.vt->score(&t, &b, &out, &rows, &sc) == SL_OK, "%s", sl_errmsg());
    for (int64_t k = 0; k < P; k++)
        CHECK(count[k] == B && fabs(sl_scores_mean(&sc, "err_by_k", k) - sum[k] / B) < 1e-12,
              "k = %lld", (long long)k);
    sl_scores_free(&sc);
    sl_batch_free(&b);
    sl_task_close(&t);
}

int main(void)
{
    RUN(test_splits);
    RUN(test_normal);
    RUN(test_curriculum);
    RUN(test_layout);
    RUN(test_targets);
    RUN(test_bad_options);
    RUN(test_trainer_step);
    RUN(test_score);
    return TEST_SUMMARY();
}
