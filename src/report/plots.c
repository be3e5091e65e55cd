/* Figures from runs and benchmark points (plots.h). */
#include "report/plots.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "report/html.h"
#include "report/read.h"
#include "report/svg.h"

/* Writes p in a <figure> with its caption (escaped), frees p. */
static void figure(FILE *f, rp_plot *p, const char *caption)
{
    fprintf(f, "<figure>\n");
    rp_plot_svg(p, f);
    fputs("<figcaption>", f);
    rp_esc(f, caption);
    fputs("</figcaption>\n</figure>\n", f);
    rp_plot_free(p);
}

static sl_status oom(void)
{
    return sl_fail(SL_ERR_OOM, "out of memory making the report's plots");
}

/* ------------------------------------------------------------ loss */

sl_status rp_fig_loss(FILE *f, const rp_sweep *s)
{
    size_t points = 0;
    for (size_t i = 0; i < s->n; i++) points += s->runs[i].train.n + s->runs[i].valid.n;
    if (!points) return SL_OK;
    double *all = malloc(points * sizeof *all);
    if (!all) return oom();
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->runs[i].train.n; j++) all[k++] = s->runs[i].train.y[j];
        for (size_t j = 0; j < s->runs[i].valid.n; j++) all[k++] = s->runs[i].valid.y[j];
    }
    rp_plot p;
    sl_status st = rp_plot_init(&p, "loss", "loss", "step", "loss");
    if (st) {
        free(all);
        return st;
    }
    p.ylog = rp_wants_log(all, points, 30);
    free(all);
    p.width = 520;
    p.height = 280;
    for (size_t i = 0; i < s->n && !st; i++) {
        const rp_run *r = &s->runs[i];
        rp_style t = rp_style_nth(i, false, false), v = rp_style_nth(i, false, true);
        v.legend = r->train.n == 0;
        if (r->train.n) st = rp_plot_add(&p, r->name, r->train.x, r->train.y, r->train.n, t);
        if (!st && r->valid.n) {
            char name[600];
            snprintf(name, sizeof name, "%s (validation)", r->name);
            st = rp_plot_add(&p, name, r->valid.x, r->valid.y, r->valid.n, v);
        }
    }
    if (st) {
        rp_plot_free(&p);
        return st;
    }
    figure(f, &p,
           "Training loss (solid) and validation loss (dashed, same color) against the "
           "optimizer step, one color per run (metrics.jsonl).");
    return SL_OK;
}

/* ------------------------------------------------------- accuracy */

/* A parameter's value as text: a string as it is, a number by %g. */
static void value_text(const cJSON *v, char *out, size_t n)
{
    if (cJSON_IsString(v)) {
        snprintf(out, n, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        snprintf(out, n, "%g", v->valuedouble);
    } else {
        char *t = v ? cJSON_PrintUnformatted(v) : NULL;
        snprintf(out, n, "%s", t ? t : "");
        free(t);
    }
}

/* key is a d_model, mixer or best_over key (the keys of an object axis
 * of best_over included). */
static bool collapsed(const rp_sweep *s, const char *key)
{
    if (strcmp(key, "d_model") == 0 || strcmp(key, "mixer") == 0) return true;
    const cJSON *over = cJSON_GetObjectItemCaseSensitive(s->spec, "best_over");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(s->spec, "grid");
    const cJSON *axis;
    cJSON_ArrayForEach(axis, over)
    {
        if (!cJSON_IsString(axis)) continue;
        if (strcmp(axis->valuestring, key) == 0) return true;
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(grid, axis->valuestring), *v;
        cJSON_ArrayForEach(v, vals)
        {
            if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, key)) return true;
        }
    }
    return false;
}

/* key takes more than one value (or is absent somewhere) over the runs
 * with params. */
static bool varies(const rp_sweep *s, const char *key)
{
    const rp_run *first = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const rp_run *r = &s->runs[i];
        if (!r->params) continue;
        if (!first) {
            first = r;
            continue;
        }
        const cJSON *a = rp_run_param(first, key), *b = rp_run_param(r, key);
        if ((!a) != (!b) || (a && !cJSON_Compare(a, b, true))) return true;
    }
    return false;
}

