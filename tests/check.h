/* Minimal test harness. Each test is a function; CHECK failures mark it
 * failed. Each binary prints "ok - name" / "FAIL - name" lines, then
 * "N passed, N failed", and exits non-zero on any failure; tests/run.sh adds
 * the binaries up. */
#ifndef SL_CHECK_H
#define SL_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures; /* failures inside the running test */
static int tests_passed, tests_failed;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            check_failures++;                                            \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
        }                                                                \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol, what)                                              \
    do {                                                                                 \
        double ca_ = (a), cb_ = (b);                                                     \
        CHECK(fabs(ca_ - cb_) <= (atol) + (rtol) * fabs(cb_) && !isnan(ca_), "%s: %.9g vs %.9g", \
              (what), ca_, cb_);                                                         \
    } while (0)

/* Runs `call` as one test reported under `name` (a string). */
#define RUN_AS(name, call)                                        \
    do {                                                          \
        check_failures = 0;                                       \
        call;                                                     \
        if (check_failures) {                                     \
            tests_failed++;                                       \
            printf("FAIL - %s\n", (name));                        \
        } else {                                                  \
            tests_passed++;                                       \
            printf("ok - %s\n", (name));                          \
        }                                                         \
        fflush(stdout);                                           \
    } while (0)
#define RUN(fn) RUN_AS(#fn, fn())

#define TEST_SUMMARY()                                                     \
    (printf("%d passed, %d failed\n", tests_passed, tests_failed), tests_failed ? 1 : 0)

/* Max |a - b| / (atol + rtol |b|) over n floats: <= 1 means close. */
static inline double close_ratio(const float *a, const float *b, long long n, double atol,
                                 double rtol)
{
    double worst = 0;
    for (long long i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (isnan(a[i]) || isnan(b[i])) r = INFINITY;
        if (r > worst) worst = r;
    }
    return worst;
}

/* Root-mean-square of x: the scale for absolute tolerances. */
static inline double rms(const float *x, long long n)
{
    double s = 0;
    for (long long i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)(n ? n : 1));
}

/* The whole file at path, NUL-terminated (malloc'd), its length in *len;
 * NULL (and *len 0) when it cannot be read. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b) {
        *len = fread(b, 1, (size_t)n, f);
        b[*len] = '\0';
    }
    fclose(f);
    return b;
}

#endif
