/* The character vocabulary of byte-level text tasks: token id i is the
 * i-th byte of `bytes` (not byte value i). `bytes` holds the distinct byte
 * values of the training text in increasing order, without NUL. The task
 * writes it into checkpoints as the metadata `vocab_hex` (two lowercase hex
 * digits per byte, in id order), where generation and evaluation read it
 * back (docs/formats.md). */
#ifndef SL_CHARVOCAB_H
#define SL_CHARVOCAB_H

#include "core/core.h"
#include "core/kv.h"

#define SL_VOCAB_KEY "vocab_hex"

typedef struct sl_charvocab {
    char bytes[257];
    int64_t n;
    char hex[513]; /* bytes as vocab_hex */
} sl_charvocab;

/* The sorted distinct bytes of text[0..n) (no NUL in it). */
void sl_charvocab_from_text(sl_charvocab *v, const char *text, int64_t n);
/* The same from a text seen in pieces: first[c] is the offset where byte c
 * first occurs, -1 when it does not (first[0] must be -1). */
void sl_charvocab_from_first(sl_charvocab *v, const int64_t first[256]);
/* From the metadata vocab_hex among meta[0..n_meta); where names the file
 * in messages. The vocabulary must fit vocab_size ids. */
sl_status sl_charvocab_from_meta(sl_charvocab *v, const sl_kv *meta, size_t n_meta,
                                 int64_t vocab_size, const char *where);
/* text[0..n) -> ids[n]. Fails naming the first byte outside the
 * vocabulary and its offset. */
sl_status sl_charvocab_encode(const sl_charvocab *v, const char *text, int64_t n, int32_t *ids);
/* index[c]: the id of byte c, -1 when c is outside the vocabulary. */
void sl_charvocab_index(const sl_charvocab *v, int16_t index[256]);
/* Fails as sl_charvocab_encode would on the whole text whose first
 * occurrences are first[] (as for sl_charvocab_from_first). */
sl_status sl_charvocab_check(const sl_charvocab *v, const int64_t first[256]);

#endif
