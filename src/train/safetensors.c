/* Safetensors reader and writer (format and contract in safetensors.h).
 *
 * The writer builds the header text itself rather than through cJSON, so the
 * key order, number formatting and padding are exact and testable byte for
 * byte. The reader parses with cJSON but first scans the raw header, because
 * cJSON accepts things JSON does not (control bytes, invalid UTF-8, "\u0000"
 * truncating a name) and a checkpoint reader must not. */
#include "train/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "core/crc32c.h"
#include "core/file.h"
#include "core/utf8.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian and is written and read as host memory");

#define ALIGN 64
/* cJSON holds numbers as doubles, exact only up to 2^53; larger shapes or
 * offsets cannot be read back exactly, so neither side accepts them. */
#define MAX_EXACT 9007199254740992.0
#define MAX_EXACT_I 9007199254740992LL

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [SL_DT_F32] = {"F32", 4}, [SL_DT_I32] = {"I32", 4}, [SL_DT_I64] = {"I64", 8},
    [SL_DT_F64] = {"F64", 8}, [SL_DT_U8] = {"U8", 1},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

size_t sl_st_dtype_size(sl_dtype dt) { return (unsigned)dt < NDTYPES ? dtypes[dt].size : 0; }

const char *sl_st_dtype_name(sl_dtype dt) { return (unsigned)dt < NDTYPES ? dtypes[dt].name : "?"; }

/* "[2, 3]" */
static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* Elements of a shape whose dims are in [0, 2^53]; false if the count
 * overflows 64 bits. Any zero dim makes it 0 whatever the others are. */
static bool shape_numel(int ndim, const int64_t *shape, uint64_t *numel)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) {
            *numel = 0;
            return true;
        }
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > UINT64_MAX / d) return false;
        n *= d;
    }
    *numel = n;
    return true;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts s[0..n) and returns a string that occurs twice, or NULL. */
static const char *first_duplicate(const char **s, size_t n)
{
    qsort(s, n, sizeof *s, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(s[i - 1], s[i]) == 0) return s[i];
    return NULL;
}

/* ================================================================ writer */

/* A growing text buffer; an allocation failure sticks and is reported once. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal. Escapes as serde_json does: the short forms where
 * JSON has them, \u00XX for other control bytes, UTF-8 passed through. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20)
                sb_printf(b, "\\u%04x", *p);
            else
                sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static sl_status check_write_args(const char *path, const sl_st_tensor *t, size_t nt,
                                  const sl_st_meta *meta, size_t nmeta)
{
    if ((nt && !t) || (nmeta && !meta))
        return sl_fail(SL_ERR_ARG, "%s: NULL tensor or metadata array", path);
    for (size_t i = 0; i < nmeta; i++) {
        if (!meta[i].key || !meta[i].value)
            return sl_fail(SL_ERR_ARG, "%s: metadata entry %zu has a NULL key or value", path, i);
        if (!sl_utf8_valid(meta[i].key) || !sl_utf8_valid(meta[i].value))
            return sl_fail(SL_ERR_ARG, "%s: metadata entry %zu is not valid UTF-8", path, i);
    }
    for (size_t i = 0; i < nt; i++) {
        const sl_st_tensor *x = &t[i];
        if (!x->name) return sl_fail(SL_ERR_ARG, "%s: tensor %zu has a NULL name", path, i);
        if (!sl_utf8_valid(x->name))
            return sl_fail(SL_ERR_ARG, "%s: tensor %zu: name is not valid UTF-8", path, i);
        if (strcmp(x->name, "__metadata__") == 0)
            return sl_fail(SL_ERR_ARG, "%s: \"__metadata__\" is reserved, not a tensor name", path);
        if ((unsigned)x->dtype >= NDTYPES)
            return sl_fail(SL_ERR_ARG, "%s: tensor \"%s\": unknown dtype %d", path, x->name,
                           (int)x->dtype);
        if (x->ndim < 0 || x->ndim > SL_ST_MAX_DIMS)
            return sl_fail(SL_ERR_ARG, "%s: tensor \"%s\": ndim %d, expected 0 to %d", path,
                           x->name, x->ndim, SL_ST_MAX_DIMS);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] < 0 || x->shape[d] > MAX_EXACT_I)
                return sl_fail(SL_ERR_ARG,
                               "%s: tensor \"%s\": shape[%d] = %lld, expected 0 to 2^53", path,
                               x->name, d, (long long)x->shape[d]);
        char sh[256];
        fmt_shape(sh, sizeof sh, x->ndim, x->shape);
        uint64_t numel;
        if (!shape_numel(x->ndim, x->shape, &numel) || numel > SIZE_MAX / dtypes[x->dtype].size)
            return sl_fail(SL_ERR_ARG, "%s: tensor \"%s\": shape %s is too large", path, x->name,
                           sh);
        if (x->nbytes != numel * dtypes[x->dtype].size)
            return sl_fail(SL_ERR_ARG, "%s: tensor \"%s\": nbytes %zu, expected %llu for %s %s",
                           path, x->name, x->nbytes,
                           (unsigned long long)(numel * dtypes[x->dtype].size),
                           dtypes[x->dtype].name, sh);
        if (x->nbytes && !x->data)
            return sl_fail(SL_ERR_ARG, "%s: tensor \"%s\": NULL data", path, x->name);
    }
    return SL_OK;
}

/* Tensor names and metadata keys must each be unique. */
static sl_status check_write_unique(const char *path, const sl_st_tensor *t, size_t nt,
                                    const sl_st_meta *meta, size_t nmeta)
{
    const char **s = malloc((nt > nmeta ? nt : nmeta ? nmeta : 1) * sizeof *s);
    if (!s) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    const char *dup;
    sl_status st = SL_OK;
    for (size_t i = 0; i < nt; i++) s[i] = t[i].name;
    if ((dup = first_duplicate(s, nt)))
        st = sl_fail(SL_ERR_ARG, "%s: duplicate tensor name \"%s\"", path, dup);
    for (size_t i = 0; i < nmeta; i++) s[i] = meta[i].key;
    if (st == SL_OK && (dup = first_duplicate(s, nmeta)))
        st = sl_fail(SL_ERR_ARG, "%s: duplicate metadata key \"%s\"", path, dup);
    free(s);
    return st;
}

