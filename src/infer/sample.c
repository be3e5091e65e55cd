/* Sampling: softmax at a temperature, keep the top-k most likely ids, then
 * the smallest set whose probability reaches top_p, renormalise, draw. */
#include <math.h>
#include <stdlib.h>

#include "infer/sample.h"

/* Descending probability, ties by id so the order is deterministic. */
static int by_prob_desc(const void *a, const void *b, void *probs)
{
    const float *p = probs;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (p[i] != p[j]) return p[i] > p[j] ? -1 : 1;
    return (i > j) - (i < j);
}

int32_t sl_sample(sl_sampler *s, const float *logits, int64_t V, float *scratch)
{
    int32_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = (int32_t)i;
    if (s->temperature <= 0) return best;
    float *p = scratch;
    int32_t *order = (int32_t *)(scratch + V);
    double sum = 0;
    for (int64_t i = 0; i < V; i++) {
        p[i] = expf((logits[i] - logits[best]) / s->temperature);
        sum += p[i];
        order[i] = (int32_t)i;
    }
    for (int64_t i = 0; i < V; i++) p[i] = (float)(p[i] / sum);
    qsort_r(order, (size_t)V, sizeof *order, by_prob_desc, p);
    int64_t keep = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double cum = 0;
    for (int64_t i = 0; i < keep; i++) {
        cum += p[order[i]];
        if (s->top_p < 1 && cum >= s->top_p) {
            keep = i + 1;
            break;
        }
    }
    double mass = 0;
    for (int64_t i = 0; i < keep; i++) mass += p[order[i]];
    double u = sl_rng_uniform(&s->rng) * mass, acc = 0;
    for (int64_t i = 0; i < keep; i++) {
        acc += p[order[i]];
        if (u < acc) return order[i];
    }
    return order[keep - 1];
}
