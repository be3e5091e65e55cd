/* seqlab tasks [NAME] [--markdown]: the task registry and each task's
 * options. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "tasks/task.h"

static void help(void)
{
    printf("usage: seqlab tasks [NAME] [--markdown]\n\n"
           "Lists every registered task (config key task) with what it does and its\n"
           "options (set them with --TASK.option=value, or in the config's\n"
           "\"task_options\"). --markdown prints them as the markdown of docs/cli.md.\n");
}

static void describe(const sl_task_vtable *t, bool markdown)
{
    if (markdown) {
        printf("### %s\n\n%s.\n\n", t->name, t->desc);
        if (t->options.n)
            sl_option_table_print(stdout, t->options, "", true);
        else
            printf("No options.\n");
        printf("\n");
        return;
    }
    printf("%-16s %s\n", t->name, t->desc);
    if (t->options.n) sl_option_table_print(stdout, t->options, "                 ", false);
}

int cmd_tasks(int argc, char **argv)
{
    const char *name;
    bool markdown;
    int rc = cli_name_args("tasks", argc, argv, help, &name, &markdown);
    if (rc >= 0) return rc;
    if (name) {
        const sl_task_vtable *t = sl_task_lookup(name);
        if (!t) return cli_usage_error("tasks", "unknown task \"%s\" (see `seqlab tasks`)", name);
        describe(t, markdown);
        return 0;
    }
    for (size_t i = 0; i < sl_task_count(); i++) describe(sl_task_at(i), markdown);
    return 0;
}