/* The padded header text; its length is a multiple of 8. */
static sl_status build_header(const char *path, const sl_st_tensor *t, size_t nt,
                              const sl_st_meta *meta, size_t nmeta, sbuf *b)
{
    sb_puts(b, "{");
    if (nmeta) {
        sb_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < nmeta; i++) {
            if (i) sb_puts(b, ",");
            sb_json_str(b, meta[i].key);
            sb_puts(b, ":");
            sb_json_str(b, meta[i].value);
        }
        sb_puts(b, "}");
    }
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        if (i || nmeta) sb_puts(b, ",");
        sb_json_str(b, t[i].name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[t[i].dtype].name);
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        if (t[i].nbytes > MAX_EXACT_I - off)
            return sl_fail(SL_ERR_ARG, "%s: the tensors hold more than 2^53 bytes", path);
        sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + t[i].nbytes));
        off += t[i].nbytes;
    }
    sb_puts(b, "}");
    while (!b->oom && b->len % 8) sb_puts(b, " ");
    if (b->oom) return sl_fail(SL_ERR_OOM, "%s: out of memory building the header", path);
    if (b->len > SL_ST_MAX_HEADER)
        return sl_fail(SL_ERR_ARG,
                       "%s: header would be %zu bytes, over the %u-byte limit readers accept", path,
                       b->len, SL_ST_MAX_HEADER);
    return SL_OK;
}

static sl_status write_all(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n > 0) {
        /* Linux writes at most ~2 GiB per call anyway; asking for less keeps
         * the count representable in ssize_t everywhere. */
        ssize_t w = write(fd, c, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return sl_fail(SL_ERR_IO, "%s: write failed: %s", path,
                           w < 0 ? strerror(errno) : "no progress");
        c += w;
        n -= (size_t)w;
    }
    return SL_OK;
}

/* Makes the rename itself durable. Best effort: some file systems refuse to
 * fsync a directory, and by now the new file is already in place. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* The exact bytes before a sealed file's digest value. */
#define DIGEST_TAG "\"" SL_ST_DIGEST_KEY "\":\""
#define DIGEST_LEN 8

/* Offset of the digest's value in the header: the one occurrence of
 * DIGEST_TAG (outside strings a quote cannot be escaped, and inside one
 * DIGEST_TAG's ":" cannot appear unescaped), or SIZE_MAX when there is not
 * exactly one followed by DIGEST_LEN bytes. */
