/* Safetensors I/O: round trips, the exact bytes of a small file, every
 * corruption the reader must reject (with the file and the reason in the
 * message), atomic writes, and a fuzz loop of truncated and bit-flipped
 * files that must never crash (run it under ASan). Scratch files live in a
 * mkdtemp directory under /tmp that is removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/core.h"
#include "train/safetensors.h"

static char scratch[64];

/* Declares char var[] holding scratch/name. */
#define SCRATCH(var, name)                                                                         \
    char var[256];                                                                                 \
    snprintf(var, sizeof var, "%s/%s", scratch, (name))

static void put_file(const char *path, const void *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "create %s", path);
    if (!fp) return;
    CHECK(fwrite(bytes, 1, n, fp) == n, "write %s", path);
    fclose(fp);
}

/* Entries in a directory other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            chmod(p, 0700);
            remove_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* A file of: u64 hl, the hl bytes of hdr, then dlen bytes of data. */
static void put_st(const char *path, const char *hdr, size_t hl, const void *data, size_t dlen)
{
    unsigned char *b = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    put_file(path, b, 8 + hl + dlen);
    free(b);
}

/* A tensor of dtype dt and shape[0..ndim) over data; nbytes follows. */
static sl_st_tensor tensor(const char *name, sl_dtype dt, const void *data, int ndim,
                           const int64_t *shape)
{
    sl_st_tensor t = {.name = name, .dtype = dt, .ndim = ndim, .data = data};
    size_t n = sl_st_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    t.nbytes = n;
    return t;
}
#define TENSOR(name, dt, data, ...)                                                                \
    tensor((name), (dt), (data), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),        \
           (int64_t[]){__VA_ARGS__})

