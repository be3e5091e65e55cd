/* The bursty_classification task: the normal draw, row layout, what each
 * mode puts in a context (bursty or iid training sequences, held-out
 * classes with per-sequence labels, the query's class absent), exemplar
 * noise, Zipf frequencies, splits, bad options. */
#include <stdlib.h>

#include "check.h"
#include "synth_batch_check.h"
#include "tasks/bursty.h"

extern const sl_task_vtable sl_task_bursty_classification;

static const sl_bursty_opts DEFAULTS = {.classes = 1600, .holdout = 100, .dim = 64,
                                        .context = 8, .shots = 3, .noise = 0.1,
                                        .zipf = 1, .p_bursty = 0.9,
                                        .eval = SL_BURSTY_IN_CONTEXT};

static void test_splits(void)
{
    const uint64_t in_context[3] = {0xa615907310a6c4cfull, 0x1e4af89b6dd11f86ull,
                                   0x7423f73b51b82fe7ull};
    synth_check_io_splits(&sl_task_bursty_classification, 17, NULL, in_context, 3000);
    const char *const kv[] = {"eval", "in_weights", NULL};
    const uint64_t in_weights[3] = {0xa615907310a6c4cfull, 0xca31f5c0c698a703ull,
                                   0xb38f08d2721f0bf0ull};
    synth_check_io_splits(&sl_task_bursty_classification, 17, kv, in_weights, 3000);
}

/* sl_synth_normal is Box-Muller on two unit() draws, and standard normal:
 * mean, variance and the share beyond 1.96 over 200000 draws. */
static void test_normal(void)
{
    sl_rng r, s;
    sl_rng_seed(&r, 42);
    sl_rng_seed(&s, 42);
    const double u1 = sl_synth_unit(&s), u2 = sl_synth_unit(&s);
    CHECK(sl_synth_normal(&r) == sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2),
          "Box-Muller from two draws");
    enum { N = 200000 };
    double m = 0, v = 0, tail = 0;
    for (int i = 0; i < N; i++) {
        const double z = sl_synth_normal(&r);
        m += z;
        v += z * z;
        tail += fabs(z) > 1.959964;
    }
    m /= N;
    v = v / N - m * m;
    CHECK(fabs(m) < 5 / sqrt(N), "mean %g", m);
    CHECK(fabs(v - 1) < 5 * sqrt(2.0 / N), "variance %g", v);
    CHECK(fabs(tail / N - 0.05) < 5 * sqrt(0.05 * 0.95 / N), "tail %g", tail / N);
}

typedef struct row {
    int32_t tok[64], tgt[64], cls[32];
    float vec[64 * 64];
    int64_t len;
} row;

/* Layout shared by every mode: exemplars at even positions up to 2N
 * (token -1), labels between them, the one target at 2N, padding after;
 * each exemplar within 6 noise deviations of its class's prototype. */
static void check_layout(const sl_bursty *g, const row *x, int64_t T)
{
    const int64_t N = g->o.context, D = g->o.dim;
    CHECK(x->len == 2 * N + 1, "length %lld", (long long)x->len);
    for (int64_t t = 0; t < T; t++) {
        if (t < 2 * N && t % 2) CHECK(x->tok[t] >= 0 && x->tok[t] < g->o.classes, "label token");
        else CHECK(x->tok[t] == (t <= 2 * N ? -1 : 0), "token %d at %lld", x->tok[t], (long long)t);
        CHECK(x->tgt[t] == (t == 2 * N ? x->tgt[2 * N] : -1), "one target");
        for (int64_t j = 0; j < D; j++) {
            const float v = x->vec[t * D + j];
            if (t % 2 || t > 2 * N) {
                CHECK(v == 0, "no vector at a label or padding");
                continue;
            }
            const double p = g->proto[(int64_t)x->cls[t / 2] * D + j];
            CHECK(fabs(v - p) <= 6 * g->o.noise + 1e-6, "exemplar near its prototype");
        }
    }
    CHECK(x->tgt[2 * N] >= 0 && x->tgt[2 * N] < g->o.classes, "target a label");
}

