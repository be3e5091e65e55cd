/* Sampling: greedy, top-k, top-p and the sampled distribution. */
#include <string.h>

#include "check.h"
#include "infer/sample.h"

static void test_greedy_and_cutoffs(void)
{
    float logits[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f}, scratch[10];
    sl_sampler s = {.temperature = 0, .top_p = 1};
    sl_rng_seed(&s.rng, 1);
    CHECK(sl_sample(&s, logits, 5, scratch) == 1, "argmax");
    s.temperature = 1;
    s.top_k = 1;
    for (int i = 0; i < 50; i++) CHECK(sl_sample(&s, logits, 5, scratch) == 1, "top-1");
    s.top_k = 2;
    for (int i = 0; i < 200; i++) {
        int32_t id = sl_sample(&s, logits, 5, scratch);
        CHECK(id == 1 || id == 2, "top-2 gave %d", id);
    }
    s.top_k = 0;
    s.top_p = 0.3f;
    for (int i = 0; i < 50; i++) CHECK(sl_sample(&s, logits, 5, scratch) == 1, "nucleus of one");
}

static void test_distribution(void)
{
    float logits[3] = {0.0f, logf(2.0f), logf(5.0f)}, scratch[6];
    sl_sampler s = {.temperature = 1, .top_p = 1};
    sl_rng_seed(&s.rng, 2);
    int count[3] = {0};
    for (int i = 0; i < 80000; i++) count[sl_sample(&s, logits, 3, scratch)]++;
    CHECK(fabs(count[0] / 80000.0 - 0.125) < 0.01 && fabs(count[2] / 80000.0 - 0.625) < 0.01,
          "frequencies %d %d %d", count[0], count[1], count[2]);
}

int main(void)
{
    RUN(test_greedy_and_cutoffs);
    RUN(test_distribution);
    return TEST_SUMMARY();
}