static bool aligned_for(const sl_st_tensor *t)
{
    return ((uintptr_t)t->data % sl_st_dtype_size(t->dtype)) == 0;
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void)
{
    float a[6] = {1.5f, -2, 3.25f, 0, -0.0f, 1e30f};
    int32_t b[4] = {-1, 0, 7, 2147483647};
    double sc = 3.141592653589793;
    uint8_t u[3] = {0, 128, 255};
    int64_t l[2] = {-9000000000LL, 42};
    sl_st_tensor ts[] = {
        TENSOR("blocks.0.mlp.w1", SL_DT_F32, a, 2, 3),
        TENSOR("ids", SL_DT_I32, b, 4),
        TENSOR("empty", SL_DT_F32, NULL, 0, 5),
        tensor("scalar", SL_DT_F64, &sc, 0, NULL),
        TENSOR("bytes", SL_DT_U8, u, 3),
        TENSOR("late.i64", SL_DT_I64, l, 2),
    };
    size_t nt = sizeof ts / sizeof ts[0];
    sl_st_meta meta[] = {
        {"config", "{\"d_model\": 64, \"path\": \"C:\\\\x\"}"},
        {"unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"},
        {"ctrl", "tab\there\nnl\x01"
                 "end"},
        {"empty", ""},
    };
    SCRATCH(path, "rt.safetensors");
    CHECK(sl_st_write(path, ts, nt, meta, 4) == SL_OK, "write: %s", sl_errmsg());

    size_t n;
    unsigned char *raw = (unsigned char *)slurp(path, &n);
    CHECK(raw && n >= 8, "file exists");
    if (raw && n >= 8) {
        uint64_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << (8 * i);
        CHECK(hl % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)hl);
        CHECK(8 + hl + sizeof a + sizeof b + sizeof sc + sizeof u + sizeof l == n, "file size %zu",
              n);
        char *hdr = strndup((const char *)raw + 8, (size_t)hl);
        CHECK(strstr(hdr, "\"{\\\"d_model\\\": 64, \\\"path\\\": \\\"C:\\\\\\\\x\\\"}\"") != NULL,
              "quotes and backslashes escaped: %s", hdr);
        CHECK(strstr(hdr, "\"tab\\there\\nnl\\u0001end\"") != NULL, "control bytes escaped");
        CHECK(strstr(hdr, "h\xc3\xa9llo \xe2\x9c\x93") != NULL, "UTF-8 passed through");
        CHECK(strncmp(hdr, "{\"__metadata__\":{", 17) == 0, "metadata first");
        free(hdr);
    }
    free(raw);

    sl_st_file f;
    CHECK(sl_st_read(path, &f) == SL_OK, "read: %s", sl_errmsg());
    CHECK(f.ntensors == nt && f.nmeta == 4, "counts %zu %zu", f.ntensors, f.nmeta);
    for (size_t i = 0; i < nt && i < f.ntensors; i++) {
        const sl_st_tensor *t = &f.tensors[i];
        CHECK(strcmp(t->name, ts[i].name) == 0, "order kept: %s", t->name);
        CHECK(t->dtype == ts[i].dtype && t->ndim == ts[i].ndim && t->nbytes == ts[i].nbytes,
              "%s meta", t->name);
        CHECK(memcmp(t->shape, ts[i].shape, sizeof(int64_t) * (size_t)ts[i].ndim) == 0, "%s shape",
              t->name);
        CHECK(t->nbytes == 0 || memcmp(t->data, ts[i].data, t->nbytes) == 0, "%s data", t->name);
        CHECK(aligned_for(t), "%s aligned", t->name);
        CHECK(sl_st_find(&f, ts[i].name) == t, "find %s", ts[i].name);
    }
    CHECK(((uintptr_t)f.tensors[0].data & 63) == 0, "data buffer 64-byte aligned");
    CHECK(sl_st_find(&f, "nope") == NULL && sl_st_find(&f, "") == NULL, "absent names");
    for (int i = 0; i < 4; i++) {
        const char *v = sl_st_meta_find(&f, meta[i].key);
        CHECK(v && strcmp(v, meta[i].value) == 0, "meta %s = %s", meta[i].key, v ? v : "(null)");
    }
    CHECK(sl_st_meta_find(&f, "absent") == NULL, "absent key");
    sl_st_close(&f);
    sl_st_close(&f);

    SCRATCH(empty, "none.safetensors");
    CHECK(sl_st_write(empty, NULL, 0, NULL, 0) == SL_OK, "write nothing: %s", sl_errmsg());
    raw = (unsigned char *)slurp(empty, &n);
    CHECK(n == 16 && raw && memcmp(raw + 8, "{}      ", 8) == 0, "empty header padded");
    free(raw);
    CHECK(sl_st_read(empty, &f) == SL_OK && f.ntensors == 0 && f.nmeta == 0, "read nothing: %s",
          sl_errmsg());
    sl_st_close(&f);
    CHECK(count_entries(scratch) == 2, "no stray files: %d", count_entries(scratch));
    unlink(path);
    unlink(empty);
}

/* --------------------------------------------------------- exact layout */

static void test_exact_bytes(void)
{
    float a[2] = {1.0f, -2.0f};
    uint8_t b = 7;
    sl_st_tensor ts[] = {TENSOR("a", SL_DT_F32, a, 2), tensor("b", SL_DT_U8, &b, 0, NULL)};
    sl_st_meta meta[] = {{"k", "v"}};
    SCRATCH(path, "exact.safetensors");
    CHECK(sl_st_write(path, ts, 2, meta, 1) == SL_OK, "write: %s", sl_errmsg());

    static const char hdr[] = "{\"__metadata__\":{\"k\":\"v\"},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}"
                              "      "; /* 130 bytes of JSON padded to 136 */
    unsigned char want[8 + 136 + 9] = {136, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want + 8, hdr, 136);
    static const unsigned char data[9] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x07};
    memcpy(want + 8 + 136, data, 9);

    size_t n;
    unsigned char *got = (unsigned char *)slurp(path, &n);
    CHECK(sizeof hdr - 1 == 136, "expected header is 136 bytes");
    CHECK(n == sizeof want, "size %zu, expected %zu", n, sizeof want);
    CHECK(got && n == sizeof want && memcmp(got, want, n) == 0, "bytes match");
    free(got);
    unlink(path);
}

/* A header without padding leaves the data buffer at an odd offset, and an
 * F32 after a 3-byte U8 sits at an odd offset within it: both must still read
 * back aligned. */
