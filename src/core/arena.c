/* Per-step bump allocator for activations and their gradients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ALIGN 64

struct sl_arena_chunk {
    sl_arena_chunk *next;
    char data[];
};

static void *xaligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN) != 0) {
        sl_out_of_memory("the step's activations", bytes);
    }
    return p;
}

void sl_arena_init(sl_arena *a, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->cap = (cap + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    a->base = a->cap ? xaligned(a->cap) : NULL;
}

void *sl_arena_alloc(sl_arena *a, size_t bytes)
{
    bytes = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (a->used + bytes <= a->cap) {
        void *p = a->base + a->used;
        a->used += bytes;
        if (a->used + a->overflow_bytes > a->peak) a->peak = a->used + a->overflow_bytes;
        return p;
    }
    /* Overflow: a separate chunk; reset folds the peak into the main block. */
    sl_arena_chunk *c = xaligned(sizeof(sl_arena_chunk) + ALIGN + bytes);
    c->next = a->overflow;
    a->overflow = c;
    a->overflow_bytes += bytes;
    if (a->used + a->overflow_bytes > a->peak) a->peak = a->used + a->overflow_bytes;
    return (void *)(((uintptr_t)c->data + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
}

void sl_arena_reset(sl_arena *a)
{
    if (a->overflow) {
        while (a->overflow) {
            sl_arena_chunk *n = a->overflow->next;
            free(a->overflow);
            a->overflow = n;
        }
        free(a->base);
        a->cap = a->peak + a->peak / 8;
        a->base = xaligned(a->cap);
        /* Touch every page now: the next step would otherwise take the new
         * block's page faults inside its kernels (about a second per GB on
         * this machine), and a benchmark's first timed step with them. */
#pragma omp parallel for schedule(static) if (a->cap >= ((size_t)64 << 20))
        for (size_t i = 0; i < a->cap; i += 4096) a->base[i] = 0;
        a->overflow_bytes = 0;
    }
    a->used = 0;
}

void sl_arena_free(sl_arena *a)
{
    while (a->overflow) {
        sl_arena_chunk *n = a->overflow->next;
        free(a->overflow);
        a->overflow = n;
    }
    free(a->base);
    memset(a, 0, sizeof *a);
}
