/* An allocation that cannot succeed returns SL_ERR_OOM with a message, not
 * SL_ERR_ARG and not an abort: parameters of 2^50 bytes and a decoding state
 * of 2^60 bytes, both past any machine's address space. */
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
    c.d_model = (int64_t)1 << 24; /* embed.weight alone: 2^48 floats */
    c.n_heads = 1;
    sl_model m;
    sl_status st = sl_model_create(&m, &c);
    CHECK(st == SL_ERR_OOM, "status %d: %s", (int)st, sl_errmsg());
    CHECK(sl_errcode() == SL_ERR_OOM, "sl_errcode");
    CHECK(strstr(sl_errmsg(), "out of memory") != NULL, "message: %s", sl_errmsg());
}

static void test_decoding_state_too_large(void)
{
    sl_config c;
    small_config(&c);
    c.max_seq_len = (int64_t)1 << 56; /* the KV cache: 2 D max_seq_len floats */
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create: %s", sl_errmsg());
    sl_decoder d;
    sl_status st = sl_decoder_init(&d, &m);
    CHECK(st == SL_ERR_OOM, "status %d: %s", (int)st, sl_errmsg());
    CHECK(strstr(sl_errmsg(), "out of memory") != NULL, "message: %s", sl_errmsg());
    sl_model_free(&m);
}

int main(void)
{
    RUN(test_params_too_large);
    RUN(test_decoding_state_too_large);
    return TEST_SUMMARY();
}