static size_t digest_at(const unsigned char *h, size_t n)
{
    const size_t tag = sizeof DIGEST_TAG - 1;
    size_t at = SIZE_MAX;
    for (const unsigned char *p = h; (p = memmem(p, n - (size_t)(p - h), DIGEST_TAG, tag));
         p += tag) {
        if (at != SIZE_MAX) return SIZE_MAX;
        at = (size_t)(p - h) + tag;
    }
    return at != SIZE_MAX && n - at >= DIGEST_LEN ? at : SIZE_MAX;
}

/* CRC-32C of len8, the header with its digest value (at offset at) read as
 * zeros, and the data that follows. */
static uint32_t file_digest(const unsigned char len8[8], const unsigned char *h, size_t hlen,
                            size_t at, const sl_st_tensor *t, size_t nt, const void *data,
                            size_t dlen)
{
    uint32_t crc = sl_crc32c(0, len8, 8);
    crc = sl_crc32c(crc, h, at);
    crc = sl_crc32c(crc, "00000000", DIGEST_LEN);
    crc = sl_crc32c(crc, h + at + DIGEST_LEN, hlen - at - DIGEST_LEN);
    for (size_t i = 0; i < nt; i++) crc = sl_crc32c(crc, t[i].data, t[i].nbytes);
    return sl_crc32c(crc, data, dlen);
}

static sl_status write_file(const char *path, const sl_st_tensor *t, size_t nt,
                            const sl_st_meta *meta, size_t nmeta, bool seal)
{
    if (!path) return sl_fail(SL_ERR_ARG, "sl_st_write: NULL path");
    sl_status st = check_write_args(path, t, nt, meta, nmeta);
    if (st == SL_OK) st = check_write_unique(path, t, nt, meta, nmeta);
    if (st != SL_OK) return st;

    sbuf hdr = {0};
    st = build_header(path, t, nt, meta, nmeta, &hdr);
    if (st != SL_OK) {
        free(hdr.p);
        return st;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    if (seal) {
        size_t at = digest_at((const unsigned char *)hdr.p, hdr.len);
        if (at == SIZE_MAX) {
            free(hdr.p);
            return sl_fail(SL_ERR_ARG, "%s: the header does not hold its digest once", path);
        }
        uint32_t crc = file_digest(len8, (const unsigned char *)hdr.p, hdr.len, at, t, nt, NULL, 0);
        char hex[DIGEST_LEN + 1];
        snprintf(hex, sizeof hex, "%08x", crc);
        memcpy(hdr.p + at, hex, DIGEST_LEN);
    }

    /* The temporary name is path plus a suffix, so it is in path's directory
     * (rename is atomic only within one file system). O_EXCL with mode 0666
     * (not mkstemp's 0600) gives the final file the usual umask permissions. */
    static atomic_uint counter;
    size_t tlen = strlen(path) + 48;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(hdr.p);
        return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    }
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        st = sl_fail(SL_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                     strerror(errno));
        free(tmp);
        free(hdr.p);
        return st;
    }

    st = write_all(fd, len8, 8, path);
    if (st == SL_OK) st = write_all(fd, hdr.p, hdr.len, path);
    for (size_t i = 0; i < nt && st == SL_OK; i++) st = write_all(fd, t[i].data, t[i].nbytes, path);
    if (st == SL_OK && fsync(fd) != 0)
        st = sl_fail(SL_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    /* close can report a deferred write error (NFS, quota), so it counts. */
    if (close(fd) != 0 && st == SL_OK)
        st = sl_fail(SL_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == SL_OK && rename(tmp, path) != 0)
        st = sl_fail(SL_ERR_IO, "%s: cannot rename the temporary file onto it: %s", path,
                     strerror(errno));
    if (st == SL_OK)
        sync_parent_dir(path);
    else
        unlink(tmp);
    free(tmp);
    free(hdr.p);
    return st;
}

sl_status sl_st_write(const char *path, const sl_st_tensor *t, size_t nt, const sl_st_meta *meta,
                      size_t nmeta)
{
    return write_file(path, t, nt, meta, nmeta, false);
}

