/* seqlab eval CKPT [--data FILE] [--split val|test|train] [--batches N]
 *                  [--batch-size N] [--seq-len N] [--TASK.option=value] */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#define MAX_TASK_OPTS 32

static void help(void)
{
    printf("usage: seqlab eval CKPT [--data FILE] [--split val|test|train] [--batches N]\n"
           "                  [--batch-size N] [--seq-len N] [--threads N]\n"
           "                  [--TASK.option=value ...]\n\n"
           "The task's metrics of a checkpoint on one split of its data (the data file\n"
           "from its config unless --data is given): the mean loss in nats, and bits per\n"
           "token (= bits per character for text) and accuracy for a next-token model,\n"
           "accuracy for a classifier, MSE and MAE for a regression head, then the\n"
           "task's own scores (docs/tasks.md); ignored targets and padding never count.\n"
           "A held-out split is read in order: its whole fixed set by default, or the\n"
           "first --batches batches of it. --seq-len evaluates at another length than\n"
           "the training one (induction heads at 2^20 after training at 256); a model\n"
           "with learned positions reaches max_seq_len at most. --TASK.option=value\n"
           "changes an option of the checkpoint's task (one that leaves the model's\n"
           "shape alone, such as an evaluation mode). Prints one JSON line on stdout;\n"
           "when the loss is NaN/Inf it reads \"loss\":null and the exit status is 1.\n");
}

typedef struct args {
    const char *ckpt, *data, *split;
    int64_t batches, bs, seq_len, threads;
    const char *keys[MAX_TASK_OPTS], *vals[MAX_TASK_OPTS];
    int n;
} args;

/* Reads argv into a; -1 to go on, else the exit code. */
static int parse(int argc, char **argv, args *a)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "data", &v)) {
            if (!v) return cli_usage_error("eval", "--data needs a file");
            a->data = v;
        } else if (cli_opt(argc, argv, &i, "split", &v)) {
            a->split = v ? v : "";
        } else if (cli_opt(argc, argv, &i, "batches", &v)) {
            if (!cli_int_in("eval", "batches", v, 1, 1 << 20, &a->batches)) return 2;
        } else if (cli_opt(argc, argv, &i, "batch-size", &v)) {
            if (!cli_int_in("eval", "batch-size", v, 1, 1 << 20, &a->bs)) return 2;
        } else if (cli_opt(argc, argv, &i, "seq-len", &v)) {
            if (!cli_int_in("eval", "seq-len", v, 1, 1 << 24, &a->seq_len)) return 2;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("eval", "threads", v, 0, &a->threads)) return 2;
        } else if (strncmp(argv[i], "--", 2) == 0 && strchr(argv[i], '.') &&
                   strchr(argv[i], '=')) {
            if (a->n == MAX_TASK_OPTS)
                return cli_usage_error("eval", "more than %d --TASK.option=value options",
                                       MAX_TASK_OPTS);
            a->keys[a->n] = argv[i] + 2;
            a->vals[a->n++] = strchr(argv[i], '=') + 1;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("eval", "unknown option %s", argv[i]);
        } else if (!a->ckpt) {
            a->ckpt = argv[i];
        } else {
            return cli_usage_error("eval", "more than one checkpoint given");
        }
    }
    if (!a->ckpt) return cli_usage_error("eval", "missing CKPT");
    return -1;
}

/* cfg (the checkpoint's) with the run's flags: the data, batch size,
 * length and task options to evaluate with. */
