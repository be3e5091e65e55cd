/* seqlab_generate: prefill the prompt in one forward, then one step() per
 * new token (the decoder's KV cache or recurrent state). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "infer/sample.h"

seqlab_status seqlab_generate(seqlab_model *m, const int32_t *prompt, int64_t n, int64_t max_new,
                              const seqlab_sampling *s, int32_t *out)
{
    const int64_t V = m->model.cfg.vocab_size, L = m->model.cfg.max_seq_len;
    if (n < 1 || max_new < 0)
        return (seqlab_status)sl_fail(SL_ERR_ARG, "generate: expected a prompt of >= 1 token "
                                                  "and max_new >= 0");
    for (int64_t i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return (seqlab_status)sl_fail(SL_ERR_ARG,
                                          "prompt token id %d at %lld: expected 0 .. %lld",
                                          (int)prompt[i], (long long)i, (long long)(V - 1));
    sl_sampler smp = {.temperature = s ? s->temperature : 0.0f,
                      .top_k = s ? s->top_k : 0,
                      .top_p = s ? s->top_p : 1.0f};
    sl_rng_seed(&smp.rng, s ? s->seed : 0);
    int64_t len = n < L ? n : L;
    int32_t *ctx_ids = malloc((size_t)L * sizeof *ctx_ids);
    float *scratch = malloc((size_t)(2 * V) * sizeof *scratch);
    sl_decoder d;
    sl_status st = !ctx_ids || !scratch ? sl_fail(SL_ERR_OOM, "generate: out of memory")
                                        : sl_decoder_init(&d, &m->model);
    if (st == SL_OK) {
        memcpy(ctx_ids, prompt + n - len, (size_t)len * sizeof *ctx_ids);
        st = sl_decoder_prefill(&d, ctx_ids, len);
        for (int64_t k = 0; k < max_new && st == SL_OK; k++) {
            out[k] = sl_sample(&smp, d.logits, V, scratch);
            if (k + 1 < max_new) st = sl_decoder_next(&d, ctx_ids, &len, out[k]);
        }
        sl_decoder_free(&d);
    }
    free(ctx_ids);
    free(scratch);
    return (seqlab_status)st;
}
