/* The runtime every chunked kernel shares (attention, recurrence, mLSTM,
 * delta rule): the sequences it runs over and their row bounds, the chunks
 * of each and where a chunk's saved state goes, the work split over
 * (sequence, head) items and the team size, and the carving of one
 * thread's scratch.
 *
 * Items are (sequence, head) pairs, item = i * H + h. Each item is one
 * thread's, its chunks taken in a fixed order and writing only its own
 * rows, so results do not depend on the thread count or on which thread
 * takes which item. */
#ifndef SL_OPS_CHUNK_RUNTIME_H
#define SL_OPS_CHUNK_RUNTIME_H

#include "core/core.h"

/* The sequences of a kernel: the B batch rows of T tokens, or the n
 * sequences of a packed batch (sl_seqs, B = 1), each chunked from its own
 * first token into chunks of C (its last chunk may be short), so no chunk
 * straddles a bound. */
typedef struct sl_chunk_rows {
    int64_t n;           /* sequences: B, or seqs->n */
    int64_t T;           /* tokens of a batch row */
    int64_t C;           /* chunk length; 0 for a kernel without chunks */
    const sl_seqs *seqs; /* the packed bounds, or NULL */
    const int64_t *coff; /* [n + 1]: chunks of the sequences before i; NULL when C = 0 */
} sl_chunk_rows;

/* The rows with arena copies of seqs and the chunk offsets: the caller's
 * bounds need not outlive the forward, and the backward walks the very
 * chunks the forward saved states for. */
sl_chunk_rows sl_chunk_rows_keep(sl_ctx *ctx, const sl_seqs *seqs, int64_t B, int64_t T,
                                 int64_t C);
/* The rows over the caller's seqs, without chunks (C = 0), for a kernel
 * that reads them only while the caller's bounds live. */
static inline sl_chunk_rows sl_chunk_rows_of(const sl_seqs *seqs, int64_t B, int64_t T)
{
    return (sl_chunk_rows){sl_seq_count(seqs, B), T, 0, seqs, NULL};
}

/* Sequence i's first token (counted over all B*T tokens) and its length. */
static inline int64_t sl_chunk_start(const sl_chunk_rows *r, int64_t i)
{
    return sl_seq_start(r->seqs, i, r->T);
}
static inline int64_t sl_chunk_len(const sl_chunk_rows *r, int64_t i)
{
    return sl_seq_len(r->seqs, i, r->T);
}
/* The longest sequence. */
int64_t sl_chunk_max_len(const sl_chunk_rows *r);
/* Chunks of sequence i, and the length of its chunk c. */
static inline int64_t sl_chunk_count(const sl_chunk_rows *r, int64_t i)
{
    return r->coff[i + 1] - r->coff[i];
}
static inline int64_t sl_chunk_size(const sl_chunk_rows *r, int64_t i, int64_t c)
{
    const int64_t left = sl_chunk_len(r, i) - c * r->C;
    return left < r->C ? left : r->C;
}

/* Per-chunk saved states of sz floats: per sequence a block [H, its
 * chunks, sz], blocks in sequence order (with B rows of T: [B, H, nch, sz]).
 * The offset of the state entering chunk c of (sequence i, head h), and
 * the floats of them all. */
static inline int64_t sl_chunk_state_at(const sl_chunk_rows *r, int64_t H, int64_t i, int64_t h,
                                        int64_t c, int64_t sz)
{
    return (r->coff[i] * H + h * sl_chunk_count(r, i) + c) * sz;
}
static inline int64_t sl_chunk_states_floats(const sl_chunk_rows *r, int64_t H, int64_t sz)
{
    return r->coff[r->n] * H * sz;
}

/* Threads for `items` independent items doing `work` multiply-adds in all:
 * no more than there are items, and one below ~1e6 multiply-adds (a few
 * hundred microseconds), which finishes before a woken thread pool would,
 * above all when the cores are shared. */
int sl_chunk_team(int64_t items, int64_t work);

/* Multiply-adds of a chunked matrix-state kernel (keys dk, values dv,
 * chunks of C) over `tokens` tokens of H heads, for sl_chunk_team: per
 * token the scores and their use against the chunk, C (dk + dv), and the
 * state's read and write, 2 dk dv. */
static inline int64_t sl_chunk_state_work(int64_t tokens, int64_t H, int64_t C, int64_t dk,
                                          int64_t dv)
{
    return tokens * H * (C * (dk + dv) + 2 * dk * dv);
}

/* One item: item = i * H + h; scratch: the running thread's floats. */
typedef void (*sl_chunk_fn)(const void *arg, int64_t item, float *scratch);

/* fn(arg, item, ..) for every item in [0, items) on nt threads (from
 * sl_chunk_team), thread t given scratch + t * per. Dynamic: packed
 * sequences differ in length, and any thread may take any item. */
void sl_chunk_for(int nt, int64_t items, sl_chunk_fn fn, const void *arg, float *scratch,
                  int64_t per);

/* Carves one thread's scratch into buffers, each starting on 64 bytes. With
 * base NULL it only counts: one carving function then gives both the
 * buffers and the size (used), so the two never disagree. */
typedef struct sl_carver {
    float *base;
    int64_t used;
} sl_carver;

static inline float *sl_carve(sl_carver *c, int64_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(int64_t)15;
    return p;
}

#endif