/* The run's cell: "key=value, ..." over the keys that split the sweep. */
static void cell_of(const rp_sweep *s, const rp_run *r, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, r->params)
    {
        if (collapsed(s, kv->string) || !varies(s, kv->string)) continue;
        char v[128];
        value_text(kv, v, sizeof v);
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s=%s", len ? ", " : "",
                                kv->string, v);
        if (len >= n) break;
    }
}

/* One run on the accuracy plots. */
typedef struct acc_pt {
    char cell[256], mixer[128];
    double width, acc, select;
} acc_pt;

static int by_width(const void *a, const void *b)
{
    const double x = ((const acc_pt *)a)->width, y = ((const acc_pt *)b)->width;
    return (x > y) - (x < y);
}

/* The accuracy a plot shows (test, else the last validation) and the one
 * that picks the best over best_over (result.json's validation, else the
 * shown one). */
static void accuracy_of(const rp_run *r, double *acc, double *select)
{
    const char *split;
    *acc = rp_num(rp_run_scores(r, &split), "accuracy");
    *select = r->val && isfinite(rp_num(r->val, "accuracy")) ? rp_num(r->val, "accuracy") : *acc;
}

/* The plot of one cell: per mixer, its best point at each width. */
static sl_status accuracy_cell(FILE *f, acc_pt *pt, size_t n, const char *cell, char (*mixers)[128],
                               size_t nm, bool small)
{
    rp_plot p;
    sl_status st = rp_plot_init(&p, "accuracy", cell[0] ? cell : "accuracy", "d_model", "accuracy");
    if (st) return st;
    p.ymin = 0;
    p.ymax = 1;
    p.xticks_at_data = true;
    if (small) {
        p.width = 300;
        p.height = 180;
    }
    double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y),
           *sel = malloc((n + 1) * sizeof *sel), lo = INFINITY, hi = 0;
    acc_pt *mine = malloc((n + 1) * sizeof *mine);
    if (!x || !y || !sel || !mine) st = oom();
    for (size_t m = 0; m < nm && !st; m++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(pt[i].cell, cell) == 0 && strcmp(pt[i].mixer, mixers[m]) == 0)
                mine[k++] = pt[i];
        if (!k) continue;
        qsort(mine, k, sizeof *mine, by_width);
        size_t q = 0;
        for (size_t i = 0; i < k; i++) {
            if (q && x[q - 1] == mine[i].width) {
                if (mine[i].select > sel[q - 1]) {
                    y[q - 1] = mine[i].acc;
                    sel[q - 1] = mine[i].select;
                }
                continue;
            }
            x[q] = mine[i].width;
            y[q] = mine[i].acc;
            sel[q++] = mine[i].select;
            if (mine[i].width < lo) lo = mine[i].width;
            if (mine[i].width > hi) hi = mine[i].width;
        }
        st = rp_plot_add(&p, mixers[m], x, y, q, rp_style_nth(m, true, false));
    }
    p.xlog = lo > 0 && hi / lo >= 4;
    free(x);
    free(y);
    free(sel);
    free(mine);
    if (!st) rp_plot_svg(&p, f);
    rp_plot_free(&p);
    return st;
}

