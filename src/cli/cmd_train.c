/* seqlab train CONFIG [--key=value ...] [--resume CKPT] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/config.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static void help(void)
{
    printf("usage: seqlab train [CONFIG.json] [--key=value ...] [--resume CKPT]\n"
           "       seqlab train --resume CKPT [--key=value ...]\n\n"
           "Trains a model. Settings: defaults < CONFIG < --key=value. Writes\n"
           "OUT_DIR/checkpoint.safetensors (weights, AdamW moments, step, RNG states) and\n"
           "OUT_DIR/metrics.jsonl (one JSON object per logged step). --resume continues a\n"
           "checkpoint bit-exactly (same thread count); only training keys may change.\n"
           "A progress bar (step, loss, tokens/s, ETA) goes to stderr when it is a terminal.\n"
           "\nconfig keys:\n");
    sl_config_print_keys(stdout);
}

int cmd_train(int argc, char **argv)
{
    const char *config = NULL, *resume = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        }
        if (cli_opt(argc, argv, &i, "resume", &v)) {
            if (!v) return cli_usage_error("train", "--resume needs a checkpoint path");
            resume = v;
        } else if (strncmp(argv[i], "--", 2) != 0) {
            if (config) return cli_usage_error("train", "more than one config file given");
            config = argv[i];
        }
    }
    sl_config cfg;
    sl_config_defaults(&cfg);
    if (resume && !config) {
        sl_checkpoint ck;
        if (sl_checkpoint_open(&ck, resume)) return cli_error("train");
        cfg = ck.cfg;
        sl_checkpoint_close(&ck);
    }
    if (config && sl_config_load(&cfg, config)) return cli_error("train");
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) continue;
        if (cli_opt(argc, argv, &i, "resume", &v)) continue;
        char key[64];
        const char *eq = strchr(argv[i] + 2, '=');
        size_t n = eq ? (size_t)(eq - argv[i] - 2) : strlen(argv[i] + 2);
        if (n >= sizeof key) return cli_usage_error("train", "option %s is too long", argv[i]);
        memcpy(key, argv[i] + 2, n);
        key[n] = '\0';
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return cli_usage_error("train", "--%s needs a value", key);
        if (sl_config_set(&cfg, key, val)) return cli_error("train");
    }
    if (sl_config_validate(&cfg)) return cli_error("train");
    double val = 0;
    if (sl_train(&cfg, resume, &val)) return cli_error("train");
    return 0;
}