static void test_unpadded_and_misaligned(void)
{
    const char *hdr = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[3,7]},"
                      "\"z\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[7,7]},"
                      "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[7,15]},"
                      "\"__metadata__\":null}";
    unsigned char data[15] = {1, 2, 3};
    float fv = 2.5f;
    int64_t lv = -5;
    memcpy(data + 3, &fv, 4);
    memcpy(data + 7, &lv, 8);
    CHECK((8 + strlen(hdr)) % 8 != 0, "header deliberately unpadded");
    SCRATCH(path, "odd.safetensors");
    put_st(path, hdr, strlen(hdr), data, sizeof data);
    sl_st_file f;
    CHECK(sl_st_read(path, &f) == SL_OK, "read: %s", sl_errmsg());
    const sl_st_tensor *u = sl_st_find(&f, "u"), *ft = sl_st_find(&f, "f"),
                       *lt = sl_st_find(&f, "l"), *z = sl_st_find(&f, "z");
    CHECK(u && ft && lt && z && f.nmeta == 0, "all there");
    if (u && ft && lt && z) {
        CHECK(aligned_for(ft) && aligned_for(lt) && aligned_for(z), "aligned");
        CHECK(memcmp(u->data, data, 3) == 0, "u");
        CHECK(*(const float *)ft->data == 2.5f, "f");
        CHECK(*(const int64_t *)lt->data == -5, "l");
        CHECK(f.tensors[2].name == z->name && f.tensors[3].name == lt->name,
              "data order, ties in header order");
    }
    sl_st_close(&f);
    unlink(path);
}

/* -------------------------------------------------------------- corrupt */

/* Reads path; wants status `want`, a message naming the file and holding
 * `phrase`, and an empty f. */
static void expect_fail_at(const char *path, sl_status want, const char *phrase, int line)
{
    sl_st_file f;
    memset(&f, 0xab, sizeof f);
    sl_status st = sl_st_read(path, &f);
    const char *msg = sl_errmsg();
    CHECK(st == want, "line %d: status %d, expected %d (%s)", line, st, want, msg);
    CHECK(strstr(msg, path) != NULL, "line %d: message names the file: %s", line, msg);
    CHECK(strstr(msg, phrase) != NULL, "line %d: message has \"%s\": %s", line, phrase, msg);
    CHECK(f.tensors == NULL && f.bytes == NULL && f.ntensors == 0, "line %d: f left empty", line);
    sl_st_close(&f);
}

static void expect_bad_at(const char *hdr, size_t hl, const void *data, size_t dlen,
                          const char *phrase, int line)
{
    SCRATCH(path, "bad.safetensors");
    put_st(path, hdr, hl, data, dlen);
    expect_fail_at(path, SL_ERR_FORMAT, phrase, line);
    unlink(path);
}
/* hdr is a string literal; sizeof keeps any NUL bytes inside it. */
#define EXPECT_BAD(hdr, dlen, phrase)                                                              \
    expect_bad_at((hdr), sizeof(hdr) - 1, zeros, (dlen), (phrase), __LINE__)

static const unsigned char zeros[64];

