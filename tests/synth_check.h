/* Checks every synthetic task (src/tasks/synth.h) must pass: opening with
 * options, batches deterministic in the rng, held-out splits fixed, a
 * golden hash of one batch per split. Include after check.h. */
#ifndef SL_SYNTH_CHECK_H
#define SL_SYNTH_CHECK_H

#include <stdint.h>
#include <string.h>

#include "tasks/synth.h"
#include "tasks/task.h"

/* Opens vt at seq_len T with its defaults and the options in kv
 * ("name", "value", ..., NULL). */
static inline sl_status synth_open(sl_task *t, const sl_task_vtable *vt, int64_t T,
                                   const char *const *kv)
{
    sl_opts o;
    CHECK(sl_opts_defaults(&o, vt->options) == SL_OK, "defaults: %s", sl_errmsg());
    for (; kv && kv[0]; kv += 2)
        CHECK(sl_opts_set(&o, vt->name, "test", kv[0], kv[1], SL_FROM_TEXT) == SL_OK, "%s: %s",
              kv[0], sl_errmsg());
    const sl_task_env env = {.data = "", .seq_len = T, .opts = &o};
    return sl_task_open(t, vt, &env);
}

/* A batch of split drawn with an rng seeded rseed (training) or from
 * example `first` on (held out). tok, tgt: [B*T]. */
static inline void synth_batch_at(sl_task *t, sl_split split, uint64_t rseed, int64_t first,
                                  int64_t B, int64_t T, int32_t *tok, int32_t *tgt)
{
    sl_rng r;
    sl_rng_seed(&r, rseed);
    t->vt->batch(t, split, &r,
                 &(sl_batch){.B = B, .T = T, .first = first, .tokens = tok, .targets = tgt});
}

static inline void synth_batch(sl_task *t, sl_split split, uint64_t rseed, int64_t B, int64_t T,
                               int32_t *tok, int32_t *tgt)
{
    synth_batch_at(t, split, rseed, 0, B, T, tok, tgt);
}

/* FNV-1a over a batch's tokens and targets. */
static inline uint64_t synth_hash(const int32_t *tok, const int32_t *tgt, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < 2 * n; i++) {
        uint32_t v = (uint32_t)(i < n ? tok[i] : tgt[i - n]);
        for (int k = 0; k < 4; k++) h = (h ^ ((v >> (8 * k)) & 0xff)) * 1099511628211ull;
    }
    return h;
}

/* Same rng, same batch; another rng seed, another training batch; a
 * held-out batch ignores the rng, is the same after training batches and
 * from a second instance, and row b is example first + b (mod the set's
 * size); tokens are in [0, vocab_size) and targets -1 or in range.
 * golden[s]: the hash of split s's batch with rng seed 7 and first 0 (0
 * prints it, to pin a new definition). */
static inline void synth_check_splits(const sl_task_vtable *vt, int64_t T, const char *const *kv,
                                      const uint64_t golden[3])
{
    enum { B = 4 };
    sl_task t, u;
    CHECK(synth_open(&t, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    CHECK(synth_open(&u, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    int32_t *a = malloc(sizeof(int32_t) * 4 * B * T), *at = a + B * T, *b = at + B * T,
            *bt = b + B * T;
    for (int s = 0; s < 3; s++) {
        synth_batch(&t, (sl_split)s, 7, B, T, a, at);
        uint64_t h = synth_hash(a, at, B * T);
        if (!golden[s])
            printf("  %s split %d: golden 0x%016llxull\n", vt->name, s, (unsigned long long)h);
        CHECK(h == golden[s], "%s split %d: hash 0x%016llx, expected 0x%016llx", vt->name, s,
              (unsigned long long)h, (unsigned long long)golden[s]);
        for (int64_t i = 0; i < B * T; i++) {
            CHECK(a[i] >= 0 && a[i] < t.vocab_size, "token %d", a[i]);
            CHECK(at[i] == -1 || (at[i] >= 0 && at[i] < t.vocab_size), "target %d", at[i]);
        }
        synth_batch(&t, (sl_split)s, 7, B, T, b, bt);
        CHECK(!memcmp(a, b, sizeof(int32_t) * 2 * B * T), "same rng, same batch");
        synth_batch(&t, (sl_split)s, 8, B, T, b, bt);
        CHECK(!memcmp(a, b, sizeof(int32_t) * 2 * B * T) == (s != SL_SPLIT_TRAIN),
              "split %d: the rng draws training rows alone", s);
        if (s == SL_SPLIT_TRAIN) continue;
        /* Rows 1..B-1 of first 0 are rows 0..B-2 of first 1; first 3000
         * wraps to 0. */
        synth_batch_at(&t, (sl_split)s, 7, 1, B, T, b, bt);
        for (int64_t r = 1; r < B; r++)
            CHECK(!memcmp(a + r * T, b + (r - 1) * T, sizeof(int32_t) * T) &&
                      !memcmp(at + r * T, bt + (r - 1) * T, sizeof(int32_t) * T),
                  "held-out row %lld is example first + %lld", (long long)r, (long long)r);
        synth_batch_at(&t, (sl_split)s, 9, 3000, B, T, b, bt);
        CHECK(!memcmp(a, b, sizeof(int32_t) * 2 * B * T), "the held-out set wraps around");
        for (int k = 0; k < 3; k++) synth_batch(&t, SL_SPLIT_TRAIN, 100 + k, B, T, b, bt);
        synth_batch(&u, (sl_split)s, 7, B, T, b, bt);
        CHECK(!memcmp(a, b, sizeof(int32_t) * 2 * B * T), "held-out split fixed");
        CHECK(t.vt->split_size(&t, (sl_split)s) == 3000, "3000 examples");
    }
    CHECK(t.vt->split_size(&t, SL_SPLIT_TRAIN) == INT64_MAX, "training unbounded");
    /* Another task seed, another held-out set. */
    const char *const other[] = {"seed", "5", NULL};
    sl_task w;
    CHECK(synth_open(&w, vt, T, other) == SL_OK, "%s", sl_errmsg());
    synth_batch(&t, SL_SPLIT_TEST, 7, B, T, a, at);
    synth_batch(&w, SL_SPLIT_TEST, 7, B, T, b, bt);
    CHECK(memcmp(a, b, sizeof(int32_t) * 2 * B * T), "task seed changes the test set");
    free(a);
    sl_task_close(&t);
    sl_task_close(&u);
    sl_task_close(&w);
}

/* Opening vt at T with kv fails with SL_ERR_CONFIG naming `name`. */
static inline void synth_check_rejects(const sl_task_vtable *vt, int64_t T, const char *const *kv,
                                       const char *name)
{
    sl_task t;
    sl_status st = synth_open(&t, vt, T, kv);
    CHECK(st == SL_ERR_CONFIG && strstr(sl_errmsg(), name) && strstr(sl_errmsg(), vt->name),
          "%s: status %d, message: %s", name, (int)st, sl_errmsg());
    if (!st) sl_task_close(&t);
}

#endif
