/* The transnormer mixer's own checks beyond tests/test_mixers.c (which
 * runs both layer kinds, with and without RoPE and the decay, causal and
 * bidirectional): the kind chosen by depth with its state size, and the
 * decay rates of TransNormerLLM. */
#include <string.h>

#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_transnormer;

/* mc_tiny with 4 layers, blocks of 5, chunks of 4. */
static void tiny(mc_cfg *c)
{
    mc_tiny(c, &sl_mixer_transnormer);
    c->dims.n_layers = 4;
    c->dims.chunk_size = 4;
    CHECK(mc_set(c, &sl_mixer_transnormer, "block_size", "5"), "block_size");
}

/* The layer kind by depth and the state sizes. */
static void test_kinds(void)
{
    mc_cfg c;
    tiny(&c);
    c.dims.n_layers = 5;
    const int64_t D = c.dims.d_model;
    for (int64_t l = 0; l < 5; l++) {
        sl_mixer m;
        sl_params p;
        sl_params_init(&p);
        CHECK(sl_mixer_create(&m, &sl_mixer_transnormer, &c.dims, &c.opts, l, &p) == SL_OK,
              "init: %s", sl_errmsg());
        /* 5 / 2 = 2: layers 0, 1 are DiagAttention. */
        int64_t want = l < 2 ? 2 * 5 * D : D * D / c.dims.n_heads;
        CHECK(m.vt->state_floats(&m, 100) == want, "layer %lld state %lld, want %lld",
              (long long)l, (long long)m.vt->state_floats(&m, 100), (long long)want);
        free(m.impl);
        sl_params_free(&p);
    }
}

/* A decayed NormAttention layer with v = one-hot inputs: a single token's
 * write, read back t steps later through q, shrinks by lambda_h^t. Checked
 * through step() on the state directly: S after t more zero-key tokens is
 * lambda^t S. With H = 4 (slopes 2^-2, 2^-4, 2^-6, 2^-8) at layer 2 of 4. */
static void test_decay_rates(void)
{
    mc_cfg c;
    tiny(&c);
    c.dims.n_heads = 4;
    CHECK(mc_set(&c, &sl_mixer_transnormer, "decay", "true"), "decay");
    sl_mixer m;
    sl_params p;
    sl_params_init(&p);
    CHECK(sl_mixer_create(&m, &sl_mixer_transnormer, &c.dims, &c.opts, 2, &p) == SL_OK &&
              sl_params_finalize(&p) == SL_OK,
          "init: %s", sl_errmsg());
    /* x = 0 gives q = k = elu(0) + 1 = 1 and v = 0: S_t = lambda S_{t-1}
     * + 1 0^T, a pure decay of whatever S held. */
    const int64_t dk = 4, sf = m.vt->state_floats(&m, 8);
    float *S = malloc((size_t)sf * sizeof(float)), x[16] = {0}, y[16];
    float *scratch = calloc((size_t)m.vt->scratch_floats(&m, 8), sizeof(float));
    for (int64_t i = 0; i < sf; i++) S[i] = 1.0f;
    for (int t = 0; t < 3; t++) m.vt->step(&m, S, x, y, t, scratch);
    for (int64_t h = 0; h < 4; h++) {
        double lam = exp(-exp2(-2.0 * (double)(h + 1)) * (1.0 - 2.0 / 3.0 + 1e-5));
        CHECK_CLOSE(S[h * dk * dk], pow(lam, 3), 1e-6, 1e-5, "norm+decay");
    }
    free(S);
    free(scratch);
    free(m.impl);
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_kinds);
    RUN(test_decay_rates);
    return TEST_SUMMARY();
}
