/* synth_check.h's split checks for synthetic tasks whose batches carry
 * more than a token and a target per position: rows of their own lengths,
 * vectors (input vectors or both), one target per row (classify). Batches
 * come from sl_batch_alloc with the task's io, as the trainer makes them.
 * Include after check.h. */
#ifndef SL_SYNTH_BATCH_CHECK_H
#define SL_SYNTH_BATCH_CHECK_H

#include <stdint.h>
#include <string.h>

#include "synth_check.h"
#include "tasks/synth.h"
#include "tasks/task.h"

/* A batch of B rows of T positions of split s, drawn with an rng seeded
 * rseed (training) or from example `first` on (held out), into b
 * (allocated here for t's io; sl_batch_free it). */
static void synth_io_batch_at(sl_task *t, sl_split s, uint64_t rseed, int64_t first, int64_t B,
                              int64_t T, sl_batch *b)
{
    CHECK(sl_batch_alloc(b, &t->io, B, T, "test") == SL_OK, "%s", sl_errmsg());
    b->first = first;
    sl_rng r;
    sl_rng_seed(&r, rseed);
    t->vt->batch(t, s, &r, b);
}

static void synth_io_batch(sl_task *t, sl_split s, uint64_t rseed, int64_t B, int64_t T,
                           sl_batch *b)
{
    synth_io_batch_at(t, s, rseed, 0, B, T, b);
}

static uint64_t fnv_word(uint64_t h, uint32_t v)
{
    for (int k = 0; k < 4; k++) h = (h ^ ((v >> (8 * k)) & 0xff)) * 1099511628211ull;
    return h;
}

/* FNV-1a over 32-bit little-endian words, in this order: every row's
 * length; the tokens of each row's positions [0, length); the vectors'
 * float bits there (row by row, position by position); the targets (one
 * per row for classify, else each row's positions [0, length)).
 * tools/check_tasks_doc.py computes the same. */
static uint64_t synth_io_hash(const sl_batch *b, const sl_task_io *io)
{
    uint64_t h = 1469598103934665603ull;
    const int64_t B = b->B, T = b->T, n = io->n_in;
    for (int64_t i = 0; i < B; i++) h = fnv_word(h, (uint32_t)b->lengths[i]);
    for (int64_t i = 0; b->tokens && i < B; i++)
        for (int64_t t = 0; t < b->lengths[i]; t++) h = fnv_word(h, (uint32_t)b->tokens[i * T + t]);
    for (int64_t i = 0; b->vectors && i < B; i++)
        for (int64_t k = 0; k < b->lengths[i] * n; k++) {
            uint32_t w;
            memcpy(&w, &b->vectors[i * T * n + k], sizeof w);
            h = fnv_word(h, w);
        }
    for (int64_t i = 0; i < B; i++) {
        if (io->head == SL_HEAD_CLASSIFY)
            h = fnv_word(h, (uint32_t)b->targets[i]);
        else
            for (int64_t t = 0; t < b->lengths[i]; t++)
                h = fnv_word(h, (uint32_t)b->targets[i * T + t]);
    }
    return h;
}

/* synth_check_splits for such a task: same rng, same batch; another rng,
 * another training batch, the same held-out one; held-out batches fixed
 * (after training batches, from a second instance), n_held examples large,
 * walked from `first` and wrapping at n_held; another task seed, another test
 * set; lengths in [1, T], tokens in [0, vocab_size) (or -1 with input
 * both), targets -1 or a class of the head. golden[s]: the hash of split
 * s's batch of 4 rows with rng seed 7 (0 prints it). */