static void draw(const sl_bursty *g, sl_bursty_mode m, uint64_t seed, int64_t T, row *x)
{
    sl_bursty_example(g, m, seed, T, x->tok, x->vec, x->tgt, &x->len, x->cls);
    check_layout(g, x, T);
}

static int64_t count_class(const row *x, int64_t N, int32_t c)
{
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) n += x->cls[i] == c;
    return n;
}

static void test_modes(void)
{
    sl_bursty g;
    CHECK(sl_bursty_init(&g, &DEFAULTS, 0) == SL_OK, "%s", sl_errmsg());
    const int64_t N = 8, K = 1600, T = 20;
    row x;
    int64_t bursty = 0;
    enum { S = 2000 };
    for (uint64_t s = 0; s < S; s++) {
        /* Training: trained classes with their own labels; bursty rows
         * hold >= 3 exemplars of the query's class and of another. */
        draw(&g, SL_BURSTY_TRAIN_DIST, s, T, &x);
        bool burst = count_class(&x, N, x.cls[N]) >= 3;
        for (int64_t i = 0; i <= N; i++) {
            CHECK(x.cls[i] >= 0 && x.cls[i] < K, "trained class");
            if (i < N) CHECK(x.tok[2 * i + 1] == x.cls[i], "fixed label");
        }
        CHECK(x.tgt[2 * N] == x.cls[N], "the query's label");
        if (burst) {
            bool other = false;
            for (int64_t i = 0; i < N; i++)
                other |= x.cls[i] != x.cls[N] && count_class(&x, N, x.cls[i]) >= 3;
            burst = other;
        }
        bursty += burst;
        /* In-weights: the query's class is nowhere in the context. */
        draw(&g, SL_BURSTY_IN_WEIGHTS, s, T, &x);
        CHECK(count_class(&x, N, x.cls[N]) == 0, "query's class absent");
        for (int64_t i = 0; i < N; i++) CHECK(x.tok[2 * i + 1] == x.cls[i], "fixed label");
        CHECK(x.tgt[2 * N] == x.cls[N] && x.cls[N] < K, "the query's label");
        /* In-context: two held-out classes, N/2 exemplars each, two
         * distinct labels consistent within the row; the query is one. */
        draw(&g, SL_BURSTY_IN_CONTEXT, s, T, &x);
        const int32_t a = x.cls[0];
        int32_t b = -1, la = x.tok[1], lb = -1;
        for (int64_t i = 0; i <= N; i++) {
            CHECK(x.cls[i] >= K && x.cls[i] < K + 100, "held-out class");
            if (x.cls[i] != a) b = x.cls[i];
        }
        for (int64_t i = 0; i < N; i++) {
            if (x.cls[i] == b) lb = x.tok[2 * i + 1];
            CHECK(x.tok[2 * i + 1] == (x.cls[i] == a ? la : lb), "one label per class");
        }
        CHECK(b >= 0 && lb >= 0 && la != lb, "two classes, two labels");
        CHECK(count_class(&x, N, a) == N / 2 && count_class(&x, N, b) == N / 2, "N/2 each");
        CHECK(x.tgt[2 * N] == (x.cls[N] == a ? la : lb), "the query's label from the context");
    }
    /* p_bursty = 0.9, plus the iid rows that happen to look bursty. */
    CHECK(fabs((double)bursty / S - 0.9) < 0.03, "bursty share %g", (double)bursty / S);
    sl_bursty_free(&g);
}

/* The in-weights query's class follows the Zipf weights (c + 1)^-a;
 * exemplar noise has the option's standard deviation. */