sl_status sl_st_write_sealed(const char *path, const sl_st_tensor *t, size_t nt,
                             const sl_st_meta *meta, size_t nmeta)
{
    if (nmeta && !meta) return sl_fail(SL_ERR_ARG, "%s: NULL metadata array", path ? path : "");
    sl_st_meta *all = malloc((nmeta + 1) * sizeof *all);
    if (!all) return sl_fail(SL_ERR_OOM, "%s: out of memory", path ? path : "");
    if (nmeta) memcpy(all, meta, nmeta * sizeof *all);
    all[nmeta] = (sl_st_meta){SL_ST_DIGEST_KEY, "00000000"};
    sl_status st = write_file(path, t, nt, all, nmeta + 1, true);
    free(all);
    return st;
}

/* ================================================================ reader */

/* One header entry while validating; name points into the cJSON tree. */
typedef struct entry {
    const char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_ST_MAX_DIMS];
    uint64_t begin, end;
    size_t order; /* header position: keeps empty tensors at one offset in file order */
} entry;

static int cmp_entry_offset(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int cmp_tensor_ptr_name(const void *a, const void *b)
{
    return strcmp((*(const sl_st_tensor *const *)a)->name, (*(const sl_st_tensor *const *)b)->name);
}

static bool json_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* What cJSON lets through but JSON and UTF-8 forbid: a byte order mark (or
 * any non-ASCII byte) outside strings, invalid UTF-8, control
 * bytes outside strings other than whitespace (cJSON skips them all as
 * whitespace), raw control bytes inside strings, and "\u0000", which would
 * silently cut a name or value short. */
static sl_status lex_check(const char *path, const unsigned char *h, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        unsigned c = h[i];
        if (c >= 0x80 && !in_str) {
            if (i == 0 && n >= 3 && memcmp(h, "\xEF\xBB\xBF", 3) == 0)
                return sl_fail(SL_ERR_FORMAT,
                               "%s: header starts with a UTF-8 byte order mark; JSON forbids it",
                               path);
            return sl_fail(SL_ERR_FORMAT,
                           "%s: header is not valid JSON: byte 0x%02x outside a string at header "
                           "offset %zu",
                           path, c, i);
        } else if (c >= 0x80) {
            size_t k = sl_utf8_seq(h + i, n - i);
            if (!k)
                return sl_fail(SL_ERR_FORMAT,
                               "%s: header is not valid UTF-8 (byte 0x%02x at header offset %zu)",
                               path, c, i);
            i += k - 1;
        } else if (in_str) {
            if (c < 0x20)
                return sl_fail(SL_ERR_FORMAT,
                               "%s: header is not valid JSON: raw control byte 0x%02x in a string "
                               "at header offset %zu",
                               path, c, i);
            if (c == '"') {
                in_str = false;
            } else if (c == '\\' && i + 1 < n && h[i + 1] >= 0x20 && h[i + 1] < 0x80) {
                if (h[i + 1] == 'u' && n - i >= 6 && memcmp(h + i + 2, "0000", 4) == 0)
                    return sl_fail(SL_ERR_FORMAT,
                                   "%s: header has \\u0000 in a string at header offset %zu", path,
                                   i);
                i++;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c < 0x20 && !json_ws((unsigned char)c)) {
            return sl_fail(SL_ERR_FORMAT,
                           "%s: header is not valid JSON: control byte 0x%02x at header offset %zu",
                           path, c, i);
        }
    }
    return SL_OK;
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_uint(const cJSON *x, uint64_t *out)
{
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (!(d >= 0 && d <= MAX_EXACT) || (double)(uint64_t)d != d) return false;
    *out = (uint64_t)d;
    return true;
}

static const char *json_kind(const cJSON *x)
{
    if (cJSON_IsString(x)) return "a string";
    if (cJSON_IsNumber(x)) return "a number";
    if (cJSON_IsArray(x)) return "an array";
    if (cJSON_IsObject(x)) return "an object";
    if (cJSON_IsBool(x)) return "a boolean";
    return "null";
}

/* Fills e from one tensor's header object and checks it on its own; dlen is
 * the data buffer's length. */
static sl_status parse_entry(const char *path, const cJSON *obj, uint64_t dlen, entry *e)
{
    const char *name = obj->string;
    e->name = name;
    if (!cJSON_IsObject(obj))
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": expected an object, found %s", path, name,
                       json_kind(obj));
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        /* Other keys are ignored, as the reference implementation does. */
        if (!slot) continue;
        if (*slot)
            return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": duplicate key \"%s\"", path, name,
                           c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offs)
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": missing \"%s\"", path, name,
                       !dtype   ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");

    if (!cJSON_IsString(dtype))
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": dtype must be a string, found %s", path,
                       name, json_kind(dtype));
    size_t k = 0;
    while (k < NDTYPES && strcmp(dtype->valuestring, dtypes[k].name) != 0) k++;
    if (k == NDTYPES)
        return sl_fail(
            SL_ERR_FORMAT,
            "%s: tensor \"%s\": unknown dtype \"%s\" (expected F32, I32, I64, F64 or U8)", path,
            name, dtype->valuestring);
    e->dtype = (sl_dtype)k;

    if (!cJSON_IsArray(shape))
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": shape must be an array, found %s", path,
                       name, json_kind(shape));
    e->ndim = 0;
    for (const cJSON *c = shape->child; c; c = c->next) {
        if (e->ndim == SL_ST_MAX_DIMS)
            return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": more than %d dims", path, name,
                           SL_ST_MAX_DIMS);
        uint64_t d;
        if (!json_uint(c, &d))
            return sl_fail(
                SL_ERR_FORMAT,
                "%s: tensor \"%s\": shape[%d] must be a non-negative integer (at most 2^53)", path,
                name, e->ndim);
        e->shape[e->ndim++] = (int64_t)d;
    }
    char sh[256];
    fmt_shape(sh, sizeof sh, e->ndim, e->shape);
    uint64_t numel;
    size_t esize = dtypes[e->dtype].size;
    if (!shape_numel(e->ndim, e->shape, &numel) || numel > UINT64_MAX / esize)
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\": shape %s overflows 64 bits", path, name,
                       sh);

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(offs->child, &e->begin) || !json_uint(offs->child->next, &e->end))
        return sl_fail(
            SL_ERR_FORMAT,
            "%s: tensor \"%s\": data_offsets must be [begin, end], two non-negative integers", path,
            name);
    if (e->begin > e->end)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] have begin > end", path, name,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != numel * esize)
        return sl_fail(
            SL_ERR_FORMAT,
            "%s: tensor \"%s\": data_offsets [%llu, %llu] span %llu bytes, but %s %s needs %llu",
            path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)(e->end - e->begin), dtypes[e->dtype].name, sh,
            (unsigned long long)(numel * esize));
    if (e->end > dlen)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the "
                       "%llu-byte data buffer (truncated file?)",
                       path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)dlen);
    return SL_OK;
}

