/* Checks of the icl tasks (src/tasks/icl.h) in the manner of
 * synth_check.h, for batches of vectors, values, a mask and lengths:
 * deterministic in the rng, held-out splits fixed, golden hashes that
 * tools/check_tasks_doc.py reproduces from docs/tasks.md. Include after
 * check.h. */
#ifndef SL_ICL_CHECK_H
#define SL_ICL_CHECK_H

#include <string.h>

#include "synth_check.h"
#include "tasks/icl.h"
#include "tasks/synth.h"

/* A batch of B rows of T positions at the task's io (freed by the caller
 * with sl_batch_free), drawn for split at training step `step` with an
 * rng seeded rseed (training) or from example `first` on (held out). */
static inline sl_batch icl_batch_at(sl_task *t, sl_split split, uint64_t rseed, int64_t step,
                                    int64_t first, int64_t B, int64_t T)
{
    sl_batch b;
    CHECK(sl_batch_alloc(&b, &t->io, B, T, "test") == SL_OK, "%s", sl_errmsg());
    b.step = step;
    b.first = first;
    sl_rng r;
    sl_rng_seed(&r, rseed);
    t->vt->batch(t, split, &r, &b);
    return b;
}

static inline sl_batch icl_batch(sl_task *t, sl_split split, uint64_t rseed, int64_t step,
                                 int64_t B, int64_t T)
{
    return icl_batch_at(t, split, rseed, step, 0, B, T);
}

static inline uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    return h;
}

/* FNV-1a over the batch's vectors (float32 bits, little-endian), values,
 * mask bytes, then lengths (int64). */
static inline uint64_t icl_hash(const sl_batch *b, int64_t n_in)
{
    const size_t R = (size_t)(b->B * b->T);
    uint64_t h = fnv(1469598103934665603ull, b->vectors, R * (size_t)n_in * sizeof(float));
    h = fnv(h, b->values, R * sizeof(float));
    h = fnv(h, b->mask, R);
    return fnv(h, b->lengths, (size_t)b->B * sizeof(int64_t));
}

static inline bool icl_same(const sl_batch *a, const sl_batch *b, int64_t n_in)
{
    return icl_hash(a, n_in) == icl_hash(b, n_in);
}

/* golden[0..2]: the hashes of a batch of 4 rows of each split (rng seed
 * 7, training at step 0); golden[3]: training at step `step` (0 prints
 * them, to pin a new definition). */
static inline void icl_check_splits(const sl_task_vtable *vt, int64_t T, const char *const *kv,
                                    int64_t step, const uint64_t golden[4])
{
    enum { B = 4 };
    sl_task t, u;
    CHECK(synth_open(&t, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    CHECK(synth_open(&u, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    const int64_t D = t.io.n_in;
    CHECK(t.io.input == SL_INPUT_VECTORS && t.io.head == SL_HEAD_REGRESS && t.io.n_out == 1,
          "vectors in, one regressed value out");
    for (int s = 0; s < 4; s++) {
        const sl_split split = s == 3 ? SL_SPLIT_TRAIN : (sl_split)s;
        const int64_t at = s == 3 ? step : 0;
        sl_batch a = icl_batch(&t, split, 7, at, B, T);
        const uint64_t h = icl_hash(&a, D);
        if (!golden[s])
            printf("  %s case %d: golden 0x%016llxull\n", vt->name, s, (unsigned long long)h);
        CHECK(h == golden[s], "%s case %d: hash 0x%016llx, expected 0x%016llx", vt->name, s,
              (unsigned long long)h, (unsigned long long)golden[s]);
        sl_batch b = icl_batch(&t, split, 7, at, B, T);
        CHECK(icl_same(&a, &b, D), "same rng, same batch");
        sl_batch_free(&b);
        b = icl_batch(&t, split, 8, at, B, T);
        CHECK(icl_same(&a, &b, D) == (split != SL_SPLIT_TRAIN),
              "case %d: the rng draws training rows alone", s);
        sl_batch_free(&b);
        if (split != SL_SPLIT_TRAIN) {
            b = icl_batch_at(&t, split, 7, 0, 3000, B, T);
            CHECK(icl_same(&a, &b, D), "the held-out set wraps around");
            sl_batch_free(&b);
            for (int k = 0; k < 3; k++) {
                b = icl_batch(&t, SL_SPLIT_TRAIN, 100 + k, 1000 * k, B, T);
                sl_batch_free(&b);
            }
            b = icl_batch(&u, split, 7, 123456, B, T);
            CHECK(icl_same(&a, &b, D), "held-out split fixed, whatever the step");
            sl_batch_free(&b);
            CHECK(t.vt->split_size(&t, split) == 3000, "3000 examples");
        }
        sl_batch_free(&a);
    }
    CHECK(t.vt->split_size(&t, SL_SPLIT_TRAIN) == INT64_MAX, "training unbounded");
    const char *const other[] = {"seed", "5", NULL};
    sl_task w;
    CHECK(synth_open(&w, vt, T, other) == SL_OK, "%s", sl_errmsg());
    sl_batch a = icl_batch(&t, SL_SPLIT_TEST, 7, 0, B, T),
             b = icl_batch(&w, SL_SPLIT_TEST, 7, 0, B, T);
    CHECK(!icl_same(&a, &b, D), "task seed changes the test set");
    sl_batch_free(&a);
    sl_batch_free(&b);
    sl_task_close(&t);
    sl_task_close(&u);
    sl_task_close(&w);
}

/* Every row of b (its task's io, dims D) is a prompt of d dimensions and p
 * points: x_i at 2i (zero past d), target y_i there, [y_i, 0..0] at
 * 2i + 1, nothing past 2p. */
static inline void icl_check_layout(const sl_batch *b, int64_t D, int64_t d, int64_t p)
{
    for (int64_t r = 0; r < b->B; r++) {
        CHECK(b->lengths[r] == 2 * p, "row %lld: length %lld, expected %lld", (long long)r,
              (long long)b->lengths[r], (long long)(2 * p));
        for (int64_t t = 0; t < b->T; t++) {
            const int64_t pos = r * b->T + t;
            const float *v = b->vectors + pos * D;
            const bool x = t < 2 * p && t % 2 == 0, y = t < 2 * p && t % 2 == 1;
            CHECK(b->mask[pos] == x, "row %lld, t %lld: mask %d", (long long)r, (long long)t,
                  b->mask[pos]);
            if (!x) CHECK(b->values[pos] == 0, "no value off the x positions");
            for (int64_t j = 0; j < D; j++) {
                bool zero = x ? j >= d : y ? j > 0 : true;
                if (zero)
                    CHECK(v[j] == 0, "row %lld, t %lld, coordinate %lld: %g", (long long)r,
                          (long long)t, (long long)j, v[j]);
                else if (x)
                    CHECK(v[j] != 0 && isfinite(v[j]), "a drawn coordinate");
            }
            if (y) CHECK(v[0] == b->values[pos - 1], "the y position holds the target");
        }
    }
}

#endif
