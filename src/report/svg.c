/* SVG line plots (svg.h). */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "report/html.h"

#define MAX_DRAW 600
#define LEFT 62
#define RIGHT 18
#define TOP 30
#define BOTTOM 42
#define LEGEND_COL 170
#define LEGEND_ROW 17
#define MAX_TICKS 12
#define MAX_VALUES 64 /* a series of up to this many points lists them in data-values */

/* Tableau 10: distinct in color and in grey. */
static const char *const COLORS[RP_COLORS] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                              "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                              "#bcbd22", "#17becf"};

rp_style rp_style_nth(size_t i, bool markers, bool dashed)
{
    return (rp_style){.color = (int)(i % RP_COLORS),
                      .marker = markers ? (int)(i / RP_COLORS % RP_MARKERS) : -1,
                      .dashed = dashed,
                      .legend = true};
}

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

sl_status rp_plot_init(rp_plot *p, const char *kind, const char *title, const char *xlabel,
                       const char *ylabel)
{
    *p = (rp_plot){.ymin = NAN, .ymax = NAN, .width = 420, .height = 240};
    snprintf(p->kind, sizeof p->kind, "%s", kind);
    p->title = copy_str(title);
    p->xlabel = copy_str(xlabel);
    p->ylabel = copy_str(ylabel);
    if (!p->title || !p->xlabel || !p->ylabel) {
        rp_plot_free(p);
        return sl_fail(SL_ERR_OOM, "out of memory making a plot");
    }
    return SL_OK;
}

sl_status rp_plot_add(rp_plot *p, const char *name, const double *x, const double *y, size_t n,
                      rp_style st)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        rp_series *g = realloc(p->s, cap * sizeof *g);
        if (!g) return sl_fail(SL_ERR_OOM, "out of memory making a plot");
        p->s = g;
        p->cap = cap;
    }
    rp_series *s = &p->s[p->n];
    *s = (rp_series){.name = copy_str(name), .n = n, .st = st};
    s->x = malloc((n ? n : 1) * sizeof *s->x);
    s->y = malloc((n ? n : 1) * sizeof *s->y);
    if (!s->name || !s->x || !s->y) {
        free(s->name);
        free(s->x);
        free(s->y);
        return sl_fail(SL_ERR_OOM, "out of memory making a plot");
    }
    if (n) {
        memcpy(s->x, x, n * sizeof *x);
        memcpy(s->y, y, n * sizeof *y);
    }
    p->n++;
    return SL_OK;
}

void rp_plot_free(rp_plot *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->s[i].name);
        free(p->s[i].x);
        free(p->s[i].y);
    }
    free(p->s);
    free(p->title);
    free(p->xlabel);
    free(p->ylabel);
    *p = (rp_plot){0};
}

bool rp_wants_log(const double *v, size_t n, double ratio)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (v[i] <= 0) return false;
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    return hi > 0 && hi / lo > ratio;
}

/* Point i of s is on the stride through a long line (every k-th and the
 * last). */
static bool on_stride(const rp_series *s, size_t i)
{
    const size_t k = (s->n + MAX_DRAW - 1) / MAX_DRAW;
    return k <= 1 || i % k == 0 || i == s->n - 1;
}

/* Point i of s is drawn: on the stride, and finite (above 0 on a log
 * axis). */
static bool drawn(const rp_plot *p, const rp_series *s, size_t i)
{
    const double x = s->x[i], y = s->y[i];
    return on_stride(s, i) && isfinite(x) && isfinite(y) && (!p->xlog || x > 0) &&
           (!p->ylog || y > 0);
}

size_t rp_series_points(const rp_plot *p, const rp_series *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) n += drawn(p, s, i);
    return n;
}

size_t rp_plot_points(const rp_plot *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) n += rp_series_points(p, &p->s[i]);
    return n;
}

/* An axis: the data range in axis units (log10 on a log axis) and its ticks. */
typedef struct axis {
    bool log;
    double lo, hi;
    double tick[MAX_TICKS];
    int nt;
} axis;

static double unit(const axis *a, double v)
{
    return a->log ? log10(v) : v;
}

static double nice_step(double span)
{
    const double raw = span / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return mag * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
}

/* The range [lo, hi] (axis units) padded by 4% each side, and ticks
 * inside it: decades on a log axis that spans two or more (with 2 and 5
 * between them when it spans less), steps of 1, 2 or 5 times a power of
 * ten on a linear one. */