/* Validates the parsed header against the data buffer (data, dlen) and fills
 * f's tensors, meta, strings, by_name and side. On failure the caller frees
 * whatever was filled. */
static sl_status build_file(const char *path, const cJSON *root, const unsigned char *data,
                            uint64_t dlen, sl_st_file *f)
{
    const cJSON *md = NULL;
    size_t nt = 0, strbytes = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        strbytes += strlen(c->string) + 1;
        if (strcmp(c->string, "__metadata__") != 0) {
            nt++;
            continue;
        }
        if (md) return sl_fail(SL_ERR_FORMAT, "%s: duplicate \"__metadata__\"", path);
        md = c;
        if (cJSON_IsNull(md)) continue;
        if (!cJSON_IsObject(md))
            return sl_fail(SL_ERR_FORMAT, "%s: __metadata__ must be an object of strings, found %s",
                           path, json_kind(md));
        for (const cJSON *m = md->child; m; m = m->next) {
            if (!cJSON_IsString(m))
                return sl_fail(SL_ERR_FORMAT,
                               "%s: __metadata__ must be an object of strings; \"%s\" is %s", path,
                               m->string, json_kind(m));
            strbytes += strlen(m->string) + strlen(m->valuestring) + 2;
            f->nmeta++;
        }
    }

    entry *e = calloc(nt ? nt : 1, sizeof *e);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->by_name = malloc((nt ? nt : 1) * sizeof *f->by_name);
    f->meta = calloc(f->nmeta ? f->nmeta : 1, sizeof *f->meta);
    f->strings = malloc(strbytes ? strbytes : 1);
    const sl_st_tensor **sorted = malloc((nt ? nt : 1) * sizeof *sorted);
    const char **keys = malloc((nt > f->nmeta ? nt : f->nmeta ? f->nmeta : 1) * sizeof *keys);
    const char *dup;
    sl_status st = SL_OK;
    if (!e || !f->tensors || !f->by_name || !f->meta || !f->strings || !sorted || !keys) {
        st = sl_fail(SL_ERR_OOM, "%s: out of memory", path);
        goto done;
    }

    char *s = f->strings;
    size_t i = 0;
    for (const cJSON *c = root->child; c && st == SL_OK; c = c->next) {
        if (c == md) continue;
        e[i].order = i;
        st = parse_entry(path, c, dlen, &e[i]);
        i++;
    }
    if (st != SL_OK) goto done;
    /* cJSON keeps every duplicate key as its own child. */
    for (i = 0; i < nt; i++) keys[i] = e[i].name;
    if ((dup = first_duplicate(keys, nt))) {
        st = sl_fail(SL_ERR_FORMAT, "%s: duplicate tensor name \"%s\"", path, dup);
        goto done;
    }

    /* Sorted by offset, the tensors must tile [0, dlen) exactly. */
    qsort(e, nt, sizeof *e, cmp_entry_offset);
    uint64_t at = 0;
    for (i = 0; i < nt; i++) {
        if (e[i].begin < at) {
            st = sl_fail(SL_ERR_FORMAT,
                         "%s: tensor \"%s\" at [%llu, %llu) overlaps \"%s\" at [%llu, %llu)", path,
                         e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                         e[i - 1].name, (unsigned long long)e[i - 1].begin,
                         (unsigned long long)e[i - 1].end);
            goto done;
        }
        if (e[i].begin > at) {
            st = sl_fail(SL_ERR_FORMAT,
                         "%s: hole in the data buffer: bytes [%llu, %llu) belong to no tensor "
                         "(\"%s\" starts at %llu)",
                         path, (unsigned long long)at, (unsigned long long)e[i].begin, e[i].name,
                         (unsigned long long)e[i].begin);
            goto done;
        }
        at = e[i].end;
    }
    if (at != dlen) {
        st = sl_fail(SL_ERR_FORMAT,
                     "%s: data buffer is %llu bytes but the tensors cover %llu (trailing bytes)",
                     path, (unsigned long long)dlen, (unsigned long long)at);
        goto done;
    }

    /* A tensor whose offset is not a multiple of its element size would be
     * misaligned in place (the data buffer itself is 64-byte aligned); such
     * tensors get copies, 8-byte aligned, in one side allocation. */
    size_t side_bytes = 0;
    for (i = 0; i < nt; i++)
        if (e[i].begin % dtypes[e[i].dtype].size)
            side_bytes += (size_t)(e[i].end - e[i].begin + 7) & ~(size_t)7;
    if (side_bytes && posix_memalign(&f->side, ALIGN, side_bytes) != 0) {
        f->side = NULL;
        st = sl_fail(SL_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    size_t side_at = 0;
    for (i = 0; i < nt; i++) {
        sl_st_tensor *t = &f->tensors[i];
        size_t n = strlen(e[i].name) + 1;
        memcpy(s, e[i].name, n);
        t->name = s;
        s += n;
        t->dtype = e[i].dtype;
        t->ndim = e[i].ndim;
        memcpy(t->shape, e[i].shape, sizeof t->shape);
        t->nbytes = (size_t)(e[i].end - e[i].begin);
        t->data = data + e[i].begin;
        if (e[i].begin % dtypes[e[i].dtype].size) {
            char *dst = (char *)f->side + side_at;
            memcpy(dst, t->data, t->nbytes);
            t->data = dst;
            side_at += (t->nbytes + 7) & ~(size_t)7;
        }
        sorted[i] = t;
    }
    f->ntensors = nt;

    qsort(sorted, nt, sizeof *sorted, cmp_tensor_ptr_name);
    for (i = 0; i < nt; i++) f->by_name[i] = (size_t)(sorted[i] - f->tensors);

    i = 0;
    for (const cJSON *m = md ? md->child : NULL; m; m = m->next, i++) {
        size_t nk = strlen(m->string) + 1, nv = strlen(m->valuestring) + 1;
        memcpy(s, m->string, nk);
        f->meta[i].key = s;
        s += nk;
        memcpy(s, m->valuestring, nv);
        f->meta[i].value = s;
        s += nv;
    }
    for (i = 0; i < f->nmeta; i++) keys[i] = f->meta[i].key;
    if ((dup = first_duplicate(keys, f->nmeta)))
        st = sl_fail(SL_ERR_FORMAT, "%s: duplicate __metadata__ key \"%s\"", path, dup);

done:
    free(e);
    free(sorted);
    free(keys);
    return st;
}

/* Reads exactly n bytes; fewer means the file changed under us. */
static sl_status read_exact(int fd, void *p, size_t n, const char *path)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sl_fail(SL_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (r == 0) return sl_fail(SL_ERR_IO, "%s: file shrank while being read", path);
        c += r;
        n -= (size_t)r;
    }
    return SL_OK;
}