sl_status rp_fig_accuracy(FILE *f, const rp_sweep *s)
{
    acc_pt *pt = malloc((s->n + 1) * sizeof *pt);
    char(*cells)[256] = malloc((s->n + 1) * sizeof *cells);
    char(*mixers)[128] = malloc((s->n + 1) * sizeof *mixers);
    if (!pt || !cells || !mixers) {
        free(pt);
        free(cells);
        free(mixers);
        return oom();
    }
    size_t n = 0, nc = 0, nm = 0;
    bool shown_test = false, by_val = false;
    for (size_t i = 0; i < s->n; i++) {
        const rp_run *r = &s->runs[i];
        const cJSON *w = rp_run_param(r, "d_model");
        if (!cJSON_IsNumber(w) || !(w->valuedouble > 0)) continue;
        acc_pt *a = &pt[n];
        a->width = w->valuedouble;
        accuracy_of(r, &a->acc, &a->select);
        if (!isfinite(a->acc)) continue;
        shown_test |= r->test != NULL;
        by_val |= r->val && isfinite(rp_num(r->val, "accuracy"));
        const cJSON *mx = rp_run_param(r, "mixer");
        if (mx) value_text(mx, a->mixer, sizeof a->mixer);
        else snprintf(a->mixer, sizeof a->mixer, "model");
        cell_of(s, r, a->cell, sizeof a->cell);
        size_t c = 0, m = 0;
        while (c < nc && strcmp(cells[c], a->cell) != 0) c++;
        if (c == nc) memcpy(cells[nc++], a->cell, sizeof a->cell);
        while (m < nm && strcmp(mixers[m], a->mixer) != 0) m++;
        if (m == nm) memcpy(mixers[nm++], a->mixer, sizeof a->mixer);
        n++;
    }
    sl_status st = SL_OK;
    if (n) fputs("<figure class=\"group\">\n<div class=\"plots\">\n", f);
    for (size_t c = 0; c < nc && !st; c++) st = accuracy_cell(f, pt, n, cells[c], mixers, nm, nc > 1);
    if (!st && n) {
        char cap[512];
        const cJSON *over = cJSON_GetObjectItemCaseSensitive(s->spec, "best_over");
        char *o = cJSON_GetArraySize(over) ? cJSON_PrintUnformatted(over) : NULL;
        snprintf(cap, sizeof cap, "%s accuracy against d_model, one line per mixer%s%s%s%s.",
                 shown_test ? "Test" : "Validation", o ? ", the best over " : "", o ? o : "",
                 o ? (by_val ? " by validation accuracy" : " by the accuracy shown") : "",
                 nc > 1 ? "; one plot per cell of the other grid keys" : "");
        free(o);
        fputs("</div>\n<figcaption>", f);
        rp_esc(f, cap);
        fputs("</figcaption>\n</figure>\n", f);
    }
    free(pt);
    free(cells);
    free(mixers);
    return st;
}

/* --------------------------------------------------------- curves */

/* The group of an array score: from its last "_by_", or the whole name. */
static const char *suffix(const char *name)
{
    const char *g = NULL;
    for (const char *p = strstr(name, "_by_"); p; p = strstr(p + 1, "_by_")) g = p;
    return g ? g : name;
}

static bool is_curve(const cJSON *v)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1) return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) return false;
    }
    return true;
}

/* v's entries as doubles (null: NaN) and their indices. */
static sl_status to_xy(const cJSON *v, double **x, double **y, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(v);
    *x = malloc(*n * sizeof **x);
    *y = malloc(*n * sizeof **y);
    if (!*x || !*y) {
        free(*x);
        free(*y);
        return oom();
    }
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        (*x)[i] = (double)i;
        (*y)[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    }
    return SL_OK;
}

/* A baseline already drawn with the same values under name (or name and
 * the run that first had them). */
static bool drawn_before(const rp_plot *p, const char *name, const double *y, size_t n)
{
    const size_t len = strlen(name);
    for (size_t i = 0; i < p->n; i++) {
        const rp_series *s = &p->s[i];
        if (!s->st.dashed || strncmp(s->name, name, len) != 0 ||
            (s->name[len] != '\0' && s->name[len] != ' ') || s->n != n)
            continue;
        bool same = true;
        for (size_t k = 0; k < n && same; k++)
            same = s->y[k] == y[k] || (isnan(s->y[k]) && isnan(y[k]));
        if (same) return true;
    }
    return false;
}

