/* The report's HTML: escaping, the page's head (inline CSS: no script, no
 * font, no URL) and tables. */
#ifndef SL_REPORT_HTML_H
#define SL_REPORT_HTML_H

#include <stdio.h>

#include "report/csv.h"

/* s as HTML text or a double-quoted attribute value: & < > " ' escaped,
 * control characters dropped, bytes that are not UTF-8 as U+FFFD. */
void rp_esc(FILE *f, const char *s);
/* At most max characters of s escaped, with "..." when cut (UTF-8 kept
 * whole). */
void rp_esc_cut(FILE *f, const char *s, size_t max);

void rp_html_begin(FILE *f, const char *title);
void rp_html_end(FILE *f);
/* t as a <table>: header cells, then rows; cells that read as numbers are
 * right-aligned. id: the table's id attribute. */
void rp_html_table(FILE *f, const rp_csv *t, const char *id);

#endif
