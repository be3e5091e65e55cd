/* The report page (page.h). */
#include "report/page.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "report/html.h"
#include "report/plots.h"
#include "report/read.h"

static void num(char *out, size_t n, double v)
{
    if (isfinite(v)) snprintf(out, n, "%.6g", v);
    else snprintf(out, n, "%s", "");
}

/* The last finite y of a curve, NaN when none. */
static double last(const rp_curve *c)
{
    for (size_t i = c->n; i-- > 0;)
        if (isfinite(c->y[i])) return c->y[i];
    return NAN;
}

/* Adds name to names[0..*n) when new (at most max). */
static void add_name(const char **names, size_t *n, size_t max, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0) return;
    if (*n < max) names[(*n)++] = name;
}

#define MAX_COLS 48

/* A table of runs that have no summary.csv: name, status (when some run
 * has a result.json), last step, last training and validation loss, then
 * the other scalars of the last validation line (val_) and of
 * result.json's test object (test_). */
static sl_status run_table(const rp_sweep *s, rp_csv *t)
{
    *t = (rp_csv){0};
    const char *val[MAX_COLS], *test[MAX_COLS];
    size_t nv = 0, nt = 0;
    bool status = false;
    for (size_t i = 0; i < s->n; i++) {
        const cJSON *v;
        status |= s->runs[i].result != NULL;
        cJSON_ArrayForEach(v, s->runs[i].last_val)
        {
            if (cJSON_IsNumber(v) && strcmp(v->string, "step") != 0 && strcmp(v->string, "loss") != 0)
                add_name(val, &nv, MAX_COLS, v->string);
        }
        cJSON_ArrayForEach(v, s->runs[i].test)
        {
            if (cJSON_IsNumber(v)) add_name(test, &nt, MAX_COLS, v->string);
        }
    }
    /* columns: name, [status,] step, train_loss, val_loss, val_*, test_* */
    const size_t fixed = status ? 5 : 4, nc = fixed + nv + nt;
    const char *cells[5 + 2 * MAX_COLS];
    char buf[5 + 2 * MAX_COLS][64];
    static const char *const HEAD[] = {"name", "status", "step", "train_loss", "val_loss"};
    for (size_t c = 0; c < nc; c++) {
        if (c < fixed) snprintf(buf[c], sizeof buf[c], "%s", HEAD[c + (status || c == 0 ? 0 : 1)]);
        else if (c < fixed + nv) snprintf(buf[c], sizeof buf[c], "val_%s", val[c - fixed]);
        else snprintf(buf[c], sizeof buf[c], "test_%s", test[c - fixed - nv]);
        cells[c] = buf[c];
    }
    sl_status st = rp_csv_add(t, cells, nc);
    for (size_t i = 0; i < s->n && !st; i++) {
        const rp_run *r = &s->runs[i];
        const cJSON *stat = cJSON_GetObjectItemCaseSensitive(r->result, "status");
        double step = NAN;
        if (r->train.n) step = r->train.x[r->train.n - 1];
        if (r->valid.n && !(r->valid.x[r->valid.n - 1] <= step)) step = r->valid.x[r->valid.n - 1];
        size_t c = 0;
        cells[c++] = r->name;
        if (status) cells[c++] = cJSON_IsString(stat) ? stat->valuestring : "";
        num(buf[c], sizeof buf[c], step);
        num(buf[c + 1], sizeof buf[c + 1], last(&r->train));
        num(buf[c + 2], sizeof buf[c + 2], last(&r->valid));
        for (size_t k = c; k < c + 3; k++) cells[k] = buf[k];
        for (c += 3; c < nc; c++) {
            const bool v = c < fixed + nv;
            num(buf[c], sizeof buf[c],
                rp_num(v ? r->last_val : r->test, v ? val[c - fixed] : test[c - fixed - nv]));
            cells[c] = buf[c];
        }
        st = rp_csv_add(t, cells, nc);
    }
    if (st) rp_csv_free(t);
    return st;
}

/* The spec's grid, target and best_over as a list. */
static void spec(FILE *f, const cJSON *sp)
{
    fputs("<ul>\n", f);
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(sp, "grid"), *axis;
    cJSON_ArrayForEach(axis, grid)
    {
        char *v = cJSON_PrintUnformatted(axis);
        fputs("<li>grid <code>", f);
        rp_esc(f, axis->string);
        fputs("</code>: <code>", f);
        rp_esc_cut(f, v ? v : "", 300);
        fputs("</code></li>\n", f);
        free(v);
    }
    static const char *const KEYS[] = {"base", "set", "target", "best_over", "eval_split"};
    for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(sp, KEYS[k]);
        if (!v) continue;
        char *t = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
        fprintf(f, "<li>%s: <code>", KEYS[k]);
        rp_esc_cut(f, cJSON_IsString(v) ? v->valuestring : t ? t : "", 300);
        fputs("</code></li>\n", f);
        free(t);
    }
    fputs("</ul>\n", f);
}

