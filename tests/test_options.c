/* Option tables (core/options.h): defaults, typed parsing with ranges and
 * choices, where each value may come from, messages that name the owner,
 * the option and what it expects, readers, and the printed table. */
#include <string.h>

#include "check.h"
#include "core/options.h"
#include "mixers/mixer.h"
#include "tasks/task.h"

static const sl_option OPTS[] = {
    {"size", SL_OPT_INT, "4", 1, 64, NULL, "a size"},
    {"rate", SL_OPT_FLOAT, "0.5", 0, 1, NULL, "a rate"},
    {"on", SL_OPT_BOOL, "false", 0, 0, NULL, "a switch"},
    {"kind", SL_OPT_ENUM, "a", 0, 0, "a|bb|c", "a choice"},
};

static void test_defaults_and_readers(void)
{
    sl_opts o;
    CHECK(sl_opts_defaults(&o, SL_OPTION_TABLE(OPTS)) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_opt_int(&o, "size") == 4 && sl_opt_float(&o, "rate") == 0.5 &&
              !sl_opt_bool(&o, "on") && strcmp(sl_opt_str(&o, "kind"), "a") == 0,
          "defaults");
    CHECK(sl_opts_set(&o, "mixer 'x'", "t", "size", "64", SL_FROM_TEXT) == SL_OK &&
              sl_opts_set(&o, "mixer 'x'", "t", "rate", "1e-1", SL_FROM_JSON_NUMBER) == SL_OK &&
              sl_opts_set(&o, "mixer 'x'", "t", "on", "true", SL_FROM_JSON_BOOL) == SL_OK &&
              sl_opts_set(&o, "mixer 'x'", "t", "kind", "bb", SL_FROM_JSON_STRING) == SL_OK,
          "%s", sl_errmsg());
    CHECK(sl_opt_int(&o, "size") == 64 && sl_opt_float(&o, "rate") == 0.1 &&
              sl_opt_bool(&o, "on") && strcmp(sl_opt_str(&o, "kind"), "bb") == 0,
          "set");
    sl_opts d;
    sl_opts_defaults(&d, SL_OPTION_TABLE(OPTS));
    CHECK(!sl_opts_equal(&o, &d), "differ");
    sl_opts_set(&d, "x", "t", "size", "64", SL_FROM_TEXT);
    sl_opts_set(&d, "x", "t", "rate", "0.1", SL_FROM_TEXT);
    sl_opts_set(&d, "x", "t", "on", "1", SL_FROM_TEXT);
    sl_opts_set(&d, "x", "t", "kind", "bb", SL_FROM_TEXT);
    CHECK(sl_opts_equal(&o, &d), "equal after the same settings");
}

static void test_errors(void)
{
    sl_opts o;
    sl_opts_defaults(&o, SL_OPTION_TABLE(OPTS));
    struct {
        const char *name, *text;
        sl_opt_from from;
        const char *want;
    } cases[] = {
        {"size", "65", SL_FROM_TEXT, "an integer in [1, 64]"},
        {"size", "0", SL_FROM_TEXT, "an integer in [1, 64]"},
        {"size", "2.5", SL_FROM_JSON_NUMBER, "an integer"},
        {"size", "8", SL_FROM_JSON_STRING, "'size' = \"8\""},
        {"size", "99999999999999999999999", SL_FROM_TEXT, "an integer"},
        {"rate", "nan", SL_FROM_TEXT, "a number in [0, 1]"},
        {"rate", "2", SL_FROM_TEXT, "a number in [0, 1]"},
        {"on", "yes", SL_FROM_TEXT, "true or false"},
        {"on", "1", SL_FROM_JSON_NUMBER, "true or false"},
        {"kind", "d", SL_FROM_TEXT, "one of a, bb, c"},
        {"kind", "b", SL_FROM_TEXT, "one of a, bb, c"},
        {"kind", "true", SL_FROM_JSON_BOOL, "one of a, bb, c"},
        {"sise", "1", SL_FROM_TEXT, "no option 'sise' (its options: size, rate, on, kind)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_status st =
            sl_opts_set(&o, "mixer 'x'", "my.json", cases[i].name, cases[i].text, cases[i].from);
        CHECK(st == SL_ERR_CONFIG && strstr(sl_errmsg(), "my.json") &&
                  strstr(sl_errmsg(), "mixer 'x'") && strstr(sl_errmsg(), cases[i].want),
              "%s = %s -> %s", cases[i].name, cases[i].text, sl_errmsg());
    }
    CHECK(sl_opt_int(&o, "size") == 4 && strcmp(sl_opt_str(&o, "kind"), "a") == 0,
          "failed settings change nothing");
    static const sl_option BAD[] = {{"n", SL_OPT_INT, "x", 0, 1, NULL, "bad default"}};
    CHECK(sl_opts_defaults(&o, SL_OPTION_TABLE(BAD)) == SL_ERR_ARG && strstr(sl_errmsg(), "'n'"),
          "a default that does not parse");
}

/* Every registered component's table: defaults parse, names are unique,
 * help lines exist. */
static void test_every_component_table(void)
{
    sl_option_table tables[64];
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < sl_mixer_count() && n < 64; i++, n++) {
        tables[n] = sl_mixer_at(i)->options;
        names[n] = sl_mixer_at(i)->name;
    }
    for (size_t i = 0; i < sl_task_count() && n < 64; i++, n++) {
        tables[n] = sl_task_at(i)->options;
        names[n] = sl_task_at(i)->name;
        CHECK(!sl_mixer_lookup(names[n]), "task %s: not also a mixer's name", names[n]);
    }
    for (size_t k = 0; k < n; k++) {
        sl_opts o;
        CHECK(sl_opts_defaults(&o, tables[k]) == SL_OK, "%s: %s", names[k], sl_errmsg());
        for (size_t i = 0; i < tables[k].n; i++) {
            const sl_option *op = &tables[k].opt[i];
            CHECK(op->help && op->help[0] && !strchr(op->name, '.'), "%s.%s: help, no dot",
                  names[k], op->name);
            CHECK(sl_option_find(tables[k], op->name) == op, "%s.%s: unique", names[k], op->name);
        }
    }
}

static void test_printed_table(void)
{
    char buf[2048] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    sl_option_table_print(f, SL_OPTION_TABLE(OPTS), "  ", true);
    fclose(f);
    CHECK(strstr(buf, "| option | type | default | allowed | meaning |") &&
              strstr(buf, "| `kind` | enum | `a` | one of a, bb, c | a choice |") &&
              strstr(buf, "| `size` | int | `4` | an integer in [1, 64] | a size |"),
          "markdown: %s", buf);
}

int main(void)
{
    RUN(test_defaults_and_readers);
    RUN(test_errors);
    RUN(test_every_component_table);
    RUN(test_printed_table);
    return TEST_SUMMARY();
}