static void test_corrupt_files(void)
{
    SCRATCH(path, "c.safetensors");
    SCRATCH(missing, "missing.safetensors");
    expect_fail_at(missing, SL_ERR_IO, "cannot open", __LINE__);
    expect_fail_at(scratch, SL_ERR_IO, "not a regular file", __LINE__);

    put_file(path, "", 0);
    expect_fail_at(path, SL_ERR_FORMAT, "empty file", __LINE__);
    put_file(path, "\x02\0\0\0\0", 5);
    expect_fail_at(path, SL_ERR_FORMAT, "too short for the 8-byte header length", __LINE__);
    /* 200000000 = 0x0BEBC200 */
    put_file(path, "\x00\xc2\xeb\x0b\0\0\0\0{}", 10);
    expect_fail_at(path, SL_ERR_FORMAT, "header length 200000000 exceeds the 100000000-byte limit",
                   __LINE__);
    /* 9999999 = 0x98967F */
    put_file(path, "\x7f\x96\x98\0\0\0\0\0{}      ", 16);
    expect_fail_at(path, SL_ERR_FORMAT, "header length 9999999 exceeds the file size 16", __LINE__);
    put_file(path, "\xff\xff\xff\xff\xff\xff\xff\xff{}      ", 16);
    expect_fail_at(path, SL_ERR_FORMAT, "exceeds the 100000000-byte limit", __LINE__);
    unlink(path);

    EXPECT_BAD("", 0, "not valid JSON");
    EXPECT_BAD("{\"a\":", 0, "not valid JSON");
    EXPECT_BAD("{} x", 0, "not valid JSON");
    EXPECT_BAD("{}\0", 0, "not valid JSON");
    EXPECT_BAD("[1, 2]", 0, "not a JSON object");
    EXPECT_BAD("\"str\"", 0, "not a JSON object");
    EXPECT_BAD("{\"\xff\":1}", 0, "not valid UTF-8");
    EXPECT_BAD("{\"\xc0\xaf\":1}", 0, "not valid UTF-8");
    EXPECT_BAD("{\"\xed\xa0\x80\":1}", 0, "not valid UTF-8");
    EXPECT_BAD("{\"\xe2\x9c\":1}", 0, "not valid UTF-8");
    EXPECT_BAD("{\"a\x01\":1}", 0, "not valid JSON");
    EXPECT_BAD("{\x01}", 0, "not valid JSON");
    EXPECT_BAD("{\"a\\u0000b\":{}}", 0, "\\u0000");
    EXPECT_BAD("{\"a\\ud800\":{}}", 0, "not valid JSON");

    EXPECT_BAD("{\"a\":5}", 0, "tensor \"a\": expected an object, found a number");
    EXPECT_BAD("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "tensor \"a\": missing \"dtype\"");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\"");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\"");
    EXPECT_BAD("{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "dtype must be a string");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
               "shape must be an array");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
               "data_offsets must be");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
               "data_offsets must be");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4,
               "data_offsets must be");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4,
               "data_offsets must be");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4,
               "data_offsets must be");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "duplicate key \"dtype\"");
    EXPECT_BAD("{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
               "unknown dtype \"BF16\"");
    EXPECT_BAD("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "shape[0] must be a non-negative integer");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,4]}}", 4,
               "shape[1] must be a non-negative integer");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
               "shape[0] must be a non-negative integer");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
               "shape[0] must be a non-negative integer");
    EXPECT_BAD(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,4]}}", 4,
        "overflows 64 bits");
    EXPECT_BAD(
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,2147483648],\"data_offsets\":[0,4]}}", 4,
        "overflows 64 bits");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
               "more than 8 dims");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
               "begin > end");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
               "span 4 bytes, but F32 [2] needs 8");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "past the end");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
               "trailing bytes");
    EXPECT_BAD("{}", 1, "trailing bytes");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "hole in the data buffer: bytes [4, 8)");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "overlaps");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "duplicate tensor name \"a\"");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "duplicate tensor name \"a\"");
    EXPECT_BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate \"__metadata__\"");
    EXPECT_BAD("{\"__metadata__\":5}", 0, "__metadata__ must be an object of strings");
    EXPECT_BAD("{\"__metadata__\":{\"k\":1}}", 0,
               "__metadata__ must be an object of strings; \"k\" is a number");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0,
               "duplicate __metadata__ key \"k\"");
}

static void test_lenient_but_valid(void)
{
    /* Whitespace around the header, unknown entry keys and a null
     * __metadata__ are all fine, as in the reference implementation. */
    SCRATCH(path, "lenient.safetensors");
    static const char hdr[] =
        " \n{\"__metadata__\":null, \"a\" : {\"extra\":[1,{}],\"dtype\":\"I32\","
        "\"shape\":[],\"data_offsets\":[0,4]}}\t ";
    put_st(path, hdr, sizeof hdr - 1, "\x05\0\0\0", 4);
    sl_st_file f;
    CHECK(sl_st_read(path, &f) == SL_OK, "read: %s", sl_errmsg());
    const void *v = NULL;
    CHECK(sl_st_expect(&f, "a", SL_DT_I32, 0, NULL, &v) == SL_OK && v && *(const int32_t *)v == 5,
          "scalar");
    sl_st_close(&f);
    unlink(path);
}