/* "N runs: done D, failed F; K metrics lines skipped". */
static void counts(FILE *f, const rp_sweep *s)
{
    size_t done = 0, failed = 0, bad = 0, lines = 0;
    for (size_t i = 0; i < s->n; i++) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(s->runs[i].result, "status");
        done += cJSON_IsString(st) && strcmp(st->valuestring, "done") == 0;
        failed += cJSON_IsString(st) && strcmp(st->valuestring, "failed") == 0;
        bad += s->runs[i].bad_lines > 0;
        lines += s->runs[i].bad_lines;
    }
    fprintf(f, "<p>%zu run%s", s->n, s->n == 1 ? "" : "s");
    if (done || failed) fprintf(f, ": %zu done, %zu failed", done, failed);
    fputs(".", f);
    if (lines)
        fprintf(f, " <span class=\"warn\">%zu metrics.jsonl line%s of %zu run%s skipped "
                   "(not JSON objects with a step; stderr names them).</span>",
                lines, lines == 1 ? "" : "s", bad, bad == 1 ? "" : "s");
    fputs("</p>\n", f);
}

static sl_status sweep(FILE *f, const rp_sweep *s, size_t k)
{
    fprintf(f, "<section id=\"sweep%zu\">\n<h2>", k);
    rp_esc(f, s->name);
    fputs(s->spec ? " (sweep)" : " (runs)", f);
    fputs("</h2>\n<p>Directory <code>", f);
    rp_esc(f, s->dir);
    fputs("</code></p>\n", f);
    if (s->spec) spec(f, s->spec);
    counts(f, s);
    char id[64];
    if (s->best.ncol) {
        fputs("<h3>Best runs (best.csv)</h3>\n", f);
        snprintf(id, sizeof id, "best%zu", k);
        rp_html_table(f, &s->best, id);
    }
    if (s->summary.ncol) {
        snprintf(id, sizeof id, "summary%zu", k);
        fputs(s->best.ncol ? "<details><summary>All runs (summary.csv)</summary>\n"
                           : "<h3>Runs (summary.csv)</h3>\n",
              f);
        rp_html_table(f, &s->summary, id);
        if (s->best.ncol) fputs("</details>\n", f);
    } else if (s->n) {
        rp_csv t;
        sl_status st = run_table(s, &t);
        if (st) return st;
        fputs("<h3>Runs</h3>\n", f);
        snprintf(id, sizeof id, "runs%zu", k);
        rp_html_table(f, &t, id);
        rp_csv_free(&t);
    }
    fputs("<div class=\"plots\">\n", f);
    sl_status st = rp_fig_loss(f, s);
    if (!st) st = rp_fig_accuracy(f, s);
    if (!st) st = rp_fig_curves(f, s);
    if (!st) st = rp_fig_forecasts(f, s);
    fputs("</div>\n</section>\n", f);
    return st;
}

sl_status rp_page_write(FILE *f, const rp_page *pg)
{
    char title[600];
    snprintf(title, sizeof title, "seqlab report: %s", pg->runs_dir);
    rp_html_begin(f, title);
    fputs("<h1>", f);
    rp_esc(f, title);
    fputs("</h1>\n<p>Made by <code>seqlab report</code> (docs/report.md). Contents:</p>\n<ul>\n",
          f);
    for (size_t k = 0; k < pg->runs->n; k++) {
        fprintf(f, "<li><a href=\"#sweep%zu\">", k);
        rp_esc(f, pg->runs->sweeps[k].name);
        fprintf(f, "</a> (%zu run%s)</li>\n", pg->runs->sweeps[k].n,
                pg->runs->sweeps[k].n == 1 ? "" : "s");
    }
    if (pg->bench->n) fputs("<li><a href=\"#bench\">mixers over sequence length</a></li>\n", f);
    fputs("</ul>\n", f);
    sl_status st = SL_OK;
    for (size_t k = 0; k < pg->runs->n && !st; k++) st = sweep(f, &pg->runs->sweeps[k], k);
    if (!st && pg->bench->n) {
        fputs("<section id=\"bench\">\n<h2>Mixers over sequence length</h2>\n<p>From ", f);
        for (size_t i = 0; i < pg->n_bench_files; i++) {
            fputs(i ? ", <code>" : "<code>", f);
            rp_esc(f, pg->bench_files[i]);
            fputs("</code>", f);
        }
        fprintf(f, ": %zu points of <code>seqlab bench --mixer</code> (one mixer layer, forward "
                   "+ backward; docs/benchmarks.md).</p>\n<div class=\"plots\">\n",
                pg->bench->n);
        st = rp_fig_bench(f, pg->bench);
        fputs("</div>\n</section>\n", f);
    }
    rp_html_end(f);
    return st;
}
