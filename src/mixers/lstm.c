/* lstm: the classic gated recurrence (Hochreiter & Schmidhuber 1997, with
 * the forget gate of Gers et al. 2000), the sequence-to-sequence baseline of
 * Sutskever et al. 2014, as PyTorch's one-layer nn.LSTM with hidden size D.
 *
 *   z_t = x_t W_ih^T + b + h_{t-1} W_hh^T           [4D], blocks i | f | g | o
 *   i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
 *   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t),     y_t = h_t
 *
 * The mixer's output is h itself, with no output projection, as nn.LSTM's:
 * the residual branch's scale is already learned by the output gate o, and
 * the next block's norm and MLP follow. Parameters, in nn.LSTM's layout so
 * its weights map one to one (weight_ih_l0, weight_hh_l0, and bias =
 * bias_ih_l0 + bias_hh_l0): weight_ih [4D, D], weight_hh [4D, D], both
 * uniform(+-1/sqrt(D)) as nn.LSTM draws them, and bias [4D], zero except
 * the forget gate's block, 1 (Jozefowicz et al. 2015: a forget gate open at
 * the start keeps gradients flowing through c). The forward is one GEMM
 * for the input projection of every token, then the sl_lstm op (only
 * h_{t-1} W_hh^T runs token by token). State: (h, c), 2D floats per
 * sequence. */
#include "mixers/mixer.h"
#include "ops/lstm.h"
#include "ops/ops.h"

typedef struct lstm {
    sl_tensor *wih, *whh, *b;
    int64_t D;
} lstm;

static sl_status lstm_init(sl_mixer *m, sl_params *p)
{
    lstm *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    const int64_t D = a->D = m->dims.d_model;
    const float bound = 1.0f / sqrtf((float)D);
    a->wih = SL_PARAM(p, "weight_ih", SL_INIT_UNIFORM, bound, true, 4 * D, D);
    a->whh = SL_PARAM(p, "weight_hh", SL_INIT_UNIFORM, bound, true, 4 * D, D);
    a->b = SL_PARAM_RANGE(p, "bias", SL_INIT_ONES_SPAN, (float)D, (float)(2 * D), false, 4 * D);
    return SL_OK;
}

static int64_t lstm_state_floats(const sl_mixer *m, int64_t max_len) { return 2 * m->dims.d_model; }

static int64_t lstm_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 5 * m->dims.d_model;
}

/* x: [B, T, D] -> h: [B, T, D]; state: [rows, 2D] (h | c) or NULL, rows = B
 * or the packed sequences. */
static sl_tensor *lstm_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs)
{
    lstm *a = m->impl;
    const int64_t rows = sl_seq_count(seqs, x->shape[0]);
    sl_tensor *gx = sl_linear(ctx, x, a->wih, a->b);
    const sl_state_part sp = sl_state_take(ctx, state, 2 * a->D, 0, 2 * a->D, rows, pos);
    sl_tensor *h = sl_lstm(ctx, gx, a->whh, sp.s0, sp.s_final, seqs);
    sl_state_put(&sp);
    return h;
}

/* x_t: [D] -> y_t = h_t: [D]; state: [2D] (h | c); scratch: 5D. */
static void lstm_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch)
{
    lstm *a = m->impl;
    const int64_t D = a->D;
    float *gx = scratch;
    memcpy(gx, a->b->data, (size_t)(4 * D) * sizeof(float));
    sl_gemm(false, true, 1, 4 * D, D, x_t, a->wih->data, 1.0f, gx);
    sl_lstm_step(state, gx, a->whh->data, D, scratch + 4 * D);
    memcpy(y_t, state, (size_t)D * sizeof(float));
}

const sl_mixer_vtable sl_mixer_lstm = {
    .name = "lstm",
    .paper = "Hochreiter & Schmidhuber 1997, Long Short-Term Memory; Sutskever et al. 2014, "
             "Sequence to Sequence Learning with Neural Networks",
    .equation = "[i f g o] = [s s tanh s](x W_ih^T + b + h_{t-1} W_hh^T),  c_t = f c_{t-1} + i g,"
                "  h_t = o tanh(c_t),  y = h",
    .init = lstm_init,
    .forward = lstm_forward,
    .state_floats = lstm_state_floats,
    .scratch_floats = lstm_scratch_floats,
    .step = lstm_step,
    .state_desc = "2D floats per sequence (h, c), constant in length",
};
