/* A small SVG plot writer: lines (solid or dashed, with markers or not)
 * on linear or log axes, with ticks, grid lines, a title, axis labels and
 * a legend below the axes; every text escaped. The output is an inline
 * <svg> element for an HTML5 page (no xmlns needed, no script):
 *
 *   <svg class="plot" data-plot=KIND data-series=N data-points=M ...>
 *     <g class="series" data-name=NAME data-points=K data-values="x,y x,y ...">
 *       <polyline .../> ... </g>
 *
 * so a test counts the series and the points that were drawn, and reads
 * their values (data-values: series of at most 64 drawn points). */
#ifndef SL_REPORT_SVG_H
#define SL_REPORT_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

#define RP_COLORS 10
#define RP_MARKERS 4
/* A line's look: a palette color, a marker (-1: none; 0 circle, 1 square,
 * 2 triangle, 3 diamond), dashed or not, listed in the legend or not. */
typedef struct rp_style {
    int color, marker;
    bool dashed, legend;
} rp_style;

/* The i-th of a plot's distinct lines: color i mod 10, marker (i / 10)
 * mod 4 when markers is true, so 40 lines look apart. */
rp_style rp_style_nth(size_t i, bool markers, bool dashed);

typedef struct rp_series {
    char *name;
    double *x, *y; /* n points; a non-finite y (or x, or a value <= 0 on a log axis) is a gap */
    size_t n;
    rp_style st;
} rp_series;

typedef struct rp_plot {
    char kind[32];                 /* data-plot: what the plot shows */
    char *title, *xlabel, *ylabel; /* owned copies */
    bool xlog, ylog;
    bool xticks_at_data; /* ticks at the distinct x values (a few widths) */
    double ymin, ymax;   /* fixed y range when both finite (accuracy: 0, 1) */
    int width, height;   /* the axes' box in pixels */
    rp_series *s;
    size_t n, cap;
} rp_plot;

/* A plot with no series; NaN y range (automatic), linear axes, 420 x 240. */
sl_status rp_plot_init(rp_plot *p, const char *kind, const char *title, const char *xlabel,
                       const char *ylabel);
/* Adds a line through (x[i], y[i]), i < n (copied). */
sl_status rp_plot_add(rp_plot *p, const char *name, const double *x, const double *y, size_t n,
                      rp_style st);
/* Points a series draws: finite and, on a log axis, above 0. */
size_t rp_series_points(const rp_plot *p, const rp_series *s);
size_t rp_plot_points(const rp_plot *p);
/* Writes the <svg> element. Lines of more than 600 points are drawn
 * through every k-th point (and the last). */
void rp_plot_svg(const rp_plot *p, FILE *f);
void rp_plot_free(rp_plot *p);

/* True when the finite values > 0 of v[0..n) span more than `ratio`
 * (max / min) and none is <= 0: a log axis reads them better. */
bool rp_wants_log(const double *v, size_t n, double ratio);

#endif
