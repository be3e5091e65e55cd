/* seqlab eval CKPT [--data FILE] [--split val|test|train] [--batches N] */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static void help(void)
{
    printf("usage: seqlab eval CKPT [--data FILE] [--split val|test|train] [--batches N]\n"
           "                  [--batch-size N] [--threads N]\n\n"
           "The task's metrics of a checkpoint on one split of its data (the data file\n"
           "from its config unless --data is given): the mean loss in nats, and bits per\n"
           "token (= bits per character for text) and accuracy for a next-token model,\n"
           "accuracy for a classifier, MSE and MAE for a regression head; ignored\n"
           "targets and padding never count. Prints one JSON line on stdout; when the\n"
           "loss is NaN/Inf it reads \"loss\":null and the exit status is 1.\n");
}

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *split = "test", *v;
    int64_t batches = 50, bs = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "data", &v)) {
            if (!v) return cli_usage_error("eval", "--data needs a file");
            data = v;
        } else if (cli_opt(argc, argv, &i, "split", &v)) {
            split = v ? v : "";
        } else if (cli_opt(argc, argv, &i, "batches", &v)) {
            if (!cli_int_in("eval", "batches", v, 1, 1 << 20, &batches)) return 2;
        } else if (cli_opt(argc, argv, &i, "batch-size", &v)) {
            if (!cli_int_in("eval", "batch-size", v, 1, 1 << 20, &bs)) return 2;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("eval", "threads", v, 0, &threads)) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("eval", "unknown option %s", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            return cli_usage_error("eval", "more than one checkpoint given");
        }
    }
    if (!ckpt) return cli_usage_error("eval", "missing CKPT");
    sl_split sp = strcmp(split, "train") == 0 ? SL_SPLIT_TRAIN
                  : strcmp(split, "val") == 0 ? SL_SPLIT_VAL
                  : strcmp(split, "test") == 0 ? SL_SPLIT_TEST : (sl_split)-1;
    if ((int)sp < 0) return cli_usage_error("eval", "--split: expected train, val or test");
    sl_set_threads((int)threads);
    sl_model m;
    sl_checkpoint ck;
    if (sl_checkpoint_open(&ck, ckpt)) return cli_error("eval");
    sl_config cfg = ck.cfg;
    if (data) snprintf(cfg.data, sizeof cfg.data, "%s", data);
    if (bs) cfg.batch_size = bs;
    sl_task task;
    sl_status st = sl_model_plan_batch(&ck.cfg, cfg.batch_size, cfg.seq_len, false,
                                       bs ? "--batch-size" : "config key 'batch_size'");
    if (!st) st = sl_model_create(&m, &ck.cfg);
    if (!st && (st = sl_checkpoint_restore(&ck, &m, NULL))) sl_model_free(&m);
    if (!st && (st = sl_task_from_config(&task, &cfg, &ck))) sl_model_free(&m);
    sl_checkpoint_close(&ck);
    if (st) return cli_error("eval");
    char who[SL_NAME_LEN + 16];
    snprintf(who, sizeof who, "task '%s'", cfg.task);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 16u << 20);
    sl_metrics mt;
    st = sl_config_adopt_io(&cfg, &task.io, who);
    if (!st) st = sl_evaluate(&m, &ctx, &task, sp, batches, cfg.batch_size, cfg.seq_len, &mt);
    if (st) {
        sl_ctx_free(&ctx);
        sl_task_close(&task);
        sl_model_free(&m);
        return cli_error("eval");
    }
    const double loss = sl_metrics_loss(&mt);
    long long tokens = (long long)(batches * cfg.batch_size * cfg.seq_len);
    char json[256], text[160];
    sl_metrics_json(&mt, json, sizeof json);
    sl_metrics_text(&mt, text, sizeof text);
    /* JSON has no NaN: a non-finite value reads null. */
    printf("{\"split\":\"%s\",%s,\"tokens\":%lld}\n", split, json, tokens);
    int rc = 0;
    if (isfinite(loss)) {
        fprintf(stderr, "%s split of %s: %s\n", split, cfg.data[0] ? cfg.data : cfg.task, text);
    } else {
        sl_fail(SL_ERR_NUMERIC,
                "%s: the %s loss is not finite (%g): the checkpoint's weights "
                "hold NaN/Inf or overflow",
                ckpt, split, loss);
        rc = cli_error("eval");
    }
    sl_ctx_free(&ctx);
    sl_task_close(&task);
    sl_model_free(&m);
    return rc;
}