/* Opens path and reads it into f->bytes, placed so that the data buffer
 * (after the 8-byte length and the header) starts 64-byte aligned whether or
 * not the writer padded the header. Sets *hlen and *size. */
static sl_status load(const char *path, sl_st_file *f, uint64_t *hlen, uint64_t *size)
{
    int fd;
    int64_t fsize = 0;
    sl_status st = sl_open_regular(path, "checkpoint", &fd, &fsize);
    if (st) return st;
    unsigned char len8[8];
    if (fsize == 0) {
        st = sl_fail(SL_ERR_FORMAT,
                     "%s: empty file; expected an 8-byte header length, a header and data", path);
    } else if (fsize < 8) {
        st =
            sl_fail(SL_ERR_FORMAT, "%s: file is %lld bytes, too short for the 8-byte header length",
                    path, (long long)fsize);
    } else if ((uint64_t)fsize > SIZE_MAX - 2 * ALIGN) {
        st = sl_fail(SL_ERR_IO, "%s: file is too large to read (%lld bytes)", path,
                     (long long)fsize);
    } else {
        st = read_exact(fd, len8, 8, path);
    }
    if (st != SL_OK) {
        close(fd);
        return st;
    }
    *size = (uint64_t)fsize;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)len8[i] << (8 * i);
    *hlen = n;
    if (n > SL_ST_MAX_HEADER) {
        st = sl_fail(SL_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte limit", path,
                     (unsigned long long)n, SL_ST_MAX_HEADER);
    } else if (n > *size - 8) {
        st = sl_fail(SL_ERR_FORMAT, "%s: header length %llu exceeds the file size %llu", path,
                     (unsigned long long)n, (unsigned long long)*size);
    } else {
        size_t pad = (size_t)((ALIGN - (8 + n) % ALIGN) % ALIGN);
        if (posix_memalign(&f->bytes, ALIGN, pad + (size_t)*size) != 0) {
            f->bytes = NULL;
            st = sl_fail(SL_ERR_OOM, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)*size);
        } else {
            /* Keep the file's bytes contiguous from f->bytes + pad. */
            memcpy((char *)f->bytes + pad, len8, 8);
            st = read_exact(fd, (char *)f->bytes + pad + 8, (size_t)*size - 8, path);
        }
    }
    close(fd);
    return st;
}