static void ticks(axis *a)
{
    const double pad = (a->hi - a->lo) * 0.04;
    a->lo -= pad;
    a->hi += pad;
    a->nt = 0;
    if (a->log) {
        const double lo = ceil(a->lo), hi = floor(a->hi);
        if (hi - lo >= 1) {
            const double every = ceil((hi - lo + 1) / MAX_TICKS);
            for (double e = lo; e <= hi && a->nt < MAX_TICKS; e += every) a->tick[a->nt++] = e;
            return;
        }
        static const double M[] = {1, 2, 5};
        for (double e = floor(a->lo); e <= hi + 1 && a->nt < MAX_TICKS; e++)
            for (int k = 0; k < 3 && a->nt < MAX_TICKS; k++) {
                const double t = e + log10(M[k]);
                if (t >= a->lo && t <= a->hi) a->tick[a->nt++] = t;
            }
        return;
    }
    const double step = nice_step(a->hi - a->lo);
    for (double t = ceil(a->lo / step - 1e-9) * step; t <= a->hi + step * 1e-9 && a->nt < MAX_TICKS;
         t += step)
        a->tick[a->nt++] = fabs(t) < step * 1e-9 ? 0 : t;
}

/* The range of the drawn values of one coordinate (x: which = 0). */
static void extent(const rp_plot *p, int which, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t k = 0; k < p->n; k++) {
        const rp_series *s = &p->s[k];
        for (size_t i = 0; i < s->n; i++) {
            if (!drawn(p, s, i)) continue;
            const double v = which ? s->y[i] : s->x[i];
            const bool lg = which ? p->ylog : p->xlog;
            const double u = lg ? log10(v) : v;
            if (u < *lo) *lo = u;
            if (u > *hi) *hi = u;
        }
    }
    if (!(*lo <= *hi)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi - *lo < 1e-12 * (fabs(*hi) + 1)) {
        const double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d;
        *hi += d;
    }
}

static void x_axis(const rp_plot *p, axis *a)
{
    a->log = p->xlog;
    extent(p, 0, &a->lo, &a->hi);
    if (!p->xticks_at_data) {
        ticks(a);
        return;
    }
    a->nt = 0;
    for (size_t k = 0; k < p->n; k++)
        for (size_t i = 0; i < p->s[k].n; i++) {
            if (!drawn(p, &p->s[k], i)) continue;
            const double u = unit(a, p->s[k].x[i]);
            int j = 0;
            while (j < a->nt && a->tick[j] != u) j++;
            if (j < a->nt) continue;
            if (a->nt == MAX_TICKS) {
                ticks(a);
                return;
            }
            a->tick[a->nt++] = u;
        }
    const double pad = (a->hi - a->lo) * 0.06;
    a->lo -= pad;
    a->hi += pad;
}

static void y_axis(const rp_plot *p, axis *a)
{
    a->log = p->ylog;
    if (isfinite(p->ymin) && isfinite(p->ymax) && p->ymin < p->ymax && !p->ylog) {
        a->lo = p->ymin;
        a->hi = p->ymax;
        ticks(a);
        a->lo = p->ymin - (p->ymax - p->ymin) * 0.02;
        a->hi = p->ymax + (p->ymax - p->ymin) * 0.02;
        return;
    }
    extent(p, 1, &a->lo, &a->hi);
    ticks(a);
}

/* A tick label: 1.5k, 2M, 0.25, 1e-05. */
static void label(char *out, size_t n, const axis *a, double t)
{
    const double v = a->log ? pow(10, t) : t, m = fabs(v);
    if (m >= 1e6 && m < 1e15) snprintf(out, n, "%.3gM", v / 1e6);
    else if (m >= 1e3 && m < 1e6) snprintf(out, n, "%.3gk", v / 1e3);
    else snprintf(out, n, "%.3g", v);
}

typedef struct frame {
    axis x, y;
    double left, top, w, h;
} frame;

static double px(const frame *fr, double u)
{
    return fr->left + (u - fr->x.lo) / (fr->x.hi - fr->x.lo) * fr->w;
}

static double py(const frame *fr, double u)
{
    return fr->top + fr->h - (u - fr->y.lo) / (fr->y.hi - fr->y.lo) * fr->h;
}

static void marker(FILE *f, int kind, double x, double y, const char *color)
{
    switch (kind) {
    case 0: fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\"", x, y); break;
    case 1: fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"5\" height=\"5\"", x - 2.5, y - 2.5); break;
    case 2:
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"", x, y - 3.2, x + 3, y + 2.4,
                x - 3, y + 2.4);
        break;
    default:
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"", x, y - 3.4, x + 3.4,
                y, x, y + 3.4, x - 3.4, y);
    }
    fprintf(f, " fill=\"%s\"/>", color);
}

