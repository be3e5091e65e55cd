/* The transnormer mixer through its vtable, for each layer kind: the lower
 * half's DiagAttention (block-local softmax) and the upper half's
 * NormAttention (elu+1 linear attention, RMSNorm on the output) with and
 * without the per-head decay. step() == forward (also from a prefill that
 * ends inside a block or a chunk), split forward with the state == one
 * forward (splits on and across block and chunk edges), packed batches ==
 * each sequence alone (with and without states carried in), whole-mixer
 * gradients by finite differences, finite results at T = 4096 with large
 * inputs; the bidirectional form of each kind; the decay rates. */
#include <string.h>

#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_transnormer;

typedef enum { DIAG, NORM, NORM_DECAY, DIAG_ROPE } kind;
static const char *const KIND[] = {"diag", "norm", "norm+decay", "diag+rope"};

/* mc_tiny with 4 layers: layer 0 is DiagAttention with blocks of 5, layer
 * 2 NormAttention (decay 1 - 2/3 of the slopes) with chunks of 4. */
static void tiny(sl_config *c, kind k)
{
    mc_tiny(c);
    c->n_layers = 4;
    c->chunk_size = 4;
    c->block_size = 5;
    c->decay = k == NORM_DECAY;
    if (k == DIAG_ROPE) strcpy(c->pos, "rope");
    mc_layer = k == DIAG || k == DIAG_ROPE ? 0 : 2;
}

static void test_step_matches_forward(void)
{
    for (int k = DIAG; k <= DIAG_ROPE; k++) {
        sl_config c;
        tiny(&c, k);
        mc_check_step(&sl_mixer_transnormer, &c, 17, 0, 1e-4);
        /* A prefill that ends inside a block (and a chunk), then steps. */
        mc_check_step(&sl_mixer_transnormer, &c, 17, 7, 1e-4);
        /* The default block of 64: T = 70 crosses one block edge. */
        c.block_size = 64;
        mc_check_step(&sl_mixer_transnormer, &c, 70, 66, 1e-4);
    }
    mc_layer = 0;
}

static void test_split_matches_whole(void)
{
    static const int64_t splits[] = {1, 4, 5, 6, 12};
    for (int k = DIAG; k <= DIAG_ROPE; k++) {
        sl_config c;
        tiny(&c, k);
        mc_check_split(&sl_mixer_transnormer, &c, 2, 17, splits, 5, 1e-4);
    }
    mc_layer = 0;
}

static void test_packed_matches_one_by_one(void)
{
    /* Empty sequences, one token, and lengths across blocks and chunks. */
    static const int64_t lens[] = {0, 7, 1, 13, 0, 5, 4};
    for (int k = DIAG; k <= DIAG_ROPE; k++) {
        sl_config c;
        tiny(&c, k);
        mc_check_packed(&sl_mixer_transnormer, &c, lens, 7, 1e-4);
    }
    mc_layer = 0;
}

static void test_gradient_finite_differences(void)
{
    /* B = 2, T = 11: two full blocks of 5 and a ragged one, two chunks of 4
     * and a ragged one. Tolerances as the retnet mixer's: at h = 5e-3 the
     * truncation and the float rounding of ~350 outputs stay under atol
     * 5e-4; rtol 1e-2 still fails a 1%-wrong term. */
    for (int k = DIAG; k <= DIAG_ROPE; k++) {
        sl_config c;
        tiny(&c, k);
        mc_check_gradient(&sl_mixer_transnormer, &c, 2, 11, 5e-3f, 5e-4, 1e-2, 12);
    }
    mc_layer = 0;
}

static void test_long_large_inputs_stay_finite(void)
{
    for (int k = DIAG; k <= DIAG_ROPE; k++) {
        sl_config c;
        tiny(&c, k);
        c.chunk_size = 64;
        c.block_size = 64;
        mc_check_long_finite(&sl_mixer_transnormer, &c, 4096, 100.0f);
    }
    mc_layer = 0;
}

/* The layer kind by depth and the state sizes. */
static void test_kinds(void)
{
    sl_config c;
    tiny(&c, DIAG);
    c.n_layers = 5;
    for (int64_t l = 0; l < 5; l++) {
        sl_mixer m = {&sl_mixer_transnormer, &c, l, NULL};
        sl_params p;
        sl_params_init(&p);
        CHECK(m.vt->init(&m, &p) == SL_OK, "init: %s", sl_errmsg());
        /* 5 / 2 = 2: layers 0, 1 are DiagAttention. */
        int64_t want = l < 2 ? 2 * c.block_size * c.d_model : c.d_model * c.d_model / c.n_heads;
        CHECK(m.vt->state_floats(&m, 100) == want, "layer %lld state %lld, want %lld",
              (long long)l, (long long)m.vt->state_floats(&m, 100), (long long)want);
        free(m.impl);
        sl_params_free(&p);
    }
}

/* causal = false: DiagAttention sees its whole block (T = 5, one block),
 * NormAttention the whole sequence with the symmetric decay; packed
 * sequences stay apart; gradients by finite differences. */
static void test_bidirectional(void)
{
    static const int64_t lens[] = {7, 0, 1, 5, 12};
    for (int k = 0; k < 4; k++) {
        sl_config c;
        tiny(&c, (kind)k);
        c.causal = false;
        mc_check_sees_future(&sl_mixer_transnormer, &c, 5);
        mc_check_packed(&sl_mixer_transnormer, &c, lens, 5, 1e-4);
        mc_check_gradient(&sl_mixer_transnormer, &c, 2, 7, 5e-3f, 5e-4, 1e-2, 12);
    }
    mc_layer = 0;
}

/* A decayed NormAttention layer with v = one-hot inputs: a single token's
 * write, read back t steps later through q, shrinks by lambda_h^t. Checked
 * through step() on the state directly: S after t more zero-key tokens is
 * lambda^t S. With H = 4 (slopes 2^-2, 2^-4, 2^-6, 2^-8) at layer 2 of 4. */
static void test_decay_rates(void)
{
    sl_config c;
    tiny(&c, NORM_DECAY);
    c.n_heads = 4;
    sl_mixer m = {&sl_mixer_transnormer, &c, 2, NULL};
    sl_params p;
    sl_params_init(&p);
    CHECK(m.vt->init(&m, &p) == SL_OK && sl_params_finalize(&p) == SL_OK, "init: %s", sl_errmsg());
    /* x = 0 gives q = k = elu(0) + 1 = 1 and v = 0: S_t = lambda S_{t-1}
     * + 1 0^T, a pure decay of whatever S held. */
    const int64_t dk = 4, sf = m.vt->state_floats(&m, 8);
    float *S = malloc((size_t)sf * sizeof(float)), x[16] = {0}, y[16];
    float *scratch = calloc((size_t)m.vt->scratch_floats(&m, 8), sizeof(float));
    for (int64_t i = 0; i < sf; i++) S[i] = 1.0f;
    for (int t = 0; t < 3; t++) m.vt->step(&m, S, x, y, t, scratch);
    for (int64_t h = 0; h < 4; h++) {
        double lam = exp(-exp2(-2.0 * (double)(h + 1)) * (1.0 - 2.0 / 3.0 + 1e-5));
        CHECK_CLOSE(S[h * dk * dk], pow(lam, 3), 1e-6, 1e-5, KIND[NORM_DECAY]);
    }
    free(S);
    free(scratch);
    free(m.impl);
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    RUN(test_gradient_finite_differences);
    RUN(test_long_large_inputs_stay_finite);
    RUN(test_kinds);
    RUN(test_bidirectional);
    RUN(test_decay_rates);
    return TEST_SUMMARY();
}
