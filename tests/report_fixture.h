/* Inputs for `seqlab report` made in a temporary directory: a sweep laid
 * out as `seqlab sweep` writes it (sweep.json, summary.csv, best.csv,
 * runs/NAME/ with metrics.jsonl and result.json) and a `seqlab bench
 * --mixer` JSON Lines file. What each plot must then hold is counted in
 * tests/test_report.c. */
#ifndef SL_REPORT_FIXTURE_H
#define SL_REPORT_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The fake sweep: 2 mixers (one with characters HTML must escape) x 2
 * widths x 2 learning rates (best_over) x 2 cells (seq_len with
 * num_kv_pairs) = 16 runs. */
#define FX_MIXERS 2
#define FX_WIDTHS 2
#define FX_LRS 2
#define FX_CELLS 2
#define FX_RUNS (FX_MIXERS * FX_WIDTHS * FX_LRS * FX_CELLS)
#define FX_TRAIN_LINES 5 /* training lines per run */
#define FX_VAL_LINES 2   /* validation lines per run */
#define FX_ODD_MIXER "odd <m> & \\\"q\\\""   /* as written in JSON */
#define FX_ODD_MIXER_HTML "odd &lt;m&gt; &amp; &quot;q&quot;"

static const char *const FX_MIXER[FX_MIXERS] = {"attention", FX_ODD_MIXER};
static const int FX_WIDTH[FX_WIDTHS] = {16, 32};
static const double FX_LR[FX_LRS] = {0.01, 0.003};

