/* Option parsing and error reporting shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_error(const char *cmd)
{
    fprintf(stderr, "seqlab %s: error: %s\n", cmd, sl_errmsg());
    return sl_errcode() == SL_ERR_OOM ? 3 : 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "seqlab %s: error: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see `seqlab %s --help`)\n", cmd);
    va_end(ap);
    return 2;
}

bool cli_flag(const char *arg, const char *name)
{
    return strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, name) == 0;
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0) return false;
    if (a[2 + n] == '=') {
        *value = a + 3 + n;
        return true;
    }
    if (a[2 + n] != '\0') return false;
    /* "--a --b": --b is the next option, not --a's value (--a=--b says so). */
    *value = *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0 ? argv[++*i] : NULL;
    return true;
}

bool cli_int_in(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t hi,
                int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || x < lo || x > hi) {
        if (hi == INT64_MAX)
            cli_usage_error(cmd, "--%s: expected an integer >= %lld, got \"%s\"", opt,
                            (long long)lo, v ? v : "");
        else
            cli_usage_error(cmd, "--%s: expected an integer in [%lld, %lld], got \"%s\"", opt,
                            (long long)lo, (long long)hi, v ? v : "");
        return false;
    }
    *out = x;
    return true;
}

bool cli_int(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t *out)
{
    return cli_int_in(cmd, opt, v, lo, INT64_MAX, out);
}

bool cli_num(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || end == v || *end || errno || !(x >= lo && x <= hi)) {
        cli_usage_error(cmd, "--%s: expected a number in [%g, %g], got \"%s\"", opt, lo, hi,
                        v ? v : "");
        return false;
    }
    *out = x;
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cli_name_args(const char *cmd, int argc, char **argv, void (*help)(void), const char **name,
                  bool *markdown)
{
    *name = NULL;
    *markdown = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        }
        if (cli_flag(argv[i], "markdown")) *markdown = true;
        else if (argv[i][0] == '-') return cli_usage_error(cmd, "unknown option %s", argv[i]);
        else if (!*name) *name = argv[i];
        else return cli_usage_error(cmd, "more than one name given");
    }
    return -1;
}
