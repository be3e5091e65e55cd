/* seqlab_logprobs: per-position log-probabilities of a given sequence, in
 * inference mode (the handle's context records no tape), one forward per
 * window of max_seq_len tokens. */
#include <math.h>

#include "api/api.h"

/* Checks ids[0..n) against the vocabulary. */
static sl_status check_ids(const seqlab_model *m, const int32_t *ids, int64_t n)
{
    const int64_t V = m->model.cfg.vocab_size;
    if (n < 1) return sl_fail(SL_ERR_ARG, "nothing to score: expected at least 1 token");
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return sl_fail(SL_ERR_ARG, "token id %d at %lld: expected 0 .. %lld", (int)ids[i],
                           (long long)i, (long long)(V - 1));
    return SL_OK;
}

/* One forward over ids[s0..s1); writes logp[t] for t in [from, s1), from > s0:
 * log-softmax of row t - 1 - s0 of the logits at ids[t], in double. */
static void score_window(seqlab_model *m, const int32_t *ids, int64_t s0, int64_t s1, int64_t from,
                         float *logp)
{
    const int64_t V = m->model.cfg.vocab_size;
    sl_ctx_reset(&m->ctx);
    const sl_tensor *logits = sl_model_forward(&m->model, &m->ctx, ids + s0, 1, s1 - s0);
    for (int64_t t = from; t < s1; t++) {
        const float *row = logits->data + (t - 1 - s0) * V;
        float mx = row[0];
        for (int64_t j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        double sum = 0;
        for (int64_t j = 0; j < V; j++) sum += exp((double)row[j] - mx);
        logp[t] = (float)((double)row[ids[t]] - mx - log(sum));
    }
}

seqlab_status seqlab_logprobs(seqlab_model *m, const int32_t *ids, int64_t n, float *logp,
                              double *total)
{
    if (!m->model.cfg.causal)
        return (seqlab_status)sl_fail(
            SL_ERR_CONFIG,
            "config key 'causal' = false: a bidirectional model gives no p(x_t | x_<t)");
    sl_status st = check_ids(m, ids, n);
    if (st) return (seqlab_status)st;
    const int64_t L = m->model.cfg.max_seq_len, h = L / 2 > 0 ? L / 2 : 1;
    logp[0] = 0.0f;
    int64_t done = n < L ? n : L; /* positions < done are scored */
    if (done > 1) score_window(m, ids, 0, done, 1, logp);
    while (done < n) {
        const int64_t end = done + h < n ? done + h : n;
        score_window(m, ids, end - L, end, done, logp);
        done = end;
    }
    sl_ctx_reset(&m->ctx);
    if (total) {
        double s = 0;
        for (int64_t t = 1; t < n; t++) s += logp[t];
        *total = s;
    }
    return SEQLAB_OK;
}
