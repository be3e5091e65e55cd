/* Component-owned options: a mixer or a task declares a table of its
 * settings (name, type, default, allowed range or values, meaning), and one
 * set of functions parses, checks, prints and serialises them. The run
 * config (model/config.h) only routes text to the right table; nothing
 * below it knows the config.
 *
 * Values arrive as text: from `--NAME.option=value`, or from JSON, where
 * the JSON type must fit the option's (a number for int and float, true or
 * false for bool, a string for enum), so "64" for an integer is an error,
 * as in the rest of the config. */
#ifndef SL_OPTIONS_H
#define SL_OPTIONS_H

#include <stdio.h>

#include "core/core.h"

#define SL_MAX_OPTS 24
#define SL_OPT_LEN 32

typedef enum { SL_OPT_INT, SL_OPT_FLOAT, SL_OPT_BOOL, SL_OPT_ENUM } sl_opt_type;

/* Where a value's text came from. */
typedef enum {
    SL_FROM_TEXT,
    SL_FROM_JSON_NUMBER,
    SL_FROM_JSON_BOOL,
    SL_FROM_JSON_STRING
} sl_opt_from;

typedef struct sl_option {
    const char *name;
    sl_opt_type type;
    const char *def;     /* the default, written as a value ("64", "true", "elu1") */
    double lo, hi;       /* INT, FLOAT: the allowed range, both ends included */
    const char *choices; /* ENUM: the allowed values, "elu1|relu|identity" */
    const char *help;    /* one line */
} sl_option;

/* An option table: SL_OPTION_TABLE(arr) in a vtable initialiser. */
typedef struct sl_option_table {
    const sl_option *opt;
    size_t n;
} sl_option_table;
#define SL_OPTION_TABLE(arr) ((sl_option_table){(arr), sizeof(arr) / sizeof((arr)[0])})

typedef struct sl_optval {
    int64_t i;          /* INT; BOOL as 0/1 */
    double f;           /* FLOAT */
    char s[SL_OPT_LEN]; /* ENUM; and every value as canonical text */
} sl_optval;

/* Resolved values of one component's table, in table order. */
typedef struct sl_opts {
    sl_option_table table;
    sl_optval v[SL_MAX_OPTS];
} sl_opts;

/* o = the table's defaults. SL_ERR_ARG when a default does not parse (a
 * bug in the table, caught by tests/test_options.c for every component). */
sl_status sl_opts_defaults(sl_opts *o, sl_option_table table);
/* Sets option `name` from text. Errors name owner ("mixer 'attention'"),
 * the option and what it expects; `where` (a file or flag) leads them. */
sl_status sl_opts_set(sl_opts *o, const char *owner, const char *where, const char *name,
                      const char *text, sl_opt_from from);
/* The option's entry in a table, or NULL. */
const sl_option *sl_option_find(sl_option_table table, const char *name);

/* Readers for a component's own options. Asking for a name the table does
 * not declare, or with the wrong type, is a bug: it aborts. */
int64_t sl_opt_int(const sl_opts *o, const char *name);
double sl_opt_float(const sl_opts *o, const char *name);
bool sl_opt_bool(const sl_opts *o, const char *name);
const char *sl_opt_str(const sl_opts *o, const char *name); /* ENUM */
/* True when the option's value differs between a and b (same table). */
bool sl_opts_equal(const sl_opts *a, const sl_opts *b);

/* "an integer in [0, 4096]", "one of elu1, relu, identity" ... */
void sl_option_expect(const sl_option *op, char *buf, size_t size);
/* The table as aligned text (`seqlab mixers NAME`, --help) or as a
 * markdown table (docs/cli.md). */
void sl_option_table_print(FILE *f, sl_option_table table, const char *indent, bool markdown);

#endif
