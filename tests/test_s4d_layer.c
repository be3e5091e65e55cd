/* The S4D layer piece's step with its cache of E and Bbar: the same bits
 * as computing them every token, before and after its parameters change
 * (a training step or a loaded checkpoint between tokens must be seen). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ops/s4d_layer.h"

enum { H = 5, N = 6, TOKENS = 4 };

/* Steps TOKENS tokens of u from zero modes, with or without the cache,
 * into y: [TOKENS, H]. */
static void run(const sl_s4d_ssm *s, const float *u, float *y)
{
    float state[H * N] = {0}, scratch[4 * H * N];
    for (int t = 0; t < TOKENS; t++) sl_s4d_ssm_step(s, state, u + t * H, y + t * H, scratch);
}

static void test_cache_matches_uncached(void)
{
    sl_params p;
    sl_params_init(&p);
    sl_s4d_ssm s;
    CHECK(sl_s4d_ssm_params(&s, &p, "test", "", H, N, "lin", true) == SL_OK, "params");
    CHECK(sl_params_finalize(&p) == SL_OK, "finalize");
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    sl_params_randomize(&p, &rng);
    float u[TOKENS * H], want[TOKENS * H], got[TOKENS * H];
    for (int i = 0; i < TOKENS * H; i++) u[i] = sl_rng_normal(&rng);
    float *cache = calloc((size_t)sl_s4d_ssm_cache_floats(H, N), sizeof(float));
    for (int round = 0; round < 3; round++) {
        if (round == 1) s.log_dt->data[3] += 0.25f;
        if (round == 2) s.a_im->data[H * N / 2 - 1] -= 0.5f;
        s.cache = NULL;
        run(&s, u, want);
        s.cache = cache;
        run(&s, u, got);
        CHECK(memcmp(want, got, sizeof got) == 0, "cached step == uncached, round %d", round);
        run(&s, u, got); /* from the warm cache */
        CHECK(memcmp(want, got, sizeof got) == 0, "warm cache, round %d", round);
    }
    free(cache);
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_cache_matches_uncached);
    return TEST_SUMMARY();
}