/* One series: polylines through its runs of drawn points, then markers. */
static void series(FILE *f, const rp_plot *p, const rp_series *s, const frame *fr)
{
    const char *color = COLORS[s->st.color % RP_COLORS];
    fputs("<g class=\"series\" data-name=\"", f);
    rp_esc(f, s->name);
    const size_t np = rp_series_points(p, s);
    fprintf(f, "\" data-points=\"%zu\"%s", np, s->st.dashed ? " data-dashed=\"1\"" : "");
    if (np <= MAX_VALUES) {
        fputs(" data-values=\"", f);
        for (size_t i = 0, k = 0; i < s->n; i++)
            if (drawn(p, s, i)) fprintf(f, "%s%.6g,%.6g", k++ ? " " : "", s->x[i], s->y[i]);
        fputs("\"", f);
    }
    fputs(">", f);
    fputs("<title>", f);
    rp_esc(f, s->name);
    fputs("</title>\n", f);
    bool open = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!on_stride(s, i)) continue;
        if (!drawn(p, s, i)) {
            if (open) fputs("\"/>\n", f);
            open = false;
            continue;
        }
        if (!open)
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"",
                    color, s->st.dashed ? " stroke-dasharray=\"5 3\"" : "");
        fprintf(f, "%s%.1f,%.1f", open ? " " : "", px(fr, unit(&fr->x, s->x[i])),
                py(fr, unit(&fr->y, s->y[i])));
        open = true;
    }
    if (open) fputs("\"/>\n", f);
    /* a lone point draws no line: it gets a marker */
    const int mk = s->st.marker >= 0 ? s->st.marker : rp_series_points(p, s) == 1 ? 0 : -1;
    if (mk >= 0)
        for (size_t i = 0; i < s->n; i++)
            if (drawn(p, s, i))
                marker(f, mk, px(fr, unit(&fr->x, s->x[i])), py(fr, unit(&fr->y, s->y[i])),
                       color);
    fputs("</g>\n", f);
}

static void axes(FILE *f, const rp_plot *p, const frame *fr)
{
    char t[32];
    fprintf(f, "<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n");
    for (int i = 0; i < fr->y.nt; i++) {
        const double y = py(fr, fr->y.tick[i]);
        label(t, sizeof t, &fr->y, fr->y.tick[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                fr->left, y, fr->left + fr->w, y, fr->left - 5, y + 4, t);
    }
    for (int i = 0; i < fr->x.nt; i++) {
        const double x = px(fr, fr->x.tick[i]);
        label(t, sizeof t, &fr->x, fr->x.tick[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                x, fr->top, x, fr->top + fr->h, x, fr->top + fr->h + 15, t);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#888\"/>\n",
            fr->left, fr->top, fr->w, fr->h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", fr->left + fr->w / 2,
            fr->top + fr->h + 32);
    rp_esc(f, p->xlabel);
    fputs(p->xlog ? " (log)" : "", f);
    fprintf(f, "</text>\n<text transform=\"translate(14 %.1f) rotate(-90)\" "
               "text-anchor=\"middle\">",
            fr->top + fr->h / 2);
    rp_esc(f, p->ylabel);
    fputs(p->ylog ? " (log)" : "", f);
    fputs("</text>\n</g>\n", f);
}

static void legend(FILE *f, const rp_plot *p, double top, int cols)
{
    int k = 0;
    for (size_t i = 0; i < p->n; i++) {
        const rp_series *s = &p->s[i];
        if (!s->st.legend) continue;
        const double x = 10 + (double)(k % cols) * LEGEND_COL, y = top + (k / cols) * LEGEND_ROW;
        const char *color = COLORS[s->st.color % RP_COLORS];
        fprintf(f, "<g class=\"key\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                   "stroke=\"%s\" stroke-width=\"2\"%s/>",
                x, y, x + 22, y, color, s->st.dashed ? " stroke-dasharray=\"5 3\"" : "");
        if (s->st.marker >= 0) marker(f, s->st.marker, x + 11, y, color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", x + 27, y + 4);
        rp_esc_cut(f, s->name, 24);
        fputs("</text></g>\n", f);
        k++;
    }
}

void rp_plot_svg(const rp_plot *p, FILE *f)
{
    frame fr = {.left = LEFT, .top = TOP, .w = p->width, .h = p->height};
    x_axis(p, &fr.x);
    y_axis(p, &fr.y);
    const int W = LEFT + p->width + RIGHT;
    const int cols = (W - 10) / LEGEND_COL > 0 ? (W - 10) / LEGEND_COL : 1;
    int keys = 0;
    for (size_t i = 0; i < p->n; i++) keys += p->s[i].st.legend;
    const int rows = (keys + cols - 1) / cols;
    const int H = TOP + p->height + BOTTOM + (rows ? rows * LEGEND_ROW + 6 : 0);
    fprintf(f, "<svg class=\"plot\" data-plot=\"");
    rp_esc(f, p->kind);
    fprintf(f, "\" data-series=\"%zu\" data-points=\"%zu\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\">\n<title>",
            p->n, rp_plot_points(p), W, H, W, H);
    rp_esc(f, p->title);
    fprintf(f, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n"
               "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" "
               "font-weight=\"bold\">",
            W, H, W / 2);
    rp_esc_cut(f, p->title, 70);
    fputs("</text>\n", f);
    axes(f, p, &fr);
    for (size_t i = 0; i < p->n; i++) series(f, p, &p->s[i], &fr);
    if (rp_plot_points(p) == 0)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#999\">no data"
                   "</text>\n",
                fr.left + fr.w / 2, fr.top + fr.h / 2);
    legend(f, p, TOP + p->height + BOTTOM + 4, cols);
    fputs("</svg>\n", f);
}