/* --------------------------------------------------------------- writes */

static void test_write_arguments(void)
{
    float x[2] = {0};
    SCRATCH(path, "args.safetensors");
    sl_st_tensor two[2] = {TENSOR("a", SL_DT_F32, x, 2), TENSOR("a", SL_DT_F32, x, 2)};
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "duplicate"),
          "dup");
    two[1].name = "__metadata__";
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "reserved"),
          "reserved");
    two[1].name = "b\xff";
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "UTF-8"), "utf8");
    two[1].name = "b";
    two[1].nbytes = 4;
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG &&
              strstr(sl_errmsg(), "nbytes 4, expected 8"),
          "nbytes: %s", sl_errmsg());
    two[1].nbytes = 8;
    two[1].ndim = 9;
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "ndim 9"),
          "ndim");
    two[1].ndim = 1;
    two[1].data = NULL;
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "NULL data"),
          "data");
    two[1].data = x;
    two[1].dtype = (sl_dtype)17;
    CHECK(sl_st_write(path, two, 2, NULL, 0) == SL_ERR_ARG && strstr(sl_errmsg(), "unknown dtype"),
          "dtype");
    two[1].dtype = SL_DT_F32;
    sl_st_meta m[2] = {{"k", "v"}, {"k", "w"}};
    CHECK(sl_st_write(path, two, 2, m, 2) == SL_ERR_ARG &&
              strstr(sl_errmsg(), "duplicate metadata key"),
          "mdup");
    m[1].value = NULL;
    CHECK(sl_st_write(path, two, 2, m, 2) == SL_ERR_ARG, "NULL value");
    CHECK(count_entries(scratch) == 0, "nothing written");
}

static void test_write_failures_leave_nothing(void)
{
    float x = 1;
    sl_st_tensor t = TENSOR("x", SL_DT_F32, &x, 1);
    SCRATCH(path, "nodir/x.safetensors");
    CHECK(sl_st_write(path, &t, 1, NULL, 0) == SL_ERR_IO, "missing directory");
    CHECK(strstr(sl_errmsg(), path) != NULL, "names the path: %s", sl_errmsg());
    CHECK(count_entries(scratch) == 0, "no temp file");

    /* The temporary file is created, then the rename onto a directory fails. */
    SCRATCH(dirpath, "isdir");
    CHECK(mkdir(dirpath, 0700) == 0, "mkdir");
    CHECK(sl_st_write(dirpath, &t, 1, NULL, 0) == SL_ERR_IO, "rename onto a directory");
    CHECK(strstr(sl_errmsg(), "rename") != NULL, "%s", sl_errmsg());
    CHECK(count_entries(scratch) == 1 && count_entries(dirpath) == 0, "temp file removed");
    rmdir(dirpath);
}

/* path reads back as one tensor w = v[0..4) with metadata step. */
static bool holds(const char *path, const char *step, const float *v)
{
    sl_st_file f;
    if (sl_st_read(path, &f) != SL_OK) return false;
    const char *s = sl_st_meta_find(&f, "step");
    const sl_st_tensor *w = sl_st_find(&f, "w");
    bool ok = f.ntensors == 1 && s && strcmp(s, step) == 0 && w && w->nbytes == 16 &&
              memcmp(w->data, v, 16) == 0;
    sl_st_close(&f);
    return ok;
}

