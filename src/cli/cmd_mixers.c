/* seqlab mixers: the registry, with papers, state sizes and whether a
 * bidirectional (causal = false) form exists. */
#include <stdio.h>

#include "cli/cli.h"
#include "mixers/mixer.h"

int cmd_mixers(int argc, char **argv)
{
    if (argc > 1 && cli_flag(argv[1], "help")) {
        printf("usage: seqlab mixers\n\nLists every registered sequence mixer, its paper, "
               "the size of its inference state, and whether it\nhas a bidirectional form "
               "(config causal = false).\n");
        return 0;
    }
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *v = sl_mixer_at(i);
        printf("%-16s %s\n%-16s state: %s\n%-16s bidirectional: %s\n", v->name, v->paper, "",
               v->state_desc, "", v->bidirectional ? "yes" : "no (causal only)");
    }
    return 0;
}
