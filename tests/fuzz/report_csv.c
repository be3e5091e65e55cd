/* Fuzz target: the report's CSV reader (src/report/csv.c). Oracle: a
 * table it accepts, written back with every cell quoted, reads back as the
 * same cells; and its HTML table escapes every '<' of a cell. */
#include "fuzz/fuzz.h"
#include "report/csv.h"
#include "report/html.h"

/* t as CSV text, every cell quoted ("" for a quote). */
static char *write_back(const rp_csv *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) abort();
    for (size_t r = 0; r <= t->nrow; r++)
        for (size_t c = 0; c < t->ncol; c++) {
            fputc('"', f);
            for (const char *p = rp_csv_at(t, r, c); *p; p++) {
                if (*p == '"') fputc('"', f);
                fputc(*p, f);
            }
            fputs(c + 1 < t->ncol ? "\"," : "\"\n", f);
        }
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    rp_csv t;
    if (rp_csv_parse(&t, text, "fuzz.csv") == SL_OK) {
        char *again = write_back(&t);
        rp_csv u;
        FUZZ_ASSERT(rp_csv_parse(&u, again, "again.csv") == SL_OK, "the written table reads");
        FUZZ_ASSERT(u.ncol == t.ncol && u.nrow == t.nrow, "the same shape");
        for (size_t r = 0; r <= t.nrow; r++)
            for (size_t c = 0; c < t.ncol; c++)
                FUZZ_ASSERT(strcmp(rp_csv_at(&t, r, c), rp_csv_at(&u, r, c)) == 0, "the same cells");
        char *html = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&html, &len);
        if (!f) abort();
        rp_html_table(f, &t, "t");
        fclose(f);
        /* a '<' that opens a tag of the table, or closes one */
        size_t lt = 0, tags = 0;
        for (const char *p = html; *p; p++) {
            if (*p != '<') continue;
            lt++;
            tags += p[1] == 't' || p[1] == '/' || strncmp(p, "<div", 4) == 0;
        }
        FUZZ_ASSERT(lt == tags, "every '<' of the table is one of its tags");
        free(html);
        rp_csv_free(&u);
        free(again);
        rp_csv_free(&t);
    }
    free(text);
    return 0;
}
