/* seqlab train CONFIG [--key=value ...] [--resume CKPT] [--overwrite] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/config.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static void help(void)
{
    printf("usage: seqlab train [CONFIG.json] [--key=value ...] [--resume CKPT] [--overwrite]\n"
           "       seqlab train --resume CKPT [--key=value ...]\n\n"
           "Trains a model. Settings: defaults < CONFIG < --key=value (or --key value).\n"
           "Writes OUT_DIR/checkpoint.safetensors (weights, AdamW moments, step, RNG states)\n"
           "and appends to OUT_DIR/metrics.jsonl (one JSON object per logged step). --resume\n"
           "continues a checkpoint bit-exactly (same thread count); only training keys may\n"
           "change. A fresh run refuses an OUT_DIR that holds a checkpoint unless --overwrite\n"
           "is given; one run at a time owns an OUT_DIR (OUT_DIR/seqlab.lock names its pid).\n"
           "An update whose loss, gradient or result is NaN/Inf is skipped and logged; the\n"
           "run stops (exit 1) after max_skipped_steps in a row. No checkpoint is written with\n"
           "a NaN/Inf in it. SIGINT or SIGTERM stops the run after the current step, saves a\n"
           "checkpoint and exits with 128 + the signal number (130, 143).\n"
           "A progress bar (step, loss, tokens/s, ETA) goes to stderr when it is a terminal.\n"
           "\nconfig keys:\n");
    sl_config_print_keys(stdout);
}

#define MAX_OVERRIDES 512

typedef struct args {
    const char *config, *resume;
    bool overwrite;
    const char *keys[MAX_OVERRIDES], *vals[MAX_OVERRIDES];
    size_t keylen[MAX_OVERRIDES];
    int n;
} args;

/* Reads argv into a: `--key=value` and `--key value` overrides (a separate
 * value may not start with "--"), --resume, --overwrite and one CONFIG.
 * Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, args *a)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (cli_flag(s, "help")) {
            help();
            return 0;
        }
        if (cli_flag(s, "overwrite")) {
            a->overwrite = true;
        } else if (strncmp(s, "--overwrite=", 12) == 0) {
            return cli_usage_error("train", "--overwrite takes no value, got \"%s\"", s);
        } else if (cli_opt(argc, argv, &i, "resume", &v)) {
            if (!v || !v[0]) return cli_usage_error("train", "--resume needs a checkpoint path");
            a->resume = v;
        } else if (strncmp(s, "--", 2) == 0) {
            const char *eq = strchr(s + 2, '=');
            size_t n = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            if (n == 0) return cli_usage_error("train", "%s: expected --key=value", s);
            if (a->n == MAX_OVERRIDES)
                return cli_usage_error("train", "more than %d --key=value options", MAX_OVERRIDES);
            if (!eq && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
                return cli_usage_error("train", "%s needs a value: write %s=VALUE or %s VALUE", s,
                                       s, s);
            a->keys[a->n] = s + 2;
            a->keylen[a->n] = n;
            a->vals[a->n++] = eq ? eq + 1 : argv[++i];
        } else if (s[0] == '-' && s[1]) {
            return cli_usage_error("train", "unknown option %s (options are --key=value)", s);
        } else if (a->config) {
            return cli_usage_error("train", "more than one config file given: %s and %s", a->config,
                                   s);
        } else {
            a->config = s;
        }
    }
    return -1;
}

int cmd_train(int argc, char **argv)
{
    static args a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    sl_config cfg;
    sl_config_defaults(&cfg);
    if (a.resume && !a.config) {
        sl_checkpoint ck;
        if (sl_checkpoint_open(&ck, a.resume)) return cli_error("train");
        cfg = ck.cfg;
        sl_checkpoint_close(&ck);
    }
    if (a.config && sl_config_load(&cfg, a.config)) return cli_error("train");
    for (int k = 0; k < a.n; k++) {
        char key[64];
        if (a.keylen[k] >= sizeof key)
            return cli_usage_error("train", "option --%.*s is too long", (int)a.keylen[k],
                                   a.keys[k]);
        memcpy(key, a.keys[k], a.keylen[k]);
        key[a.keylen[k]] = '\0';
        if (sl_config_set(&cfg, key, a.vals[k])) return cli_error("train");
    }
    if (sl_config_validate(&cfg)) return cli_error("train");
    double val = 0;
    sl_train_opts o = {.resume = a.resume, .overwrite = a.overwrite, .final_val = &val};
    if (sl_train_run(&cfg, &o) == SL_OK) return 0;
    if (o.signal) {
        fprintf(stderr, "seqlab train: %s\n", sl_errmsg());
        return 128 + o.signal;
    }
    return cli_error("train");
}