static sl_status eval_config(sl_config *cfg, const args *a, const char *pos)
{
    if (a->data) snprintf(cfg->data, sizeof cfg->data, "%s", a->data);
    if (a->bs) cfg->batch_size = a->bs;
    if (a->seq_len) {
        if (strcmp(pos, "learned") == 0 && a->seq_len > cfg->max_seq_len)
            return sl_fail(SL_ERR_SHAPE,
                           "--seq-len %lld: the model's learned positions reach max_seq_len = %lld",
                           (long long)a->seq_len, (long long)cfg->max_seq_len);
        cfg->seq_len = a->seq_len;
    }
    const size_t tn = strlen(cfg->task);
    for (int k = 0; k < a->n; k++) {
        const char *key = a->keys[k];
        const size_t kn = (size_t)(strchr(key, '=') - key);
        char name[256];
        if (kn >= sizeof name || kn <= tn + 1 || strncmp(key, cfg->task, tn) != 0 || key[tn] != '.')
            return sl_fail(SL_ERR_ARG,
                           "--%.*s: only the checkpoint's task options change at evaluation "
                           "(--%s.option=value)",
                           (int)kn, key, cfg->task);
        memcpy(name, key, kn);
        name[kn] = '\0';
        sl_status st = sl_config_set(cfg, name, a->vals[k]);
        if (st) return st;
    }
    return SL_OK;
}

/* The JSON line on stdout and the human line on stderr. */
static void report(const sl_metrics *mt, const args *a, const sl_config *cfg, int64_t tokens)
{
    char json[256], text[160];
    sl_metrics_json(mt, json, sizeof json);
    sl_metrics_text(mt, text, sizeof text);
    /* JSON has no NaN: a non-finite value reads null. */
    printf("{\"split\":\"%s\",%s", a->split, json);
    sl_scores_json(&mt->task, stdout);
    printf(",\"tokens\":%lld}\n", (long long)tokens);
    if (!isfinite(sl_metrics_loss(mt))) return;
    fprintf(stderr, "%s split of %s: %s", a->split, cfg->data[0] ? cfg->data : cfg->task, text);
    sl_scores_text(&mt->task, stderr);
    fputc('\n', stderr);
}

int cmd_eval(int argc, char **argv)
{
    args a = {.split = "test"};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    sl_split sp = strcmp(a.split, "train") == 0 ? SL_SPLIT_TRAIN
                  : strcmp(a.split, "val") == 0 ? SL_SPLIT_VAL
                  : strcmp(a.split, "test") == 0 ? SL_SPLIT_TEST : (sl_split)-1;
    if ((int)sp < 0) return cli_usage_error("eval", "--split: expected train, val or test");
    sl_set_threads((int)a.threads);
    sl_model m;
    sl_checkpoint ck;
    if (sl_checkpoint_open(&ck, a.ckpt)) return cli_error("eval");
    sl_config cfg = ck.cfg;
    sl_task task;
    sl_status st = eval_config(&cfg, &a, ck.cfg.pos);
    if (!st)
        st = sl_model_plan_batch(&ck.cfg, cfg.batch_size, cfg.seq_len, false,
                                 a.bs ? "--batch-size" : "config key 'batch_size'");
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
    sl_metrics_init(&mt, task.io.head);
    st = sl_config_adopt_io(&cfg, &task.io, who);
    if (!st && task.vocab_size > cfg.vocab_size)
        st = sl_fail(SL_ERR_CONFIG, "%s: the task's data uses %lld token ids; the model embeds %lld",
                     who, (long long)task.vocab_size, (long long)cfg.vocab_size);
    if (!st) st = sl_evaluate(&m, &ctx, &task, sp, a.batches, cfg.batch_size, cfg.seq_len, &mt);
    if (!st) {
        report(&mt, &a, &cfg, mt.positions);
        const double loss = sl_metrics_loss(&mt);
        if (!isfinite(loss)) {
            sl_fail(SL_ERR_NUMERIC,
                    "%s: the %s loss is not finite (%g): the checkpoint's weights "
                    "hold NaN/Inf or overflow",
                    a.ckpt, a.split, loss);
            rc = cli_error("eval");
        } else {
            rc = 0;
        }
    } else {
        rc = cli_error("eval");
    }
    sl_metrics_free(&mt);
    sl_ctx_free(&ctx);
    sl_task_close(&task);
    sl_model_free(&m);
    return rc;
}
