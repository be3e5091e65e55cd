/* A task's scores (src/tasks/scores.h): scalar and curve means, their JSON
 * and text, and the refusals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tasks/scores.h"

/* sl_scores_json's output as a string. */
static const char *json_of(const sl_scores *s)
{
    static char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sl_scores_json(s, f);
    fclose(f);
    return buf;
}

static void test_means_and_json(void)
{
    sl_scores s;
    sl_scores_init(&s);
    CHECK(!strcmp(json_of(&s), ""), "nothing added, nothing written");
    CHECK(sl_scores_add(&s, "dfa_accuracy", 1) == SL_OK && sl_scores_add(&s, "dfa_accuracy", 0) == SL_OK &&
              sl_scores_add(&s, "dfa_accuracy", 1) == SL_OK,
          "%s", sl_errmsg());
    CHECK(fabs(sl_scores_mean(&s, "dfa_accuracy", 0) - 2.0 / 3) < 1e-12, "scalar mean");
    CHECK(sl_scores_add_at(&s, "err_by_k", 0, 1.0) == SL_OK &&
              sl_scores_add_at(&s, "err_by_k", 0, 0.5) == SL_OK &&
              sl_scores_add_at(&s, "err_by_k", 2, 0.25) == SL_OK,
          "%s", sl_errmsg());
    CHECK(sl_scores_mean(&s, "err_by_k", 0) == 0.75 && isnan(sl_scores_mean(&s, "err_by_k", 1)) &&
              sl_scores_mean(&s, "err_by_k", 2) == 0.25 && isnan(sl_scores_mean(&s, "err_by_k", 3)) &&
              isnan(sl_scores_mean(&s, "other", 0)),
          "curve means, empty index NaN");
    CHECK(sl_scores_add(&s, "nan", NAN) == SL_OK, "a NaN value");
    const char *j = json_of(&s);
    CHECK(!strcmp(j, ",\"dfa_accuracy\":0.666667,\"err_by_k\":[0.75,null,0.25],\"nan\":null"),
          "json: %s", j);
    char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sl_scores_text(&s, f);
    fclose(f);
    CHECK(!strcmp(buf, ", dfa_accuracy 0.6667, nan nan"), "text: %s", buf);
    sl_scores_free(&s);
}

static void test_refusals(void)
{
    sl_scores s;
    sl_scores_init(&s);
    CHECK(sl_scores_add(&s, "a", 1) == SL_OK, "a scalar");
    CHECK(sl_scores_add_at(&s, "a", 0, 1) == SL_ERR_ARG && strstr(sl_errmsg(), "'a' is a scalar"),
          "a scalar is no curve: %s", sl_errmsg());
    CHECK(sl_scores_add_at(&s, "c", -1, 1) == SL_ERR_ARG, "negative index");
    char name[64];
    for (int i = 1; i < SL_SCORES_MAX; i++) {
        snprintf(name, sizeof name, "s%d", i);
        CHECK(sl_scores_add(&s, name, i) == SL_OK, "%s", name);
    }
    CHECK(sl_scores_add(&s, "one_too_many", 1) == SL_ERR_ARG && strstr(sl_errmsg(), "at most"),
          "%s", sl_errmsg());
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    sl_scores_free(&s);
    CHECK(sl_scores_add(&s, name, 1) == SL_ERR_ARG, "a name too long");
    sl_scores_free(&s);
}

int main(void)
{
    RUN(test_means_and_json);
    RUN(test_refusals);
    return TEST_SUMMARY();
}
