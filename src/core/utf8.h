/* UTF-8 as JSON and safetensors headers require it: the checkpoint writer
 * and the config's strings (paths end up in a checkpoint's stored config). */
#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (1 to 4; n bytes available), or
 * 0. Rejects overlong forms, surrogates and code points past U+10FFFF. */
size_t sl_utf8_seq(const unsigned char *p, size_t n);
/* s (NUL-terminated) is valid UTF-8. */
bool sl_utf8_valid(const char *s);

#endif
