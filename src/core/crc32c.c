/* CRC-32C, bitwise and slicing-by-8 (Intel's "slicing-by-8", Kounavis and
 * Berry 2008): table[k][b] is the CRC contribution of byte b followed by k
 * zero bytes, so eight bytes fold into the register with eight lookups. */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the 8-byte step loads little-endian words");

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t b = 0; b < 256; b++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
}

uint32_t sl_crc32c_ref(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= s[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (POLY & (0u - (crc & 1)));
    }
    return ~crc;
}

uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&table_once, make_table);
    const unsigned char *s = p;
    crc = ~crc;
    for (; n && ((uintptr_t)s & 7); n--) crc = (crc >> 8) ^ table[0][(crc ^ *s++) & 0xFF];
    for (; n >= 8; n -= 8, s += 8) {
        /* Little-endian: the first four bytes fold into the register. */
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + 4, 4);
        lo ^= crc;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
              table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
              table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
    }
    for (; n; n--) crc = (crc >> 8) ^ table[0][(crc ^ *s++) & 0xFF];
    return ~crc;
}
