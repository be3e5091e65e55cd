/* An allocation that cannot succeed returns SL_ERR_OOM with a message, not
 * SL_ERR_ARG and not an abort: it is planned against the machine's physical
 * memory before anything is allocated (parameters of 2^44 bytes, a decoding
 * state of 2^39 bytes, a batch of 2^47), so these tests allocate nothing
 * large. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "model/model.h"

/* Under AddressSanitizer, a failed allocation returns NULL as in libc. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static void small_config(sl_config *c)
{
    sl_config_defaults(c);
    c->vocab_size = 8;
    c->n_layers = 1;
    c->d_model = 8;
    c->n_heads = 2;
    snprintf(c->pos, sizeof c->pos, "rope");
    snprintf(c->mlp, sizeof c->mlp, "none");
}

static void test_params_too_large(void)
{
    sl_config c;
    small_config(&c);
    c.vocab_size = (int64_t)1 << 24;
    c.d_model = (int64_t)1 << 16; /* embed.weight alone: 2^40 floats, sizes within bounds */
    c.n_heads = 1;
    sl_model m;
    sl_status st = sl_model_create(&m, &c);
    CHECK(st == SL_ERR_OOM, "status %d: %s", (int)st, sl_errmsg());
    CHECK(sl_errcode() == SL_ERR_OOM, "sl_errcode");
    CHECK(strstr(sl_errmsg(), "out of memory") != NULL, "message: %s", sl_errmsg());
    CHECK(strstr(sl_errmsg(), "d_model = 65536") && strstr(sl_errmsg(), "'embed.weight'") &&
              strstr(sl_errmsg(), "physical memory"),
          "names the keys, the largest tensor and the machine: %s", sl_errmsg());
}

static void test_decoding_state_too_large(void)
{
    sl_config c;
    small_config(&c);
    /* The KV caches: 2 D max_seq_len floats per layer, 2^39 bytes in all,
     * from a model of 16 MB. */
    c.n_layers = 64;
    c.d_model = 64;
    c.max_seq_len = (int64_t)1 << 24;
    if (sl_phys_bytes() > ((int64_t)1 << 39)) return; /* a machine that could hold it */
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create: %s", sl_errmsg());
    sl_decoder d;
    sl_status st = sl_decoder_init(&d, &m);
    CHECK(st == SL_ERR_OOM, "status %d: %s", (int)st, sl_errmsg());
    CHECK(strstr(sl_errmsg(), "out of memory") != NULL, "message: %s", sl_errmsg());
    CHECK(strstr(sl_errmsg(), "'max_seq_len' = 16777216"), "names the key: %s", sl_errmsg());
    sl_model_free(&m);
}

/* A batch is planned before its buffers exist: the key that set it, the
 * bytes and the machine's memory in the message; a small one passes. */
static void test_batch_planned(void)
{
    sl_config c;
    small_config(&c);
    CHECK(sl_model_plan_batch(&c, 16, 256, true, "config key 'batch_size'") == SL_OK, "small: %s",
          sl_errmsg());
    sl_status st = sl_model_plan_batch(&c, (int64_t)1 << 20, (int64_t)1 << 24, false, "--batch-size");
    CHECK(st == SL_ERR_OOM && strstr(sl_errmsg(), "--batch-size") &&
              strstr(sl_errmsg(), "1048576 x 16777216") && strstr(sl_errmsg(), "physical memory"),
          "%s", sl_errmsg());
}

/* The size arithmetic saturates instead of wrapping: what wrapped to a
 * small or negative size before ("seq_len + 1 = -9223372036854775808")
 * stays past every machine. */
static void test_size_arithmetic(void)
{
    CHECK(sl_size_mul(INT64_MAX, 2) == INT64_MAX && sl_size_mul((int64_t)1 << 32, (int64_t)1 << 32)
              == INT64_MAX, "mul saturates");
    CHECK(sl_size_add(INT64_MAX, 1) == INT64_MAX && sl_size_mul(-1, 4) == INT64_MAX &&
              sl_size_add(-8, 4) == INT64_MAX, "add saturates; negative sizes are refused");
    CHECK(sl_size_mul(3, 5) == 15 && sl_size_add(3, 5) == 8, "exact below the limit");
    CHECK(sl_mem_check(INT64_MAX, "thing") == SL_ERR_OOM && strstr(sl_errmsg(), "thing") &&
              strstr(sl_errmsg(), "2^63"), "%s", sl_errmsg());
    CHECK(sl_mem_check(1 << 20, "small") == SL_OK && sl_phys_bytes() > (1 << 20), "1 MB fits");
}

int main(void)
{
    RUN(test_params_too_large);
    RUN(test_decoding_state_too_large);
    RUN(test_batch_planned);
    RUN(test_size_arithmetic);
    return TEST_SUMMARY();
}
