/* seqlab report's page in headless Chromium (Debian's `chromium`, which
 * `make test` installs when missing): no console message (an error, a
 * refused resource), every plot of the page in the DOM Chromium built,
 * each with its drawn points, and a screenshot. Prints "skipped: chromium
 * not installed" and passes when there is no chromium to run. */
#include <libgen.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "report_fixture.h"

static char bin[512], dir[64];

#define CHROMIUM                                                                           \
    "timeout 180 chromium --headless --no-sandbox --disable-gpu --no-first-run "             \
    "--disable-background-networking --enable-logging=stderr --v=0 --hide-scrollbars "     \
    "--window-size=1300,2400"

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The lines of Chromium's log that report the page's console: "...:INFO:
 * CONSOLE(1)] "message", source: ..." (errors, warnings, refused loads). */
static int console_lines(const char *log)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, ":CONSOLE")); p++) {
        const char *start = p, *end = strchr(p, '\n');
        while (start > log && start[-1] != '\n') start--;
        fprintf(stderr, "  console: %.*s\n", (int)((end ? end : p + strlen(p)) - start), start);
        n++;
    }
    return n;
}

/* The plots of a page: their count, and how many hold no drawn point. */
static int plots(const char *html, int *empty)
{
    int n = 0;
    *empty = 0;
    for (const char *p = html; (p = strstr(p, "<svg class=\"plot\"")); p++, n++) {
        const char *pts = strstr(p, " data-points=\"");
        if (!pts || strtol(pts + 14, NULL, 10) <= 0) ++*empty;
    }
    return n;
}

static void test_page_in_chromium(void)
{
    char cmd[2048], p[256];
    fx_sweep(dir);
    fx_bench(dir);
    snprintf(cmd, sizeof cmd,
             "%s train configs/timeseries_nottem.json --steps=2 --d_model=8 --n_heads=1 "
             "--n_layers=1 --eval_every=2 --eval_batches=1 --threads=1 --out_dir=%s/ts/run "
             "2>/dev/null && mv %s/ts/run %s/sw/runs/ts && %s report %s/sw --bench "
             "%s/bench.jsonl -o %s/page.html 2>%s/report.log",
             bin, dir, dir, dir, bin, dir, dir, dir, dir);
    CHECK(sh(cmd) == 0, "the page is made");
    size_t n;
    snprintf(p, sizeof p, "%s/page.html", dir);
    char *html = slurp(p, &n);
    CHECK(html, "page");
    if (!html) return;
    int empty;
    const int want = plots(html, &empty);
    CHECK(want >= 8 && empty == 0, "the page has %d plots, %d of them empty", want, empty);
    CHECK(strstr(html, "data-plot=\"forecast\""), "a forecast among them");
    snprintf(cmd, sizeof cmd, CHROMIUM " --dump-dom file://%s >%s/dom.html 2>%s/chromium.log",
             p, dir, dir);
    CHECK(sh(cmd) == 0, "chromium --dump-dom");
    snprintf(p, sizeof p, "%s/chromium.log", dir);
    char *log = slurp(p, &n);
    CHECK(log && console_lines(log) == 0, "no console message");
    snprintf(p, sizeof p, "%s/dom.html", dir);
    char *dom = slurp(p, &n);
    const int got = dom ? plots(dom, &empty) : 0;
    CHECK(dom && got == want && empty == 0, "the DOM holds %d plots (%d empty); the page %d", got,
          empty, want);
    CHECK(dom && strstr(dom, "</html>"), "the DOM is whole");
    snprintf(cmd, sizeof cmd,
             CHROMIUM " --screenshot=%s/shot.png file://%s/page.html >/dev/null 2>&1", dir, dir);
    CHECK(sh(cmd) == 0, "chromium --screenshot");
    snprintf(p, sizeof p, "%s/shot.png", dir);
    char *png = slurp(p, &n);
    CHECK(png && n > 10000 && memcmp(png, "\x89PNG", 4) == 0, "a screenshot (%zu bytes)", n);
    free(png);
    free(dom);
    free(log);
    free(html);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (sh("command -v chromium >/dev/null 2>&1") != 0) {
        printf("skipped: chromium not installed (tools/install_deps.sh chromium, as root)\n");
        return 0;
    }
    char self[512];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(bin, sizeof bin, "%s/../seqlab", dirname(self));
    strcpy(dir, "/tmp/seqlab-chromium-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_page_in_chromium);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
