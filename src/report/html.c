/* HTML page pieces (html.h). */
#include "report/html.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* Escapes s[0..n) (n bytes, or up to NUL). */
static void esc_n(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n && p[i];) {
        const unsigned char c = p[i];
        if (c >= 0x80) {
            size_t k = sl_utf8_seq(p + i, n - i);
            if (k == 0) {
                fputs("\xef\xbf\xbd", f);
                i++;
            } else {
                fwrite(p + i, 1, k, f);
                i += k;
            }
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (c >= 0x20 && c != 0x7f) fputc(c, f);
            else if (c == '\t' || c == '\n') fputc(' ', f);
        }
        i++;
    }
}

void rp_esc(FILE *f, const char *s)
{
    esc_n(f, s, strlen(s));
}

void rp_esc_cut(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    const size_t n = strlen(s);
    size_t at = 0, chars = 0;
    while (at < n && chars < max) {
        size_t k = p[at] < 0x80 ? 1 : sl_utf8_seq(p + at, n - at);
        at += k ? k : 1;
        chars++;
    }
    esc_n(f, s, at);
    if (at < n) fputs("...", f);
}

static const char CSS[] =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1500px}\n"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;"
    "margin-top:32px}h3{font-size:15px;margin:18px 0 6px}\n"
    "p,li{font-size:13px;line-height:1.4}code{font-size:12px;overflow-wrap:anywhere}\n"
    ".tw{overflow-x:auto;max-height:420px;overflow-y:auto;border:1px solid #ddd}\n"
    "table{border-collapse:collapse;font-size:12px}\n"
    "th,td{padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap;text-align:left}\n"
    "th{background:#f4f4f4;position:sticky;top:0}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    ".plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}\n"
    "figure.group{flex-basis:100%;border:none;padding:0}figure.group svg{border:1px solid #e4e4e4}\n"
    "figure{margin:0;border:1px solid #e4e4e4;padding:4px}\n"
    "figcaption{font-size:12px;color:#555;max-width:520px;padding:2px 4px}\n"
    "svg text{font-family:sans-serif}\n"
    ".warn{color:#a33}\n";

void rp_html_begin(FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
    rp_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", CSS);
}

void rp_html_end(FILE *f)
{
    fputs("</body>\n</html>\n", f);
}

/* s reads as a number (strtod takes all of it). */
static int numeric(const char *s)
{
    if (!*s) return 0;
    char *end;
    (void)strtod(s, &end);
    return *end == '\0';
}

void rp_html_table(FILE *f, const rp_csv *t, const char *id)
{
    fputs("<div class=\"tw\"><table id=\"", f);
    rp_esc(f, id);
    fputs("\">\n<thead><tr>", f);
    for (size_t c = 0; c < t->ncol; c++) {
        fputs("<th>", f);
        rp_esc(f, rp_csv_at(t, 0, c));
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (size_t r = 1; r <= t->nrow; r++) {
        fputs("<tr>", f);
        for (size_t c = 0; c < t->ncol; c++) {
            const char *s = rp_csv_at(t, r, c);
            fputs(numeric(s) ? "<td class=\"n\">" : "<td>", f);
            rp_esc(f, s);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}
