/* Shared pieces of the `seqlab` subcommands. */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* Prints "seqlab CMD: error: <sl_errmsg()>" and returns the exit code: 3 when
 * the last failure was an allocation (SL_ERR_OOM), else 1. */
int cli_error(const char *cmd);
/* Prints "seqlab CMD: error: <fmt...>" and returns 2 (usage errors). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option scanning: "--name=value" or "--name value". On a match of name,
 * *value is set (advancing *i past a separate value) and true returned;
 * *value is NULL when the value is missing (a next argument that starts
 * with "--" is an option, not a value: "--name=--x" passes one). */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
bool cli_flag(const char *arg, const char *name);
/* `seqlab CMD [NAME] [--markdown] [--help]`: sets *name (NULL when absent)
 * and *markdown; returns -1 to go on, or the exit code (help printed, or
 * a usage error). */
int cli_name_args(const char *cmd, int argc, char **argv, void (*help)(void), const char **name,
                  bool *markdown);
/* Parses an integer / number option value, naming the option on failure. */
bool cli_int(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t *out);
/* The same with an upper bound, for sizes: "expected an integer in [lo, hi]". */
bool cli_int_in(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t hi,
                int64_t *out);
/* Median of v[0..n) (v is sorted in place). */
double cli_median(double *v, int64_t n);
bool cli_num(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_mixers(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
/* bench_mixer.c: one mixer layer over the sequence lengths Ts[0..nT). */
int bench_mixer(const char *name, const int64_t *Ts, int nT, int64_t D, int64_t H, int64_t reps,
                int64_t rounds, int64_t recompute, bool compare);

#endif
