/* Byte-level character vocabularies (tasks/charvocab.h). */
#include <string.h>

#include "tasks/charvocab.h"

/* Fills v->hex from v->bytes. */
static void to_hex(sl_charvocab *v)
{
    static const char H[] = "0123456789abcdef";
    for (int64_t i = 0; i < v->n; i++) {
        v->hex[2 * i] = H[(uint8_t)v->bytes[i] >> 4];
        v->hex[2 * i + 1] = H[(uint8_t)v->bytes[i] & 15];
    }
    v->hex[2 * v->n] = '\0';
}

void sl_charvocab_from_first(sl_charvocab *v, const int64_t first[256])
{
    v->n = 0;
    for (int c = 1; c < 256; c++)
        if (first[c] >= 0) v->bytes[v->n++] = (char)c;
    v->bytes[v->n] = '\0';
    to_hex(v);
}

void sl_charvocab_from_text(sl_charvocab *v, const char *text, int64_t n)
{
    int64_t first[256];
    memset(first, -1, sizeof first);
    for (int64_t i = n - 1; i >= 0; i--) first[(uint8_t)text[i]] = i;
    first[0] = -1;
    sl_charvocab_from_first(v, first);
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

sl_status sl_charvocab_from_meta(sl_charvocab *v, const sl_kv *meta, size_t n_meta,
                                 int64_t vocab_size, const char *where)
{
    const char *hex = sl_kv_find(meta, n_meta, SL_VOCAB_KEY);
    if (!hex)
        return sl_fail(SL_ERR_FORMAT, "%s: metadata '%s' is missing (no character vocabulary)",
                       where, SL_VOCAB_KEY);
    size_t len = strlen(hex);
    bool ok = len % 2 == 0 && len / 2 >= 1 && len / 2 <= 255;
    for (size_t i = 0; ok && i < len / 2; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0 && (hi | lo) != 0;
        v->bytes[i] = (char)(hi << 4 | lo);
    }
    if (!ok)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: metadata '%s': expected 1 to 255 non-zero bytes as lowercase hex pairs",
                       where, SL_VOCAB_KEY);
    v->n = (int64_t)(len / 2);
    v->bytes[v->n] = '\0';
    if (v->n > vocab_size)
        return sl_fail(SL_ERR_FORMAT, "%s: vocabulary of %lld characters but vocab_size = %lld",
                       where, (long long)v->n, (long long)vocab_size);
    to_hex(v);
    return SL_OK;
}

void sl_charvocab_index(const sl_charvocab *v, int16_t index[256])
{
    for (int c = 0; c < 256; c++) index[c] = -1;
    for (int64_t i = 0; i < v->n; i++) index[(uint8_t)v->bytes[i]] = (int16_t)i;
}

static sl_status not_in_vocab(uint8_t c, int64_t at)
{
    bool show = c >= 32 && c < 127;
    return sl_fail(SL_ERR_ARG,
                   "character %s%c%s (byte 0x%02x) at offset %lld is not in the vocabulary",
                   show ? "'" : "", show ? c : ' ', show ? "'" : "", c, (long long)at);
}

sl_status sl_charvocab_encode(const sl_charvocab *v, const char *s, int64_t n, int32_t *ids)
{
    int16_t index[256];
    sl_charvocab_index(v, index);
    for (int64_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (index[c] < 0) return not_in_vocab(c, i);
        ids[i] = index[c];
    }
    return SL_OK;
}

sl_status sl_charvocab_check(const sl_charvocab *v, const int64_t first[256])
{
    int16_t index[256];
    sl_charvocab_index(v, index);
    int bad = -1;
    for (int c = 0; c < 256; c++)
        if (first[c] >= 0 && index[c] < 0 && (bad < 0 || first[c] < first[bad])) bad = c;
    return bad < 0 ? SL_OK : not_in_vocab((uint8_t)bad, first[bad]);
}