static void test_zipf_and_noise(void)
{
    sl_bursty_opts o = DEFAULTS;
    o.classes = 20;
    o.zipf = 1.5;
    o.noise = 0.5;
    sl_bursty g;
    CHECK(sl_bursty_init(&g, &o, 3) == SL_OK, "%s", sl_errmsg());
    enum { S = 20000 };
    int64_t count[20] = {0};
    double v = 0;
    int64_t nv = 0;
    row x;
    for (uint64_t s = 0; s < S; s++) {
        sl_bursty_example(&g, SL_BURSTY_IN_WEIGHTS, s, 17, x.tok, x.vec, x.tgt, &x.len, x.cls);
        count[x.cls[8]]++;
        if (s < 500)
            for (int64_t i = 0; i <= 8; i++)
                for (int64_t j = 0; j < 64; j++) {
                    const double e = x.vec[2 * i * 64 + j] - g.proto[x.cls[i] * 64 + j];
                    v += e * e;
                    nv++;
                }
    }
    double z = 0;
    for (int c = 0; c < 20; c++) z += pow(c + 1, -1.5);
    for (int c = 0; c < 20; c++) {
        const double p = pow(c + 1, -1.5) / z, sd = sqrt(S * p * (1 - p));
        CHECK(fabs(count[c] - S * p) <= 5 * sd + 1, "class %d: %lld vs %.1f", c,
              (long long)count[c], S * p);
    }
    CHECK(fabs(sqrt(v / nv) - 0.5) < 0.01, "noise sd %g", sqrt(v / nv));
    sl_bursty_free(&g);
}

/* Prototypes depend on the task seed only; validation reads the eval
 * mode, training never does. */
static void test_task_io(void)
{
    sl_task t;
    CHECK(synth_open(&t, &sl_task_bursty_classification, 17, NULL) == SL_OK, "%s", sl_errmsg());
    CHECK(t.io.input == SL_INPUT_BOTH && t.io.n_in == 64 && t.io.head == SL_HEAD_TAG &&
              t.io.n_out == 1600 && t.vocab_size == 1600,
          "io");
    sl_batch b;
    synth_io_batch(&t, SL_SPLIT_VAL, 1, 8, 17, &b);
    for (int64_t i = 0; i < 8; i++) {
        CHECK(b.lengths[i] == 17, "length");
        int32_t first = b.tokens[i * 17 + 1], second = -1;
        for (int64_t t = 1; t < 16; t += 2)
            if (b.tokens[i * 17 + t] != first) second = b.tokens[i * 17 + t];
        for (int64_t t = 1; t < 16; t += 2)
            CHECK(b.tokens[i * 17 + t] == first || b.tokens[i * 17 + t] == second, "two labels");
        CHECK(second >= 0, "in-context rows by default");
    }
    sl_batch_free(&b);
    sl_task_close(&t);
}

static void test_bad_options(void)
{
    const sl_task_vtable *vt = &sl_task_bursty_classification;
    const char *const shots[] = {"shots", "5", NULL};
    synth_check_rejects(vt, 17, shots, "shots");
    const char *const odd[] = {"context", "7", NULL};
    synth_check_rejects(vt, 17, odd, "context");
    synth_check_rejects(vt, 16, NULL, "seq_len");
    const char *const big[] = {"classes", "1048576", "dim", "4096", NULL};
    synth_check_rejects(vt, 17, big, "dim");
    /* An odd context is fine when validation does not draw in-context rows. */
    const char *const odd_iw[] = {"context", "7", "eval", "in_weights", NULL};
    sl_task t;
    CHECK(synth_open(&t, vt, 15, odd_iw) == SL_OK, "%s", sl_errmsg());
    sl_task_close(&t);
    sl_opts o;
    sl_opts_defaults(&o, vt->options);
    CHECK(sl_opts_set(&o, "task 'bursty_classification'", "test", "eval", "fewshot",
                      SL_FROM_TEXT) == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "eval") && strstr(sl_errmsg(), "in_context"),
          "%s", sl_errmsg());
    CHECK(sl_opts_set(&o, "task 'bursty_classification'", "test", "classes", "1", SL_FROM_TEXT) ==
                  SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "classes"),
          "%s", sl_errmsg());
    CHECK(sl_opts_set(&o, "task 'bursty_classification'", "test", "p_bursty", "1.1",
                      SL_FROM_TEXT) == SL_ERR_CONFIG,
          "%s", sl_errmsg());
}

int main(void)
{
    RUN(test_splits);
    RUN(test_normal);
    RUN(test_modes);
    RUN(test_zipf_and_noise);
    RUN(test_task_io);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
