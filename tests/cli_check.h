/* Running the seqlab binary from a test (test_cli, test_sweep,
 * test_report). Include after check.h. */
#ifndef SL_CLI_CHECK_H
#define SL_CLI_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Runs `BIN ARGS` (in directory dir when in_dir), its stdout to
 * DIR/stdout.txt and its stderr to DIR/stderr.txt and into err (up to n -
 * 1 bytes); returns the exit status, or -1 when it died from a signal. */
static inline int cli_check_run(const char *bin, const char *dir, bool in_dir, const char *args,
                                char *err, size_t n)
{
    char cmd[8192], ef[512];
    snprintf(ef, sizeof ef, "%s/stderr.txt", dir);
    if (in_dir)
        snprintf(cmd, sizeof cmd, "cd %s && %s %s >stdout.txt 2>%s", dir, bin, args, ef);
    else
        snprintf(cmd, sizeof cmd, "%s %s >%s/stdout.txt 2>%s", bin, args, dir, ef);
    int st = system(cmd);
    FILE *f = fopen(ef, "r");
    size_t got = f ? fread(err, 1, n - 1, f) : 0;
    err[got] = '\0';
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
