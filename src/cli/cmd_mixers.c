/* seqlab mixers [NAME] [--markdown]: the registry, with papers, equations,
 * state sizes, whether a bidirectional (causal = false) form exists, and
 * each mixer's options. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mixers/mixer.h"

static void help(void)
{
    printf("usage: seqlab mixers [NAME] [--markdown]\n\n"
           "Lists every registered sequence mixer, its paper, the size of its inference\n"
           "state, and whether it has a bidirectional form (config causal = false) or\n"
           "only that one. With NAME: that mixer's equation and its options (set them\n"
           "with --NAME.option=value, or per layer with --layers.N.option=value).\n"
           "--markdown prints every mixer's entry as the markdown of docs/cli.md.\n");
}

static const char *bidir_word(const sl_mixer_vtable *v)
{
    if (v->noncausal_only) return "only (no causal form)";
    return v->bidirectional ? "yes" : "no (causal only)";
}

static void describe(const sl_mixer_vtable *v, bool markdown)
{
    if (markdown) {
        printf("### %s\n\n%s\n\n    %s\n\nState: %s. Bidirectional: %s.\n\n", v->name, v->paper,
               v->equation, v->state_desc, bidir_word(v));
        if (v->options.n)
            sl_option_table_print(stdout, v->options, "", true);
        else
            printf("No options.\n");
        printf("\n");
        return;
    }
    printf("%s: %s\n  %s\n  state: %s\n  bidirectional: %s\n", v->name, v->paper, v->equation,
           v->state_desc, bidir_word(v));
    if (v->options.n) {
        printf("  options (--%s.option=value):\n", v->name);
        sl_option_table_print(stdout, v->options, "    ", false);
    } else {
        printf("  options: none\n");
    }
}

int cmd_mixers(int argc, char **argv)
{
    const char *name;
    bool markdown;
    int rc = cli_name_args("mixers", argc, argv, help, &name, &markdown);
    if (rc >= 0) return rc;
    if (name) {
        const sl_mixer_vtable *v = sl_mixer_lookup(name);
        if (!v)
            return cli_usage_error("mixers", "unknown mixer \"%s\" (see `seqlab mixers`)", name);
        describe(v, markdown);
        return 0;
    }
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *v = sl_mixer_at(i);
        if (markdown) {
            describe(v, true);
            continue;
        }
        printf("%-16s %s\n%-16s state: %s\n%-16s bidirectional: %s\n%-16s options: %zu "
               "(`seqlab mixers %s`)\n",
               v->name, v->paper, "", v->state_desc, "",
               bidir_word(v), "", v->options.n, v->name);
    }
    return 0;
}
