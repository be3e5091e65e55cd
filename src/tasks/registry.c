/* Task names -> vtables. */
#include <string.h>

#include "tasks/task.h"

extern const sl_task_vtable sl_task_text;

static const sl_task_vtable *const TASKS[] = {&sl_task_text};

sl_status sl_task_open(sl_task *t, const sl_config *cfg, const char *vocab)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (strcmp(TASKS[i]->name, cfg->task) == 0) {
            t->vt = TASKS[i];
            sl_status st = t->vt->open(t, cfg, vocab ? vocab : "");
            if (st) sl_task_close(t);
            return st;
        }
    return sl_fail(SL_ERR_CONFIG, "config key 'task' = \"%s\": unknown task", cfg->task);
}

void sl_task_close(sl_task *t)
{
    if (t->vt && t->impl) t->vt->close(t);
    memset(t, 0, sizeof *t);
}
