/* Fuzz target: the text task's loader. Byte 0 picks seq_len (1 to 8),
 * holdout_every (3 to 10) and, with its top bit, a fixed checkpoint
 * vocabulary (newline, space, a-z) the data must fit; the rest is the file.
 * Oracles: the splits add up to the file, every id is inside the
 * vocabulary, and a batch's targets are its tokens shifted by one. */
#include "fuzz/fuzz.h"
#include "tasks/task.h"

extern const sl_task_vtable sl_task_text;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const int64_t T = 1 + data[0] % 8;
    char every[8];
    snprintf(every, sizeof every, "%d", 3 + (data[0] >> 3) % 8);
    const sl_kv vocab = {"vocab_hex", "0a206162636465666768696a6b6c6d6e6f707172737475767778797a"};
    char path[64];
    int fd = fuzz_file(data + 1, size - 1, path);
    sl_opts o;
    if (sl_opts_defaults(&o, sl_task_text.options) ||
        sl_opts_set(&o, "task 'text'", "fuzz", "holdout_every", every, SL_FROM_TEXT))
        abort();
    const bool meta = data[0] & 0x80;
    const sl_task_env env = {.data = path,
                             .seq_len = T,
                             .vocab_size = 28,
                             .opts = &o,
                             .meta = meta ? &vocab : NULL,
                             .n_meta = meta,
                             .meta_src = "ck"};
    sl_task t;
    if (sl_task_open(&t, &sl_task_text, &env) != SL_OK) {
        FUZZ_ASSERT(strstr(sl_errmsg(), path) != NULL, "a refusal names the file");
        close(fd);
        return 0;
    }
    int64_t total = 0;
    for (int s = 0; s < 3; s++) total += t.vt->split_size(&t, (sl_split)s);
    FUZZ_ASSERT(total == (int64_t)size - 1, "the splits hold every byte");
    FUZZ_ASSERT(t.vocab_size >= 1 && t.vocab_size <= 255, "vocabulary size");
    sl_rng r;
    sl_rng_seed(&r, data[0]);
    int32_t tok[2 * 8], tgt[2 * 8];
    for (int s = 0; s < 3; s++) {
        t.vt->batch(&t, (sl_split)s, &r, &(sl_batch){.B = 2, .T = T, .tokens = tok, .targets = tgt});
        for (int64_t i = 0; i < 2 * T; i++)
            FUZZ_ASSERT(tok[i] >= 0 && tok[i] < t.vocab_size && tgt[i] >= 0 &&
                            tgt[i] < t.vocab_size,
                        "ids inside the vocabulary");
        for (int b = 0; b < 2; b++)
            for (int64_t i = 0; i + 1 < T; i++)
                FUZZ_ASSERT(tgt[b * T + i] == tok[b * T + i + 1], "targets shifted by one");
    }
    sl_task_close(&t);
    close(fd);
    return 0;
}