/* One group's plot: each run's own curve, then its baselines. */
static sl_status curve_group(FILE *f, const rp_sweep *s, const char *group)
{
    char title[160], xl[64];
    const bool by = strncmp(group, "_by_", 4) == 0;
    snprintf(title, sizeof title, "%s%s", by ? "*" : "", group);
    snprintf(xl, sizeof xl, "%s", by ? group + 4 : "index");
    rp_plot p;
    sl_status st = rp_plot_init(&p, "curve", title, xl, "value");
    if (st) return st;
    p.width = 460;
    p.height = 260;
    size_t runs = 0, baselines = 0, npts = 0;
    const char *splits[2] = {NULL, NULL};
    for (size_t i = 0; i < s->n && !st; i++) {
        const char *split;
        const cJSON *sc = rp_run_scores(&s->runs[i], &split), *v;
        bool own = true;
        cJSON_ArrayForEach(v, sc)
        {
            if (st || !is_curve(v) || strcmp(suffix(v->string), group) != 0) continue;
            double *x, *y;
            size_t n;
            if ((st = to_xy(v, &x, &y, &n))) break;
            npts += n;
            splits[strcmp(split, "test") != 0] = split;
            char name[600];
            if (own) {
                snprintf(name, sizeof name, "%s", s->n > 1 ? s->runs[i].name : v->string);
                st = rp_plot_add(&p, name, x, y, n, rp_style_nth(runs++, n <= 40, false));
            } else if (!drawn_before(&p, v->string, y, n)) {
                bool clash = false;
                for (size_t k = 0; k < p.n; k++) clash |= strcmp(p.s[k].name, v->string) == 0;
                if (clash) snprintf(name, sizeof name, "%s (%s)", v->string, s->runs[i].name);
                else snprintf(name, sizeof name, "%s", v->string);
                rp_style bst = rp_style_nth(RP_COLORS - 1 - baselines % RP_COLORS, false, true);
                bst.marker = n <= 40 ? (int)((baselines + 1) % RP_MARKERS) : -1;
                baselines++;
                st = rp_plot_add(&p, name, x, y, n, bst);
            }
            own = false;
            free(x);
            free(y);
        }
    }
    double *all = st ? NULL : malloc((npts + 1) * sizeof *all);
    if (!st && !all) st = oom();
    if (!st) {
        size_t k = 0;
        for (size_t i = 0; i < p.n; i++)
            for (size_t j = 0; j < p.s[i].n; j++) all[k++] = p.s[i].y[j];
        p.ylog = rp_wants_log(all, k, 100);
    }
    free(all);
    if (st) {
        rp_plot_free(&p);
        return st;
    }
    char cap[512], what[200];
    if (by) snprintf(what, sizeof what, "Array-valued scores ending in '%s' against %s", group, xl);
    else snprintf(what, sizeof what, "The array-valued score '%s' against its index", group);
    snprintf(cap, sizeof cap, "%s (%s%s%s): each run's first such score solid, %s; the others "
                              "(baselines) dashed.",
             what, splits[0] ? "test" : "", splits[0] && splits[1] ? "; " : "",
             splits[1] ? "last validation line of runs without result.json" : "",
             s->n > 1 ? "one color per run" : "named as the score");
    figure(f, &p, cap);
    return SL_OK;
}

sl_status rp_fig_curves(FILE *f, const rp_sweep *s)
{
    const char **groups = NULL;
    size_t ng = 0, cap = 0;
    sl_status st = SL_OK;
    for (size_t i = 0; i < s->n && !st; i++) {
        const char *split;
        const cJSON *sc = rp_run_scores(&s->runs[i], &split), *v;
        cJSON_ArrayForEach(v, sc)
        {
            if (!is_curve(v)) continue;
            const char *g = suffix(v->string);
            size_t k = 0;
            while (k < ng && strcmp(groups[k], g) != 0) k++;
            if (k < ng) continue;
            if (ng == cap) {
                cap = cap ? 2 * cap : 8;
                const char **ng_ = realloc(groups, cap * sizeof *ng_);
                if (!ng_) {
                    st = oom();
                    break;
                }
                groups = ng_;
            }
            groups[ng++] = g;
        }
    }
    for (size_t k = 0; k < ng && !st; k++) st = curve_group(f, s, groups[k]);
    free(groups);
    return st;
}

/* ------------------------------------------------------ forecasts */