static void synth_check_io_splits(const sl_task_vtable *vt, int64_t T, const char *const *kv,
                                  const uint64_t golden[3], int64_t n_held)
{
    enum { B = 4 };
    sl_task t, u, w;
    CHECK(synth_open(&t, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    CHECK(synth_open(&u, vt, T, kv) == SL_OK, "%s", sl_errmsg());
    const int64_t classes = t.io.head == SL_HEAD_LM ? t.vocab_size : t.io.n_out;
    for (int s = 0; s < 3; s++) {
        sl_batch a, b;
        synth_io_batch(&t, (sl_split)s, 7, B, T, &a);
        const uint64_t h = synth_io_hash(&a, &t.io);
        if (!golden[s])
            printf("  %s split %d: golden 0x%016llxull\n", vt->name, s, (unsigned long long)h);
        CHECK(h == golden[s], "%s split %d: hash 0x%016llx, expected 0x%016llx", vt->name, s,
              (unsigned long long)h, (unsigned long long)golden[s]);
        for (int64_t i = 0; i < B; i++) {
            CHECK(a.lengths[i] >= 1 && a.lengths[i] <= T, "length %lld", (long long)a.lengths[i]);
            for (int64_t p = 0; a.tokens && p < a.lengths[i]; p++) {
                const int32_t x = a.tokens[i * T + p];
                CHECK((x >= 0 && x < t.vocab_size) || (x == -1 && t.io.input == SL_INPUT_BOTH),
                      "token %d", x);
            }
            const int64_t nt = t.io.head == SL_HEAD_CLASSIFY ? 1 : a.lengths[i];
            const int32_t *tg = a.targets + (t.io.head == SL_HEAD_CLASSIFY ? i : i * T);
            for (int64_t p = 0; p < nt; p++)
                CHECK(tg[p] == -1 || (tg[p] >= 0 && tg[p] < classes), "target %d", tg[p]);
        }
        synth_io_batch(&t, (sl_split)s, 7, B, T, &b);
        CHECK(synth_io_hash(&b, &t.io) == h, "same rng, same batch");
        sl_batch_free(&b);
        synth_io_batch(&t, (sl_split)s, 8, B, T, &b);
        CHECK((synth_io_hash(&b, &t.io) != h) == (s == SL_SPLIT_TRAIN),
              "split %d: the rng draws training rows alone", s);
        sl_batch_free(&b);
        if (s != SL_SPLIT_TRAIN) {
            /* Held-out row r of first 0 is row 0 of first r; first n_held
             * wraps to 0. */
            synth_io_batch_at(&t, (sl_split)s, 7, n_held, B, T, &b);
            CHECK(synth_io_hash(&b, &t.io) == h, "the held-out set wraps around");
            sl_batch_free(&b);
            synth_io_batch_at(&t, (sl_split)s, 7, 3, 1, T, &b);
            sl_batch row3 = a;
            row3.B = 1;
            row3.lengths += 3;
            if (row3.tokens) row3.tokens += 3 * T;
            if (row3.vectors) row3.vectors += 3 * T * t.io.n_in;
            row3.targets += t.io.head == SL_HEAD_CLASSIFY ? 3 : 3 * T;
            CHECK(synth_io_hash(&b, &t.io) == synth_io_hash(&row3, &t.io),
                  "row 3 of first 0 is row 0 of first 3");
            sl_batch_free(&b);
            for (int k = 0; k < 3; k++) {
                synth_io_batch(&t, SL_SPLIT_TRAIN, 100 + k, B, T, &b);
                sl_batch_free(&b);
            }
            synth_io_batch(&u, (sl_split)s, 7, B, T, &b);
            CHECK(synth_io_hash(&b, &t.io) == h, "held-out split fixed");
            sl_batch_free(&b);
            CHECK(t.vt->split_size(&t, (sl_split)s) == n_held, "%lld examples", (long long)n_held);
        }
        sl_batch_free(&a);
    }
    CHECK(t.vt->split_size(&t, SL_SPLIT_TRAIN) == INT64_MAX, "training unbounded");
    const char *const other[] = {"seed", "5", NULL};
    CHECK(synth_open(&w, vt, T, other) == SL_OK, "%s", sl_errmsg());
    sl_batch a, b;
    synth_io_batch(&t, SL_SPLIT_TEST, 7, B, T, &a);
    synth_io_batch(&w, SL_SPLIT_TEST, 7, B, T, &b);
    CHECK(synth_io_hash(&a, &t.io) != synth_io_hash(&b, &w.io), "task seed changes the test set");
    sl_batch_free(&a);
    sl_batch_free(&b);
    sl_task_close(&t);
    sl_task_close(&u);
    sl_task_close(&w);
}

#endif
