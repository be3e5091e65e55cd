/* Task names -> vtables. */
#include <string.h>

#include "tasks/task.h"

extern const sl_task_vtable sl_task_text, sl_task_mqar, sl_task_selective_copy,
    sl_task_induction_heads, sl_task_regbench;

static const sl_task_vtable *const TASKS[] = {&sl_task_text, &sl_task_mqar,
                                              &sl_task_selective_copy, &sl_task_induction_heads,
                                              &sl_task_regbench};

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