static void fx_write(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* Test accuracy of a run: attention above the odd mixer, wider above
 * narrower, lr 0.01 above 0.003 on test; validation prefers lr 0.003, so
 * the plotted point (best over lr by validation) is the lr 0.003 run's. */
static double fx_test_acc(int m, int w, int l, int c)
{
    return 0.2 + 0.4 * (m == 0) + 0.2 * w + 0.1 * (l == 0) - 0.1 * c;
}

static double fx_val_acc(int m, int w, int l, int c)
{
    return fx_test_acc(m, w, l, c) + (l == 1 ? 0.15 : 0);
}

/* Run r's name and its indices. */
static void fx_run(int r, int *m, int *w, int *l, int *c, char *name, size_t n)
{
    *m = r / (FX_WIDTHS * FX_LRS * FX_CELLS);
    *w = r / (FX_LRS * FX_CELLS) % FX_WIDTHS;
    *l = r / FX_CELLS % FX_LRS;
    *c = r % FX_CELLS;
    snprintf(name, n, "%s-d%d-lr%g-c%d", *m == 0 ? "attention" : "odd", FX_WIDTH[*w], FX_LR[*l],
             *c);
}

/* dir/sw: the sweep. Run 0's result.json names it "r<0> & 'x'\xff" (a
 * name to escape, with a byte that is not UTF-8). Its test scores hold
 * err_by_k (one null), least_squares_by_k (the same in every run),
 * ridge_by_k (one per cell) and curve_x (no _by_). */
static void fx_sweep(const char *dir)
{
    char p[512], q[640];
    snprintf(p, sizeof p, "%s/sw", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sw/runs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sw/sweep.json", dir);
    fx_write(p,
             "{\"base\": \"configs/mqar.json\", \"out_dir\": \"sw\",\n"
             " \"grid\": {\"mixer\": [\"attention\", \"%s\"], \"d_model\": [16, 32],\n"
             "          \"lr\": [0.01, 0.003],\n"
             "          \"cell\": [{\"seq_len\": 16, \"mqar.num_kv_pairs\": 2},\n"
             "                   {\"seq_len\": 32, \"mqar.num_kv_pairs\": 4}]},\n"
             " \"set\": {\"steps\": 50}, \"target\": {\"metric\": \"val_accuracy\", \"value\": 0.99},\n"
             " \"best_over\": [\"lr\"], \"eval_split\": \"test\"}\n",
             FX_ODD_MIXER);
    snprintf(p, sizeof p, "%s/sw/summary.csv", dir);
    FILE *sum = fopen(p, "w");
    snprintf(p, sizeof p, "%s/sw/best.csv", dir);
    FILE *best = fopen(p, "w");
    const char *head = "name,mixer,d_model,lr,seq_len,mqar.num_kv_pairs,status,steps,wall_s,"
                       "stopped_early,val_loss,val_accuracy,test_loss,test_accuracy";
    fprintf(sum, "%s\n", head);
    fprintf(best, "%s,best_of\n", head);
    for (int r = 0; r < FX_RUNS; r++) {
        int m, w, l, c;
        char name[128];
        fx_run(r, &m, &w, &l, &c, name, sizeof name);
        snprintf(p, sizeof p, "%s/sw/runs/%s", dir, name);
        mkdir(p, 0755);
        snprintf(q, sizeof q, "%s/metrics.jsonl", p);
        FILE *f = fopen(q, "w");
        for (int s = 1; s <= FX_TRAIN_LINES; s++) {
            fprintf(f, "{\"step\":%d,\"loss\":%g,\"lr\":0.01,\"elapsed_s\":%d}\n", 10 * s,
                    3.0 / s + 0.01 * r, s);
            if (s % 2 == 0)
                fprintf(f, "{\"step\":%d,\"split\":\"val\",\"loss\":%g,\"accuracy\":%g}\n", 10 * s,
                        3.2 / s, fx_val_acc(m, w, l, c));
        }
        fclose(f);
        snprintf(q, sizeof q, "%s/result.json", p);
        const char *mixer = m == 0 ? "attention" : FX_ODD_MIXER;
        fx_write(q,
                 "{\"name\": \"%s\", \"status\": \"done\", \"steps\": 50, \"wall_s\": 1.5,\n"
                 " \"stopped_early\": false,\n"
                 " \"params\": {\"mixer\": \"%s\", \"d_model\": %d, \"lr\": %g, \"seq_len\": %d,\n"
                 "            \"mqar.num_kv_pairs\": %d},\n"
                 " \"val\": {\"loss\": 0.5, \"accuracy\": %g},\n"
                 " \"test\": {\"split\": \"test\", \"loss\": 0.5, \"accuracy\": %g,\n"
                 "   \"err_by_k\": [1, 0.5, null, 0.2, %g],\n"
                 "   \"least_squares_by_k\": [1, 0.4, 0.2, 0.1, 0.05],\n"
                 "   \"ridge_by_k\": [1, 0.45, 0.25, 0.15, %g],\n"
                 "   \"curve_x\": [3, 2, 1], \"tokens\": 4096}}\n",
                 r == 0 ? "r<0> & 'x'\xff" : name, mixer, FX_WIDTH[w], FX_LR[l], 16 << c, 2 << c,
                 fx_val_acc(m, w, l, c), fx_test_acc(m, w, l, c), 0.1 / (r + 1), 0.1 + 0.01 * c);
        const char *csv_mixer = m == 0 ? "attention" : "\"odd <m> & \"\"q\"\"\"";
        char row[512];
        snprintf(row, sizeof row, "%s,%s,%d,%g,%d,%d,done,50,1.5,false,0.5,%g,0.5,%g", name,
                 csv_mixer, FX_WIDTH[w], FX_LR[l], 16 << c, 2 << c, fx_val_acc(m, w, l, c),
                 fx_test_acc(m, w, l, c));
        fprintf(sum, "%s\n", row);
        if (l == 1) fprintf(best, "%s,2\n", row);
    }
    fclose(sum);
    fclose(best);
}

/* dir/bench.jsonl: mixer "a" at T = 1024, 4096 (PyTorch measured) and
 * 16384 (not: torch_ms 0), its 4096 point given twice (the later
 * replaces the earlier); mixer "b<x>" at two lengths without torch_ms;
 * and a text line of the command's table, passed over. 3 time series (a,
 * a's PyTorch, b<x>) of 3 + 2 + 2 points, 2 memory series of 3 + 2. */
static void fx_bench(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/bench.jsonl", dir);
    fx_write(p,
             "       T   fwd+bwd ms    peak MB\n"
             "{\"mixer\":\"a\",\"seq\":1024,\"ms\":10,\"peak_mb\":5,\"torch_ms\":30}\n"
             "{\"mixer\":\"a\",\"seq\":4096,\"ms\":99,\"peak_mb\":20,\"torch_ms\":0}\n"
             "{\"mixer\":\"a\",\"seq\":4096,\"ms\":40,\"peak_mb\":20,\"torch_ms\":120}\n"
             "{\"mixer\":\"a\",\"seq\":16384,\"ms\":160,\"peak_mb\":80,\"torch_ms\":0}\n"
             "\n"
             "{\"mixer\":\"b<x>\",\"seq\":1024,\"ms\":5,\"peak_mb\":2}\n"
             "{\"mixer\":\"b<x>\",\"seq\":4096,\"ms\":21,\"peak_mb\":8}\n");
}

#endif