static void test_overwrite_is_atomic(void)
{
    SCRATCH(path, "ow.safetensors");
    float v1[4] = {1, 1, 1, 1}, v2[4] = {2, 2, 2, 2};
    sl_st_tensor t = TENSOR("w", SL_DT_F32, v1, 4);
    sl_st_meta m = {"step", "1"};
    CHECK(sl_st_write(path, &t, 1, &m, 1) == SL_OK, "v1: %s", sl_errmsg());
    t.data = v2;
    m.value = "2";
    CHECK(sl_st_write(path, &t, 1, &m, 1) == SL_OK, "v2: %s", sl_errmsg());
    CHECK(holds(path, "2", v2), "replaced");
    CHECK(count_entries(scratch) == 1, "only the file");

    /* A write that fails midway (file size limit, which binds root too)
     * leaves the old file whole and no temporary behind. */
    size_t big_n = 1 << 20;
    float *big = calloc(big_n, sizeof *big);
    sl_st_tensor bt = TENSOR("w", SL_DT_F32, big, (int64_t)big_n);
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit lim = {.rlim_cur = 65536, .rlim_max = old.rlim_max};
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    sl_status st = sl_st_write(path, &bt, 1, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK(st == SL_ERR_IO && strstr(sl_errmsg(), "write failed"), "too big: %d %s", st,
          sl_errmsg());
    free(big);
    CHECK(count_entries(scratch) == 1, "temp removed after failed write");
    CHECK(holds(path, "2", v2), "old file intact");

    /* A read-only directory: root ignores the mode, so only non-root checks. */
    if (geteuid() != 0) {
        CHECK(chmod(scratch, 0500) == 0, "chmod");
        t.data = v1;
        st = sl_st_write(path, &t, 1, NULL, 0);
        chmod(scratch, 0700);
        CHECK(st == SL_ERR_IO, "read-only directory: %d", st);
        CHECK(holds(path, "2", v2), "old file intact");
    } else {
        fprintf(stderr, "  (running as root: read-only directory case skipped)\n");
    }
    unlink(path);
}

/* --------------------------------------------------------------- expect */

static void test_expect(void)
{
    float w[6] = {0};
    sl_st_tensor t = TENSOR("head.weight", SL_DT_F32, w, 2, 3);
    SCRATCH(path, "ex.safetensors");
    CHECK(sl_st_write(path, &t, 1, NULL, 0) == SL_OK, "write");
    sl_st_file f;
    CHECK(sl_st_read(path, &f) == SL_OK, "read");
    const void *d = (const void *)1;
    CHECK(sl_st_expect(&f, "head.weight", SL_DT_F32, 2, (int64_t[]){2, 3}, &d) == SL_OK &&
              d == f.tensors[0].data,
          "match");
    CHECK(sl_st_expect(&f, "head.weight", SL_DT_I32, 2, (int64_t[]){2, 3}, &d) == SL_ERR_FORMAT &&
              d == NULL,
          "dtype");
    CHECK(strstr(sl_errmsg(), path) && strstr(sl_errmsg(), "\"head.weight\" is F32, expected I32"),
          "%s", sl_errmsg());
    CHECK(sl_st_expect(&f, "head.weight", SL_DT_F32, 2, (int64_t[]){3, 2}, &d) == SL_ERR_FORMAT,
          "shape");
    CHECK(strstr(sl_errmsg(), path) && strstr(sl_errmsg(), "has shape [2, 3], expected [3, 2]"),
          "%s", sl_errmsg());
    CHECK(sl_st_expect(&f, "head.weight", SL_DT_F32, 1, (int64_t[]){6}, &d) == SL_ERR_FORMAT &&
              strstr(sl_errmsg(), "expected [6]"),
          "rank: %s", sl_errmsg());
    CHECK(sl_st_expect(&f, "norm.weight", SL_DT_F32, 1, (int64_t[]){3}, &d) == SL_ERR_FORMAT,
          "missing");
    CHECK(strstr(sl_errmsg(), path) && strstr(sl_errmsg(), "\"norm.weight\" is missing"), "%s",
          sl_errmsg());
    CHECK(sl_st_expect(&f, "head.weight", SL_DT_F32, 2, NULL, &d) == SL_ERR_ARG, "NULL shape");
    sl_st_close(&f);
    unlink(path);
}

/* ----------------------------------------------------------------- fuzz */

/* Every read either succeeds with a self-consistent file or fails cleanly
 * with SL_ERR_FORMAT; ASan and UBSan catch the rest. */
static void fuzz_one(const char *path, const unsigned char *bytes, size_t n, int *oks)
{
    put_file(path, bytes, n);
    sl_st_file f;
    sl_status st = sl_st_read(path, &f);
    CHECK(st == SL_OK || st == SL_ERR_FORMAT, "status %d: %s", st, sl_errmsg());
    if (st != SL_OK) {
        CHECK(strstr(sl_errmsg(), path) != NULL, "names the file: %s", sl_errmsg());
        CHECK(f.tensors == NULL && f.bytes == NULL, "left empty");
        return;
    }
    (*oks)++;
    size_t total = 0;
    for (size_t i = 0; i < f.ntensors; i++) {
        const sl_st_tensor *t = &f.tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        CHECK(t->nbytes == numel * sl_st_dtype_size(t->dtype) && aligned_for(t), "consistent %s",
              t->name);
        CHECK(sl_st_find(&f, t->name) == t, "findable");
        volatile unsigned char sink = 0;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const unsigned char *)t->data)[k];
        (void)sink;
        total += t->nbytes;
    }
    CHECK(8 + total <= n, "data within the file");
    for (size_t i = 0; i < f.nmeta; i++) CHECK(sl_st_meta_find(&f, f.meta[i].key) != NULL, "meta");
    sl_st_close(&f);
}