/* True when a and b have the same length and differ in exactly one byte. */
static bool one_byte_apart(const char *a, const char *b)
{
    if (strlen(a) != strlen(b)) return false;
    int diff = 0;
    for (; *a; a++, b++) diff += *a != *b;
    return diff == 1;
}

/* Checks a sealed file's digest (header: hlen bytes after the 8-byte length,
 * then dlen bytes of data) and sets f->sealed. */
static sl_status verify_digest(const char *path, const unsigned char *header, size_t hlen,
                               uint64_t dlen, sl_st_file *f)
{
    const char *want = sl_st_meta_find(f, SL_ST_DIGEST_KEY);
    if (!want) {
        for (size_t i = 0; i < f->nmeta; i++)
            if (one_byte_apart(f->meta[i].key, SL_ST_DIGEST_KEY))
                return sl_fail(SL_ERR_FORMAT,
                               "%s: metadata key \"%s\" is one byte away from \"%s\": the file "
                               "is damaged",
                               path, f->meta[i].key, SL_ST_DIGEST_KEY);
        return SL_OK;
    }
    bool hex = strlen(want) == DIGEST_LEN;
    for (const char *c = want; hex && *c; c++)
        hex = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
    size_t at = digest_at(header, hlen);
    if (!hex || at == SIZE_MAX || memcmp(header + at, want, DIGEST_LEN) != 0)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: metadata '%s': expected 8 lowercase hex digits, written once as "
                       "\"%s\":\"<8 hex digits>\" (the file is damaged)",
                       path, SL_ST_DIGEST_KEY, SL_ST_DIGEST_KEY);
    uint32_t got = file_digest(header - 8, header, hlen, at, NULL, 0, header + hlen, (size_t)dlen);
    char hexgot[DIGEST_LEN + 1];
    snprintf(hexgot, sizeof hexgot, "%08x", got);
    if (memcmp(hexgot, want, DIGEST_LEN) != 0)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: checksum mismatch: metadata '%s' is %s but the file's CRC-32C is %s "
                       "(the file is damaged)",
                       path, SL_ST_DIGEST_KEY, want, hexgot);
    f->sealed = true;
    return SL_OK;
}

