/* seqlab generate CKPT --prompt TEXT [--max-new N --temperature T --top-k K
 * --top-p P --seed S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "infer/sample.h"
#include "tasks/charvocab.h"
#include "train/checkpoint.h"

static void help(void)
{
    printf("usage: seqlab generate CKPT --prompt TEXT [--max-new N] [--temperature T]\n"
           "                      [--top-k K] [--top-p P] [--seed S] [--threads N]\n\n"
           "Samples a continuation of TEXT. The prompt is consumed in one batched forward\n"
           "(prefill); each new character is one step() per layer against its KV cache.\n"
           "Defaults: --max-new 200 --temperature 0.8 --top-k 0 (off) --top-p 1 (off)\n"
           "--seed 1. --temperature 0 is greedy. A prompt longer than max_seq_len keeps\n"
           "its last max_seq_len characters; when the context fills up, decoding starts\n"
           "again from the last max_seq_len / 2 characters (one prefill) and goes on,\n"
           "unless every layer streams (windowed attention's ring cache, no learned\n"
           "positions): then it just goes on.\n");
}

int cmd_generate(int argc, char **argv)
{
    const char *ckpt = NULL, *prompt = NULL, *v;
    int64_t max_new = 200, top_k = 0, seed = 1, threads = 0;
    double temp = 0.8, top_p = 1.0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "prompt", &v)) {
            if (!v)
                return cli_usage_error("generate", "--prompt needs a text (write --prompt=TEXT "
                                                   "when TEXT starts with --)");
            prompt = v;
        } else if (cli_opt(argc, argv, &i, "max-new", &v)) {
            if (!cli_int("generate", "max-new", v, 0, &max_new)) return 2;
        } else if (cli_opt(argc, argv, &i, "top-k", &v)) {
            if (!cli_int("generate", "top-k", v, 0, &top_k)) return 2;
        } else if (cli_opt(argc, argv, &i, "seed", &v)) {
            if (!cli_int("generate", "seed", v, 0, &seed)) return 2;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("generate", "threads", v, 0, &threads)) return 2;
        } else if (cli_opt(argc, argv, &i, "temperature", &v)) {
            if (!cli_num("generate", "temperature", v, 0, 100, &temp)) return 2;
        } else if (cli_opt(argc, argv, &i, "top-p", &v)) {
            if (!cli_num("generate", "top-p", v, 1e-6, 1, &top_p)) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("generate", "unknown option %s", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            return cli_usage_error("generate", "more than one checkpoint given");
        }
    }
    if (!ckpt) return cli_usage_error("generate", "missing CKPT");
    if (!prompt || !prompt[0]) return cli_usage_error("generate", "missing --prompt TEXT");
    sl_set_threads((int)threads);
    sl_model m;
    sl_checkpoint ck;
    sl_charvocab vocab;
    if (sl_checkpoint_open(&ck, ckpt)) return cli_error("generate");
    sl_status st = sl_charvocab_from_meta(&vocab, ck.file.meta, ck.file.nmeta, ck.cfg.vocab_size,
                                          ckpt);
    if (!st) st = sl_model_create(&m, &ck.cfg);
    if (!st && (st = sl_checkpoint_restore(&ck, &m, NULL))) sl_model_free(&m);
    sl_checkpoint_close(&ck);
    if (st) return cli_error("generate");
    int rc = 0;
    /* ids: the prompt, then the last L tokens (sl_decoder_next): memory
     * does not grow with --max-new. */
    int64_t n = (int64_t)strlen(prompt), V = m.cfg.vocab_size, L = m.cfg.max_seq_len;
    int32_t *ids = malloc((size_t)(n > L ? n : L) * sizeof *ids);
    float *scratch = malloc((size_t)(2 * V) * sizeof *scratch);
    sl_decoder d = {0};
    if (!ids || !scratch) {
        sl_fail(SL_ERR_OOM, "out of memory for a prompt of %lld characters", (long long)n);
        rc = cli_error("generate");
    } else if (sl_charvocab_encode(&vocab, prompt, n, ids)) {
        fprintf(stderr, "seqlab generate: error: --prompt: %s of %s\n", sl_errmsg(), ckpt);
        rc = 1;
    }
    if (rc == 0 && n > L) { /* the prompt's last L characters */
        memmove(ids, ids + n - L, (size_t)L * sizeof *ids);
        n = L;
    }
    if (rc == 0 && (sl_decoder_init(&d, &m) || sl_decoder_prefill(&d, ids, n))) {
        rc = cli_error("generate");
    } else if (rc == 0) {
        sl_sampler s = {.temperature = (float)temp, .top_k = top_k, .top_p = (float)top_p};
        sl_rng_seed(&s.rng, (uint64_t)seed);
        fputs(prompt, stdout);
        for (int64_t k = 0; k < max_new && rc == 0; k++) {
            /* Ids past the vocabulary (vocab_size > its length) never occur
             * in training: they are never sampled. */
            int32_t id = sl_sample(&s, d.logits, vocab.n, scratch);
            putchar(vocab.bytes[id]);
            if (k + 1 < max_new && sl_decoder_next(&d, ids, &n, id)) rc = cli_error("generate");
        }
        putchar('\n');
    }
    sl_decoder_free(&d);
    free(ids);
    free(scratch);
    sl_model_free(&m);
    return rc;
}
