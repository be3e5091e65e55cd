/* Key-value text pairs: a checkpoint's metadata, and what a component (a
 * task's vocabulary, later a tokenizer) asks to have written into it. */
#ifndef SL_KV_H
#define SL_KV_H

#include <stddef.h>
#include <string.h>

typedef struct sl_kv {
    const char *key, *value;
} sl_kv;

/* The value of key among kv[0..n), or NULL. */
static inline const char *sl_kv_find(const sl_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) return kv[i].value;
    return NULL;
}

#endif
