/* Named means of an evaluation (scores.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tasks/scores.h"

void sl_scores_init(sl_scores *s) { memset(s, 0, sizeof *s); }

void sl_scores_free(sl_scores *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->s[i].sum);
        free(s->s[i].count);
    }
    sl_scores_init(s);
}

int64_t sl_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

static sl_score *find(const sl_scores *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->s[i].name, name) == 0) return (sl_score *)&s->s[i];
    return NULL;
}

/* The score `name` of kind curve with at least n entries, made or grown. */
static sl_status reach(sl_scores *s, const char *name, bool curve, int64_t n, sl_score **out)
{
    sl_score *c = find(s, name);
    if (!c) {
        if (s->n == SL_SCORES_MAX || strlen(name) >= SL_SCORE_NAME)
            return sl_fail(SL_ERR_ARG, "task score '%s': at most %d scores of names under %d bytes",
                           name, SL_SCORES_MAX, SL_SCORE_NAME);
        c = &s->s[s->n++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", name);
        c->curve = curve;
    }
    if (c->curve != curve)
        return sl_fail(SL_ERR_ARG, "task score '%s' is a %s", name, c->curve ? "curve" : "scalar");
    if (n > c->n) {
        double *sum = realloc(c->sum, (size_t)n * sizeof *sum);
        if (sum) c->sum = sum;
        int64_t *count = sum ? realloc(c->count, (size_t)n * sizeof *count) : NULL;
        if (!count) return sl_fail(SL_ERR_OOM, "out of memory for task score '%s'", name);
        c->count = count;
        for (int64_t i = c->n; i < n; i++) {
            c->sum[i] = 0;
            c->count[i] = 0;
        }
        c->n = n;
    }
    *out = c;
    return SL_OK;
}

static sl_status add(sl_scores *s, const char *name, bool curve, int64_t i, double sum, int64_t n)
{
    sl_score *c = NULL;
    sl_status st = reach(s, name, curve, i + 1, &c);
    if (st) return st;
    c->sum[i] += sum;
    c->count[i] += n;
    return SL_OK;
}

sl_status sl_scores_add(sl_scores *s, const char *name, double value)
{
    return add(s, name, false, 0, value, 1);
}

sl_status sl_scores_add_sum(sl_scores *s, const char *name, int64_t i, double sum, int64_t n)
{
    if (i < 0) return sl_fail(SL_ERR_ARG, "task score '%s': index %lld < 0", name, (long long)i);
    return n ? add(s, name, true, i, sum, n) : SL_OK;
}

sl_status sl_scores_add_at(sl_scores *s, const char *name, int64_t i, double value)
{
    return sl_scores_add_sum(s, name, i, value, 1);
}

double sl_scores_mean(const sl_scores *s, const char *name, int64_t i)
{
    const sl_score *c = find(s, name);
    if (!c || i < 0 || i >= c->n || !c->count[i]) return NAN;
    return c->sum[i] / (double)c->count[i];
}

static void number(FILE *f, const sl_score *c, int64_t i)
{
    const double m = c->count[i] ? c->sum[i] / (double)c->count[i] : NAN;
    if (isfinite(m))
        fprintf(f, "%.6g", m);
    else
        fputs("null", f);
}

void sl_scores_json(const sl_scores *s, FILE *f)
{
    for (size_t k = 0; k < s->n; k++) {
        const sl_score *c = &s->s[k];
        fprintf(f, ",\"%s\":", c->name);
        if (!c->curve) {
            number(f, c, 0);
            continue;
        }
        fputc('[', f);
        for (int64_t i = 0; i < c->n; i++) {
            if (i) fputc(',', f);
            number(f, c, i);
        }
        fputc(']', f);
    }
}

void sl_scores_text(const sl_scores *s, FILE *f)
{
    for (size_t k = 0; k < s->n; k++)
        if (!s->s[k].curve)
            fprintf(f, ", %s %.4f", s->s[k].name, sl_scores_mean(s, s->s[k].name, 0));
}

/* Whether name is word or ends in "_" word. */
static bool named(const char *name, const char *word)
{
    const size_t n = strlen(name), w = strlen(word);
    return strcmp(name, word) == 0 ||
           (n > w + 1 && name[n - w - 1] == '_' && strcmp(name + n - w, word) == 0);
}

int sl_metric_direction(const char *name)
{
    if (named(name, "accuracy")) return 1;
    if (strcmp(name, "loss") == 0 || strcmp(name, "bpc") == 0 || named(name, "mse") ||
        named(name, "mae"))
        return -1;
    return 0;
}