sl_status rp_fig_forecasts(FILE *f, const rp_sweep *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const rp_forecast *fc = &s->runs[i].fc;
        if (fc->H <= 0) continue;
        const size_t L = (size_t)fc->L, H = (size_t)fc->H;
        double *xi = malloc(L * sizeof *xi), *xh = malloc(H * sizeof *xh);
        rp_plot p;
        char title[600];
        snprintf(title, sizeof title, "forecast: %s", s->runs[i].name);
        sl_status st = xi && xh ? rp_plot_init(&p, "forecast", title, "rows from the first target",
                                                "scaled value")
                                : oom();
        if (st) {
            free(xi);
            free(xh);
            return st;
        }
        for (size_t t = 0; t < L; t++) xi[t] = (double)t - (double)L;
        for (size_t t = 0; t < H; t++) xh[t] = (double)t;
        const bool mk = H <= 40;
        rp_style in = rp_style_nth(7, false, false), tr = rp_style_nth(0, mk, false),
                 pr = rp_style_nth(3, mk, true);
        st = rp_plot_add(&p, "input", xi, fc->input, L, in);
        if (!st) st = rp_plot_add(&p, "truth", xh, fc->truth, H, tr);
        if (!st) st = rp_plot_add(&p, "forecast", xh, fc->pred, H, pr);
        free(xi);
        free(xh);
        if (st) {
            rp_plot_free(&p);
            return st;
        }
        char cap[300];
        snprintf(cap, sizeof cap,
                 "Test window %lld (first target row %lld): its %lld input rows, the %lld true "
                 "rows and the model's forecast, first column, in scaled units.",
                 (long long)fc->window, (long long)fc->start, (long long)fc->L, (long long)fc->H);
        figure(f, &p, cap);
    }
    return SL_OK;
}

/* ---------------------------------------------------------- bench */

static int by_seq(const void *a, const void *b)
{
    const int64_t x = ((const rp_bench_point *)a)->seq, y = ((const rp_bench_point *)b)->seq;
    return (x > y) - (x < y);
}

/* One plot: per mixer, value `what` (0 ms, 1 peak MB) against T; PyTorch
 * dashed (time only). */
static sl_status bench_plot(FILE *f, const rp_bench *b, int what)
{
    rp_plot p;
    sl_status st = rp_plot_init(&p, what ? "bench_memory" : "bench_time",
                                what ? "peak activation memory" : "forward + backward time",
                                "sequence length T", what ? "peak MB" : "ms");
    if (st) return st;
    p.xlog = p.ylog = true;
    p.width = 560;
    p.height = 320;
    rp_bench_point *mine = malloc(b->n * sizeof *mine);
    double *x = malloc(b->n * sizeof *x), *y = malloc(b->n * sizeof *y);
    if (!mine || !x || !y) st = oom();
    size_t nm = 0;
    bool torch = false;
    for (size_t i = 0; i < b->n && !st; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++) first = strcmp(b->p[j].mixer, b->p[i].mixer) != 0;
        if (!first) continue;
        size_t k = 0;
        for (size_t j = i; j < b->n; j++)
            if (strcmp(b->p[j].mixer, b->p[i].mixer) == 0) mine[k++] = b->p[j];
        qsort(mine, k, sizeof *mine, by_seq);
        for (size_t j = 0; j < k; j++) {
            x[j] = (double)mine[j].seq;
            y[j] = what ? mine[j].peak_mb : mine[j].ms;
        }
        st = rp_plot_add(&p, b->p[i].mixer, x, y, k, rp_style_nth(nm, true, false));
        size_t q = 0;
        for (size_t j = 0; j < k && !what; j++)
            if (mine[j].torch_ms > 0) {
                x[q] = (double)mine[j].seq;
                y[q++] = mine[j].torch_ms;
            }
        if (!st && q) {
            char name[RP_MIXER_NAME + 16];
            snprintf(name, sizeof name, "%s (PyTorch)", b->p[i].mixer);
            rp_style ts = rp_style_nth(nm, true, true);
            ts.legend = false;
            st = rp_plot_add(&p, name, x, y, q, ts);
            torch = true;
        }
        nm++;
    }
    free(mine);
    free(x);
    free(y);
    if (st) {
        rp_plot_free(&p);
        return st;
    }
    figure(f, &p,
           what ? "Peak activation memory of one mixer layer against T (log-log), one line per "
                  "mixer (seqlab bench --mixer: peak_mb)."
           : torch ? "Forward + backward time of one mixer layer against T (log-log): seqlab "
                     "solid, PyTorch dashed in the same color where measured (ms, torch_ms)."
                   : "Forward + backward time of one mixer layer against T (log-log), one line "
                     "per mixer (seqlab bench --mixer: ms).");
    return SL_OK;
}

sl_status rp_fig_bench(FILE *f, const rp_bench *b)
{
    if (!b->n) return SL_OK;
    sl_status st = bench_plot(f, b, 0);
    return st ? st : bench_plot(f, b, 1);
}
