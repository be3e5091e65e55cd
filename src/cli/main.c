/* seqlab: the command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} CMDS[] = {
    {"train", cmd_train, "train a model from a JSON config (or resume a checkpoint)"},
    {"eval", cmd_eval, "loss and bits per character of a checkpoint on a data split"},
    {"generate", cmd_generate, "sample text from a checkpoint (KV-cached decoding)"},
    {"score", cmd_score, "per-position log-probabilities of a text file, as JSON"},
    {"mixers", cmd_mixers, "list the registered sequence mixers, their papers and options"},
    {"tasks", cmd_tasks, "list the registered tasks and their options"},
    {"bench", cmd_bench, "time training steps of the nanoGPT character shape"},
    {"sweep", cmd_sweep, "train and evaluate a grid of configs, resumable, in parallel"},
    {"report", cmd_report, "one self-contained HTML page of tables and plots from runs"},
};

static void usage(FILE *f)
{
    fprintf(f, "seqlab %s: sequence models in C\n\nusage: seqlab COMMAND [ARGS]\n\ncommands:\n",
            SEQLAB_VERSION);
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        fprintf(f, "  %-10s %s\n", CMDS[i].name, CMDS[i].help);
    fprintf(f, "\n`seqlab COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv[1], "help") || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (cli_flag(argv[1], "version")) {
        printf("seqlab %s\n", SEQLAB_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (strcmp(argv[1], CMDS[i].name) == 0) return CMDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "seqlab: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