sl_status sl_st_read(const char *path, sl_st_file *f)
{
    if (!f) return sl_fail(SL_ERR_ARG, "sl_st_read: NULL file");
    memset(f, 0, sizeof *f);
    if (!path) return sl_fail(SL_ERR_ARG, "sl_st_read: NULL path");
    uint64_t hlen = 0, size = 0;
    sl_status st = load(path, f, &hlen, &size);
    if (st != SL_OK) {
        sl_st_close(f);
        return st;
    }
    const unsigned char *header =
        (const unsigned char *)f->bytes + (ALIGN - (8 + hlen) % ALIGN) % ALIGN + 8;
    const unsigned char *data = header + hlen;
    uint64_t dlen = size - 8 - hlen;

    st = lex_check(path, header, (size_t)hlen);
    cJSON *root = NULL;
    if (st == SL_OK) {
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts((const char *)header, (size_t)hlen, &end, 0);
        if (!root) {
            size_t at = end ? (size_t)(end - (const char *)header) : 0;
            st = sl_fail(SL_ERR_FORMAT,
                         "%s: header is not valid JSON (error near header offset %zu)", path, at);
        } else {
            for (size_t i = (size_t)(end - (const char *)header); i < hlen && st == SL_OK; i++)
                if (!json_ws(header[i]))
                    st = sl_fail(SL_ERR_FORMAT,
                                 "%s: header is not valid JSON: unexpected bytes after the object "
                                 "at header offset %zu",
                                 path, i);
            if (st == SL_OK && !cJSON_IsObject(root))
                st = sl_fail(SL_ERR_FORMAT, "%s: header is not a JSON object but %s", path,
                             json_kind(root));
        }
    }
    if (st == SL_OK) st = build_file(path, root, data, dlen, f);
    if (st == SL_OK) st = verify_digest(path, header, (size_t)hlen, dlen, f);
    if (st == SL_OK && !(f->path = strdup(path)))
        st = sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    cJSON_Delete(root);
    if (st != SL_OK) sl_st_close(f);
    return st;
}

const sl_st_tensor *sl_st_find(const sl_st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sl_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *sl_st_meta_find(const sl_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

sl_status sl_st_expect(const sl_st_file *f, const char *name, sl_dtype dt, int ndim,
                       const int64_t *shape, const void **data)
{
    if (data) *data = NULL;
    if (!f || !name || !data || ndim < 0 || ndim > SL_ST_MAX_DIMS || (ndim && !shape) ||
        (unsigned)dt >= NDTYPES)
        return sl_fail(SL_ERR_ARG, "sl_st_expect: bad arguments");
    const char *path = f->path ? f->path : "(unread file)";
    const sl_st_tensor *t = sl_st_find(f, name);
    if (!t) return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\" is missing", path, name);
    if (t->dtype != dt)
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\" is %s, expected %s", path, name,
                       dtypes[t->dtype].name, dtypes[dt].name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[256], got[256];
        fmt_shape(want, sizeof want, ndim, shape);
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        return sl_fail(SL_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, expected %s", path, name,
                       got, want);
    }
    *data = t->data;
    return SL_OK;
}

void sl_st_close(sl_st_file *f)
{
    if (!f) return;
    free(f->tensors);
    free(f->meta);
    free(f->path);
    free(f->bytes);
    free(f->side);
    free(f->strings);
    free(f->by_name);
    memset(f, 0, sizeof *f);
}
