/* The mqar task: Zoology's layout, targets, power-law query gaps, splits,
 * bad options. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "synth_check.h"
#include "tasks/mqar.h"

extern const sl_task_vtable sl_task_mqar;

static void test_splits(void)
{
    const char *const kv[] = {"num_kv_pairs", "4", NULL};
    const uint64_t golden[3] = {0x7a2b08287326f2dfull, 0x692e49b32aa6b76dull, 0x0214901d98da577bull};
    synth_check_splits(&sl_task_mqar, 64, kv, golden);
}

/* Every example of a few (V, K, T): the context is K distinct keys in
 * [1, V/2) each followed by a value in [V/2, V); exactly K targets, each at
 * an even slot after the context, on a key, equal to that key's value. */
static void check_example(const sl_mqar_opts *o, uint64_t seed, int64_t T)
{
    int32_t *tok = malloc(sizeof(int32_t) * 2 * T), *tgt = tok + T;
    CHECK(sl_mqar_example(o, seed, T, tok, tgt) == SL_OK, "%s", sl_errmsg());
    const int64_t V = o->vocab, K = o->num_kv_pairs;
    int64_t queries = 0;
    for (int64_t j = 0; j < K; j++) {
        CHECK(tok[2 * j] >= 1 && tok[2 * j] < V / 2, "key %d", tok[2 * j]);
        CHECK(tok[2 * j + 1] >= V / 2 && tok[2 * j + 1] < V, "value %d", tok[2 * j + 1]);
        for (int64_t i = 0; i < j; i++) CHECK(tok[2 * i] != tok[2 * j], "distinct keys");
        CHECK(tgt[2 * j] == -1 && tgt[2 * j + 1] == -1, "no target in the context");
    }
    for (int64_t t = 2 * K; t < T; t++) {
        CHECK(tok[t] >= 0 && tok[t] < V, "token %d", tok[t]);
        if (tgt[t] < 0) {
            CHECK(tgt[t] == -1, "ignored is -1");
            continue;
        }
        queries++;
        CHECK((t - 2 * K) % 2 == 0, "query at even slot, t = %lld", (long long)t);
        int64_t j = 0;
        while (j < K && tok[2 * j] != tok[t]) j++;
        CHECK(j < K && tgt[t] == tok[2 * j + 1], "target is the key's value");
    }
    CHECK(queries == K, "%lld queries, expected %lld", (long long)queries, (long long)K);
    free(tok);
}

static void test_invariants(void)
{
    static const struct { int64_t V, K, T; } cases[] = {
        {8192, 4, 64}, {8192, 8, 128}, {8192, 16, 256}, {8192, 64, 512}, {8, 3, 12}, {64, 8, 32}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sl_mqar_opts o = {cases[c].V, cases[c].K, 0.01, false};
        for (uint64_t s = 0; s < 200; s++) check_example(&o, s * 7919 + c, cases[c].T);
    }
}

/* With K = 1 each example draws one gap g from p(g) ~ (g+1)^(a-1): its
 * frequencies over N examples stay within 5 standard deviations; with
 * a = 1 they are uniform. */
static void test_power_law(void)
{
    enum { SPACE = 30, T = 2 + 2 * SPACE, N = 20000 };
    const double as[2] = {0.01, 1.0};
    for (int k = 0; k < 2; k++) {
        sl_mqar_opts o = {8192, 1, as[k], false};
        int64_t count[SPACE] = {0};
        int32_t tok[T], tgt[T];
        for (uint64_t s = 0; s < N; s++) {
            CHECK(sl_mqar_example(&o, s, T, tok, tgt) == SL_OK, "%s", sl_errmsg());
            for (int64_t t = 2; t < T; t++)
                if (tgt[t] >= 0) count[(t - 2) / 2]++;
        }
        double z = 0;
        for (int g = 0; g < SPACE; g++) z += pow(g + 1, as[k] - 1);
        for (int g = 0; g < SPACE; g++) {
            double p = pow(g + 1, as[k] - 1) / z, mean = N * p, sd = sqrt(N * p * (1 - p));
            CHECK(fabs(count[g] - mean) <= 5 * sd + 1, "a = %g, g = %d: %lld vs %.1f", as[k], g,
                  (long long)count[g], mean);
        }
    }
    /* Without replacement (K = 4 of 28 slots), gap 0 is still taken in
     * about 3 examples of 4, against 1 in 7 for uniform gaps. */
    sl_mqar_opts o = {8192, 4, 0.01, false};
    int64_t first = 0;
    int32_t tok[64], tgt[64];
    for (uint64_t s = 0; s < 2000; s++) {
        sl_mqar_example(&o, s, 64, tok, tgt);
        first += tgt[8] >= 0;
    }
    CHECK(first > 1300 && first < 1700, "gap 0 taken in %lld of 2000", (long long)first);
}

/* Zero filler changes nothing but the filler: the same keys, values and
 * query slots as random filler from the same seed, and 0 wherever random
 * filler put a token of its own. */
static void test_zero_filler(void)
{
    enum { T = 128 };
    const sl_mqar_opts rnd = {8192, 8, 0.01, false}, zero = {8192, 8, 0.01, true};
    int32_t a[T], ta[T], z[T], tz[T];
    for (uint64_t s = 0; s < 100; s++) {
        CHECK(sl_mqar_example(&rnd, s, T, a, ta) == SL_OK, "%s", sl_errmsg());
        CHECK(sl_mqar_example(&zero, s, T, z, tz) == SL_OK, "%s", sl_errmsg());
        for (int64_t t = 0; t < T; t++) {
            CHECK(ta[t] == tz[t], "seed %llu, t %lld: targets differ", (unsigned long long)s,
                  (long long)t);
            const bool filler = t >= 16 && ta[t] < 0;
            CHECK(filler ? z[t] == 0 : z[t] == a[t], "seed %llu, t %lld: token %d vs %d",
                  (unsigned long long)s, (long long)t, z[t], a[t]);
        }
    }
    sl_opts o;
    sl_opts_defaults(&o, sl_task_mqar.options);
    CHECK(!strcmp(sl_opt_str(&o, "filler"), "random"), "default filler %s",
          sl_opt_str(&o, "filler"));
    CHECK(sl_opts_set(&o, "task 'mqar'", "test", "filler", "zero", SL_FROM_TEXT) == SL_OK, "%s",
          sl_errmsg());
    CHECK(sl_opts_set(&o, "task 'mqar'", "test", "filler", "none", SL_FROM_TEXT) == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "filler"),
          "%s", sl_errmsg());
}

static void test_bad_options(void)
{
    const char *const big[] = {"num_kv_pairs", "17", NULL};
    synth_check_rejects(&sl_task_mqar, 64, big, "num_kv_pairs");
    synth_check_rejects(&sl_task_mqar, 63, NULL, "seq_len");
    const char *const small_vocab[] = {"vocab", "8", "num_kv_pairs", "4", NULL};
    synth_check_rejects(&sl_task_mqar, 64, small_vocab, "num_kv_pairs");
    sl_opts o;
    sl_opts_defaults(&o, sl_task_mqar.options);
    CHECK(sl_opts_set(&o, "task 'mqar'", "test", "vocab", "2", SL_FROM_TEXT) == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "vocab"),
          "%s", sl_errmsg());
    CHECK(sl_opts_set(&o, "task 'mqar'", "test", "power_a", "-1", SL_FROM_TEXT) == SL_ERR_CONFIG,
          "%s", sl_errmsg());
}

int main(void)
{
    RUN(test_splits);
    RUN(test_invariants);
    RUN(test_power_law);
    RUN(test_zero_filler);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
