/* Per-thread scratch kept across calls (core.h, sl_scratch). A kernel that
 * malloc'd and freed its buffers on every call paid for fresh pages each
 * time: glibc hands large blocks back to the kernel on free, so the next
 * call's first touch of every page faulted and zeroed it, a third of a
 * long convolution's time at 256k tokens. Each thread's buffers live in a
 * pthread key's value, freed by its destructor when the thread exits (an
 * OpenMP pool that shrinks), and only ever grow. */
#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"

typedef struct scratch {
    void *p[SL_SCRATCH_SLOTS];
    size_t cap[SL_SCRATCH_SLOTS];
} scratch;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
    scratch *s = v;
    for (int i = 0; i < SL_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

static void make_key(void)
{
    sl_require(pthread_key_create(&key, scratch_free) == 0, "sl_scratch", "a thread key");
}

void *sl_scratch(sl_scratch_slot slot, size_t bytes)
{
    pthread_once(&once, make_key);
    scratch *s = pthread_getspecific(key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(key, s) != 0) sl_out_of_memory("a thread's scratch", sizeof *s);
    }
    if (bytes > s->cap[slot]) {
        /* Some headroom, so that lengths creeping up do not regrow it
         * every call. */
        const size_t cap = (bytes + bytes / 8 + 63) / 64 * 64;
        free(s->p[slot]);
        s->p[slot] = aligned_alloc(64, cap);
        s->cap[slot] = s->p[slot] ? cap : 0;
        if (!s->p[slot]) sl_out_of_memory("a kernel's per-thread scratch", cap);
    }
    return s->p[slot];
}
