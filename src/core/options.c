/* Option tables: parsing, checks, readers and printing (core/options.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"

const sl_option *sl_option_find(sl_option_table table, const char *name)
{
    for (size_t i = 0; i < table.n; i++)
        if (strcmp(table.opt[i].name, name) == 0) return &table.opt[i];
    return NULL;
}

static const char *type_word(sl_opt_type t)
{
    switch (t) {
    case SL_OPT_INT: return "int";
    case SL_OPT_FLOAT: return "number";
    case SL_OPT_BOOL: return "bool";
    case SL_OPT_ENUM: return "enum";
    }
    return "?";
}

void sl_option_expect(const sl_option *op, char *buf, size_t size)
{
    switch (op->type) {
    case SL_OPT_INT: snprintf(buf, size, "an integer in [%.0f, %.0f]", op->lo, op->hi); return;
    case SL_OPT_FLOAT: snprintf(buf, size, "a number in [%g, %g]", op->lo, op->hi); return;
    case SL_OPT_BOOL: snprintf(buf, size, "true or false"); return;
    case SL_OPT_ENUM: {
        size_t n = (size_t)snprintf(buf, size, "one of ");
        for (const char *c = op->choices; *c && n + 3 < size; c++)
            n += (size_t)snprintf(buf + n, size - n, *c == '|' ? ", " : "%c", *c);
        return;
    }
    }
}

/* The index of word in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t len = strlen(word);
    int idx = 0;
    for (const char *c = choices; *c; idx++) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && strncmp(c, word, n) == 0) return idx;
        if (!bar) break;
        c = bar + 1;
    }
    return -1;
}

/* Parses text as op's type into *v; false when it does not fit. */
/* The JSON type each option type takes. */
static const sl_opt_from JSON_FROM[] = {[SL_OPT_INT] = SL_FROM_JSON_NUMBER,
                                        [SL_OPT_FLOAT] = SL_FROM_JSON_NUMBER,
                                        [SL_OPT_BOOL] = SL_FROM_JSON_BOOL,
                                        [SL_OPT_ENUM] = SL_FROM_JSON_STRING};

static bool parse_value(const sl_option *op, const char *text, sl_opt_from from, sl_optval *v)
{
    char *end = NULL;
    if (strlen(text) >= SL_OPT_LEN) return false;
    if (from != SL_FROM_TEXT && from != JSON_FROM[op->type]) return false;
    errno = 0;
    switch (op->type) {
    case SL_OPT_INT: {
        long long x = strtoll(text, &end, 10);
        if (end == text || *end || errno || (double)x < op->lo || (double)x > op->hi) return false;
        v->i = x;
        v->f = (double)x;
        snprintf(v->s, sizeof v->s, "%lld", x);
        return true;
    }
    case SL_OPT_FLOAT: {
        double x = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(x) || x < op->lo || x > op->hi) return false;
        v->f = x;
        v->i = 0;
        snprintf(v->s, sizeof v->s, "%.17g", x);
        return true;
    }
    case SL_OPT_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            v->i = 1;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            v->i = 0;
        else
            return false;
        v->f = (double)v->i;
        snprintf(v->s, sizeof v->s, "%s", v->i ? "true" : "false");
        return true;
    case SL_OPT_ENUM:
        if (choice_index(op->choices, text) < 0) return false;
        v->i = choice_index(op->choices, text);
        v->f = 0;
        snprintf(v->s, sizeof v->s, "%s", text);
        return true;
    }
    return false;
}

sl_status sl_opts_defaults(sl_opts *o, sl_option_table table)
{
    memset(o, 0, sizeof *o);
    o->table = table;
    if (table.n > SL_MAX_OPTS)
        return sl_fail(SL_ERR_ARG, "option table of %zu entries: at most %d", table.n, SL_MAX_OPTS);
    for (size_t i = 0; i < table.n; i++)
        if (!parse_value(&table.opt[i], table.opt[i].def, SL_FROM_TEXT, &o->v[i]))
            return sl_fail(SL_ERR_ARG, "option '%s': default \"%s\" does not parse",
                           table.opt[i].name, table.opt[i].def);
    return SL_OK;
}

sl_status sl_opts_set(sl_opts *o, const char *owner, const char *where, const char *name,
                      const char *text, sl_opt_from from)
{
    const sl_option *op = sl_option_find(o->table, name);
    if (!op) {
        char known[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < o->table.n && n < sizeof known; i++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "",
                                  o->table.opt[i].name);
        return sl_fail(SL_ERR_CONFIG, "%s: %s has no option '%s' (its options: %s)", where, owner,
                       name, o->table.n ? known : "none");
    }
    if (!parse_value(op, text, from, &o->v[op - o->table.opt])) {
        const bool quoted = from == SL_FROM_JSON_STRING;
        char want[160];
        sl_option_expect(op, want, sizeof want);
        return sl_fail(SL_ERR_CONFIG, "%s: %s option '%s' = %s%s%s: expected %s", where, owner,
                       name, quoted ? "\"" : "", text, quoted ? "\"" : "", want);
    }
    return SL_OK;
}

static const sl_optval *value_of(const sl_opts *o, const char *name, sl_opt_type type)
{
    const sl_option *op = sl_option_find(o->table, name);
    sl_require(op && op->type == type, name, "an option the component declares, of its type");
    return &o->v[op - o->table.opt];
}

int64_t sl_opt_int(const sl_opts *o, const char *name) { return value_of(o, name, SL_OPT_INT)->i; }
double sl_opt_float(const sl_opts *o, const char *name)
{
    return value_of(o, name, SL_OPT_FLOAT)->f;
}
bool sl_opt_bool(const sl_opts *o, const char *name) { return value_of(o, name, SL_OPT_BOOL)->i; }
const char *sl_opt_str(const sl_opts *o, const char *name)
{
    return value_of(o, name, SL_OPT_ENUM)->s;
}

bool sl_opts_equal(const sl_opts *a, const sl_opts *b)
{
    if (a->table.opt != b->table.opt || a->table.n != b->table.n) return false;
    for (size_t i = 0; i < a->table.n; i++)
        if (strcmp(a->v[i].s, b->v[i].s) != 0) return false;
    return true;
}

void sl_option_table_print(FILE *f, sl_option_table table, const char *indent, bool markdown)
{
    if (markdown && table.n) {
        fprintf(f, "%s| option | type | default | allowed | meaning |\n", indent);
        fprintf(f, "%s|---|---|---|---|---|\n", indent);
    }
    for (size_t i = 0; i < table.n; i++) {
        const sl_option *op = &table.opt[i];
        char want[160];
        sl_option_expect(op, want, sizeof want);
        if (markdown)
            fprintf(f, "%s| `%s` | %s | `%s` | %s | %s |\n", indent, op->name, type_word(op->type),
                    op->def, want, op->help);
        else
            fprintf(f, "%s%-16s %-6s %-8s %s (%s)\n", indent, op->name, type_word(op->type),
                    op->def, op->help, want);
    }
}