static void test_fuzz_truncate_and_flip(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    int32_t b[3] = {7, 8, 9};
    uint8_t u[5] = {1, 2, 3, 4, 5};
    double s = 0.5;
    sl_st_tensor ts[] = {
        TENSOR("a", SL_DT_F32, a, 2, 3),      TENSOR("u", SL_DT_U8, u, 5),
        TENSOR("b\xc3\xa9", SL_DT_I32, b, 3), TENSOR("e", SL_DT_I64, NULL, 2, 0, 4),
        tensor("s", SL_DT_F64, &s, 0, NULL),
    };
    sl_st_meta meta[] = {{"cfg", "{\"x\": [1, 2]}"}, {"q\"\\", "\xe2\x9c\x93"}};
    SCRATCH(src, "fuzz_src.safetensors");
    SCRATCH(path, "fuzz.safetensors");
    CHECK(sl_st_write(src, ts, 5, meta, 2) == SL_OK, "write: %s", sl_errmsg());
    size_t n;
    unsigned char *good = (unsigned char *)slurp(src, &n);
    CHECK(good && n > 8, "source file");
    if (!good || n <= 8) {
        free(good);
        return;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)good[i] << (8 * i);

    int oks = 0;
    for (size_t len = 0; len <= n; len++) fuzz_one(path, good, len, &oks);
    CHECK(oks == 1, "only the full file reads: %d", oks);

    unsigned char *mut = malloc(n);
    sl_rng r;
    sl_rng_seed(&r, 12345);
    static const unsigned char interesting[] = {'"', '{', '}', '[', ']',  ',',  ':', '\\', '0',
                                                '9', '-', ' ', 0,   0x80, 0xff, 'e', '.'};
    int failures_before = check_failures;
    for (int it = 0; it < 600 && check_failures == failures_before; it++) {
        memcpy(mut, good, n);
        int flips = 1 + (int)sl_rng_below(&r, 3);
        for (int k = 0; k < flips; k++) {
            /* Mostly the header (where parsing happens), sometimes the length. */
            size_t at = sl_rng_below(&r, 8) == 0 ? (size_t)sl_rng_below(&r, 8)
                                                 : 8 + (size_t)sl_rng_below(&r, hl);
            switch (sl_rng_below(&r, 3)) {
            case 0: mut[at] ^= (unsigned char)(1u << sl_rng_below(&r, 8)); break;
            case 1: mut[at] = (unsigned char)sl_rng_u64(&r); break;
            default: mut[at] = interesting[sl_rng_below(&r, sizeof interesting)];
            }
        }
        fuzz_one(path, mut, n, &oks);
    }
    free(mut);
    free(good);
    unlink(src);
    unlink(path);
}

int main(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/sl_st_test_XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip);
    RUN(test_exact_bytes);
    RUN(test_unpadded_and_misaligned);
    RUN(test_corrupt_files);
    RUN(test_lenient_but_valid);
    RUN(test_write_arguments);
    RUN(test_write_failures_leave_nothing);
    RUN(test_overwrite_is_atomic);
    RUN(test_expect);
    RUN(test_fuzz_truncate_and_flip);
    remove_tree(scratch);
    return TEST_SUMMARY();
}
