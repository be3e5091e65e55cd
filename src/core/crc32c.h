/* CRC-32C (Castagnoli): the checksum iSCSI, ext4, Btrfs and Snappy use.
 * Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF;
 * the check value of the nine bytes "123456789" is 0xE3069283. Checkpoints
 * carry one over their bytes (docs/formats.md, "seqlab_crc32c"). */
#ifndef SL_CRC32C_H
#define SL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) by p[0..n): sl_crc32c(sl_crc32c(0, a, na), b, nb)
 * is the CRC of a followed by b, as zlib's crc32() chains. Slicing-by-8:
 * eight table lookups per 8 bytes, a few GB/s on one core. */
uint32_t sl_crc32c(uint32_t crc, const void *p, size_t n);

/* The same, one bit at a time: the reference the fast form is tested against. */
uint32_t sl_crc32c_ref(uint32_t crc, const void *p, size_t n);

#endif
