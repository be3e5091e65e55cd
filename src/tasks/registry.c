/* Task names -> vtables, and batches. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task.h"

extern const sl_task_vtable sl_task_text, sl_task_mqar, sl_task_selective_copy,
    sl_task_induction_heads, sl_task_regbench, sl_task_listops, sl_task_bursty_classification,
    sl_task_timeseries, sl_task_icl_regression, sl_task_icl_mixture;

static const sl_task_vtable *const TASKS[] = {&sl_task_text,
                                              &sl_task_mqar,
                                              &sl_task_selective_copy,
                                              &sl_task_induction_heads,
                                              &sl_task_regbench,
                                              &sl_task_listops,
                                              &sl_task_bursty_classification,
                                              &sl_task_timeseries,
                                              &sl_task_icl_regression,
                                              &sl_task_icl_mixture};

size_t sl_task_count(void) { return sizeof TASKS / sizeof TASKS[0]; }

const sl_task_vtable *sl_task_at(size_t i) { return i < sl_task_count() ? TASKS[i] : NULL; }

const sl_task_vtable *sl_task_lookup(const char *name)
{
    for (size_t i = 0; i < sl_task_count(); i++)
        if (strcmp(TASKS[i]->name, name) == 0) return TASKS[i];
    return NULL;
}

sl_status sl_task_open(sl_task *t, const sl_task_vtable *vt, const sl_task_env *env)
{
    memset(t, 0, sizeof *t);
    t->vt = vt;
    sl_status st = vt->open(t, env);
    if (st) sl_task_close(t);
    return st;
}

void sl_task_close(sl_task *t)
{
    if (t->vt && t->impl) t->vt->close(t);
    memset(t, 0, sizeof *t);
}

sl_status sl_batch_alloc(sl_batch *b, const sl_task_io *io, int64_t B, int64_t T, const char *what)
{
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    const int64_t R = B * T;
    const bool tokens = io->input != SL_INPUT_VECTORS, vectors = io->input != SL_INPUT_TOKENS;
    const bool regress = io->head == SL_HEAD_REGRESS;
    b->lengths = malloc((size_t)B * sizeof *b->lengths);
    if (tokens) b->tokens = malloc((size_t)R * sizeof *b->tokens);
    if (vectors) b->vectors = malloc((size_t)(R * io->n_in) * sizeof *b->vectors);
    if (!regress)
        b->targets = malloc((size_t)(io->head == SL_HEAD_CLASSIFY ? B : R) * sizeof *b->targets);
    if (regress) {
        b->values = malloc((size_t)(R * io->n_out) * sizeof *b->values);
        b->mask = malloc((size_t)R);
    }
    if (!b->lengths || (tokens && !b->tokens) || (vectors && !b->vectors) ||
        (!regress && !b->targets) || (regress && (!b->values || !b->mask))) {
        sl_batch_free(b);
        return sl_fail(SL_ERR_OOM, "%s: out of memory for a batch of %lld x %lld", what,
                       (long long)B, (long long)T);
    }
    for (int64_t i = 0; i < B; i++) b->lengths[i] = T;
    return SL_OK;
}

void sl_batch_free(sl_batch *b)
{
    free(b->tokens);
    free(b->vectors);
    free(b->targets);
    free(b->values);
    free(b->mask);
    free(b->lengths);
    memset(b, 0, sizeof *b);
}
