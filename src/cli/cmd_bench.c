/* seqlab bench: training-step speed at the nanoGPT character shape, with
 * the GEMM floor of the same step and, with --compare, PyTorch's step from
 * tools/bench_torch.py on the same thread count. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/model.h"
#include "ops/ops.h"
#include "train/optim.h"

static void bench_config(sl_config *c)
{
    sl_config_defaults(c);
    c->vocab_size = 65;
    c->n_layers = 6;
    c->d_model = 384;
    c->n_heads = 6;
    c->max_seq_len = 256;
    c->seq_len = 256;
    c->batch_size = 16;
    c->steps = 1000;
    c->warmup_steps = 10;
}

/* Every GEMM of one training step, as separate sgemm calls: per linear
 * layer y = x W^T, dx = dy W, dW = dy^T x; attention as PyTorch does it,
 * full T x T score matrices (QK^T, PV forward; dP, dV, dQ, dK backward). */
static double gemm_floor(const sl_config *c, int reps)
{
    int64_t BT = c->batch_size * c->seq_len, D = c->d_model, F = 4 * D, V = c->vocab_size;
    int64_t T = c->seq_len, dh = D / c->n_heads, BH = c->batch_size * c->n_heads;
    struct { int64_t in, out, times; } lin[] = {
        {D, 3 * D, c->n_layers}, {D, D, c->n_layers}, {D, F, c->n_layers}, {F, D, c->n_layers},
        {D, V, 1},
    };
    size_t big = (size_t)(BT * F > BT * 3 * D ? BT * F : BT * 3 * D);
    float *x = calloc(big, 4), *y = calloc(big, 4), *w = calloc((size_t)(F * D), 4);
    float *q = calloc((size_t)(T * dh), 4);
    int nt = sl_get_threads();
    float *ss = calloc((size_t)(nt * T * T), 4), *oo = calloc((size_t)(nt * T * dh), 4);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = sl_seconds();
        for (size_t k = 0; k < sizeof lin / sizeof lin[0]; k++)
            for (int64_t l = 0; l < lin[k].times; l++) {
                int64_t in = lin[k].in, out = lin[k].out;
                sl_gemm(false, true, BT, out, in, x, w, 0, y);
                sl_gemm(false, false, BT, in, out, y, w, 0, x);
                sl_gemm(true, false, out, in, BT, y, x, 0, w);
            }
#pragma omp parallel for
        for (int64_t i = 0; i < c->n_layers * BH; i++) {
            int t = omp_get_thread_num();
            float *s = ss + (size_t)t * (size_t)(T * T), *o = oo + (size_t)t * (size_t)(T * dh);
            sl_gemm(false, true, T, T, dh, q, q, 0, s);  /* S = Q K^T */
            sl_gemm(false, false, T, dh, T, s, q, 0, o); /* O = P V */
            sl_gemm(false, true, T, T, dh, q, q, 0, s);  /* dP = dO V^T */
            sl_gemm(true, false, T, dh, T, s, q, 0, o);  /* dV = P^T dO */
            sl_gemm(false, false, T, dh, T, s, q, 0, o); /* dQ = dS K */
            sl_gemm(true, false, T, dh, T, s, q, 0, o);  /* dK = dS^T Q */
        }
        double t = sl_seconds() - t0;
        if (t < best) best = t;
    }
    free(x), free(y), free(w), free(q), free(ss), free(oo);
    return best;
}

static void help(void)
{
    printf("usage: seqlab bench [--threads N] [--steps N] [--compare]\n\n"
           "Times full training steps (forward, loss, backward, clip, AdamW) of the nanoGPT\n"
           "character shape: 6 layers, d_model 384, 6 heads, context 256, vocab 65,\n"
           "batch 16, fp32. Prints the median ms/step, tokens/s and achieved GFLOP/s with\n"
           "FLOPs = 6 * params * tokens + 12 * layers * batch * T^2 * d_model (attention:\n"
           "QK^T and PV, x3 for forward + backward, no causal discount), and the GEMM floor: the step's GEMMs alone as OpenBLAS\n"
           "sgemm calls. --compare also runs tools/bench_torch.py (PyTorch, same threads).\n\n"
           "       seqlab bench --mixer NAME [--seq 1024,4096,16384,65536] [--d-model 256]\n"
           "                    [--heads 4] [--reps 3] [--rounds 1] [--threads N] [--compare]\n"
           "                    [--recompute 16384]\n\n"
           "One mixer layer on x: [1, T, d_model]: median forward + backward ms, peak\n"
           "activation memory (the arenas' high-water mark), step() latency per token\n"
           "near position 0 and near T - 1, and the exponent of a least-squares fit of\n"
           "time against T. --compare runs tools/bench_mixers_torch.py (the same layer\n"
           "and chunked algorithm in PyTorch) on the same thread count. --rounds N\n"
           "alternates seqlab and PyTorch N times per length and reports the median of\n"
           "the rounds' ratios, so that drift in the machine's speed between the two\n"
           "measurements cancels. --recompute N runs sequences longer than N tokens in\n"
           "chunks of N, recomputed in the backward, as training does (config key\n"
           "recompute_tokens, same default); 0 keeps every activation.\n");
}

int cmd_bench(int argc, char **argv)
{
    sl_config c;
    sl_config_defaults(&c);
    int64_t threads = 0, steps = 10, D = 256, H = 4, reps = 3, rounds = 1;
    int64_t recompute = c.recompute_tokens;
    int64_t Ts[16] = {1024, 4096, 16384, 65536};
    int nT = 4;
    bool compare = false;
    const char *v, *mixer = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("bench", "threads", v, 0, &threads)) return 2;
        } else if (cli_opt(argc, argv, &i, "steps", &v)) {
            if (!cli_int_in("bench", "steps", v, 1, 1 << 20, &steps)) return 2;
        } else if (cli_opt(argc, argv, &i, "mixer", &v)) {
            if (!v) return cli_usage_error("bench", "--mixer needs a name");
            mixer = v;
        } else if (cli_opt(argc, argv, &i, "seq", &v)) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v ? v : "");
            nT = 0;
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && nT < 16;
                 tok = strtok_r(NULL, ",", &save))
                if (!cli_int_in("bench", "seq", tok, 1, 1 << 24, &Ts[nT++])) return 2;
            if (nT == 0) return cli_usage_error("bench", "--seq needs lengths, e.g. 1024,4096");
        } else if (cli_opt(argc, argv, &i, "d-model", &v)) {
            if (!cli_int_in("bench", "d-model", v, 1, 1 << 16, &D)) return 2;
        } else if (cli_opt(argc, argv, &i, "heads", &v)) {
            if (!cli_int_in("bench", "heads", v, 1, 1 << 16, &H)) return 2;
        } else if (cli_opt(argc, argv, &i, "reps", &v)) {
            if (!cli_int("bench", "reps", v, 1, &reps)) return 2;
        } else if (cli_opt(argc, argv, &i, "rounds", &v)) {
            if (!cli_int("bench", "rounds", v, 1, &rounds)) return 2;
        } else if (cli_opt(argc, argv, &i, "recompute", &v)) {
            if (!cli_int_in("bench", "recompute", v, 0, 1 << 24, &recompute)) return 2;
        } else if (cli_flag(argv[i], "compare")) {
            compare = true;
        } else {
            return cli_usage_error("bench", "unknown option %s", argv[i]);
        }
    }
    sl_set_threads((int)threads);
    if (mixer) return bench_mixer(mixer, Ts, nT, D, H, reps, rounds, recompute, compare);
    bench_config(&c);
    sl_model m;
    if (sl_model_create(&m, &c)) return cli_error("bench");
    sl_model_init_weights(&m, 1);
    int64_t B = c.batch_size, T = c.seq_len, n = B * T;
    int32_t *tok = malloc((size_t)n * 2 * sizeof *tok), *tgt = tok + n;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    for (int64_t i = 0; i < 2 * n; i++) tok[i] = (int32_t)sl_rng_below(&rng, (uint64_t)c.vocab_size);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 64u << 20);
    double *ms = malloc((size_t)steps * sizeof *ms), loss = 0;
    for (int64_t s = -2; s < steps; s++) {
        double t0 = sl_seconds();
        sl_params_zero_grad(&m.params);
        sl_ctx_reset(&ctx);
        sl_tensor *l = sl_model_loss(&m, &ctx, tok, tgt, B, T);
        sl_backward(&ctx, l);
        sl_clip_grad(&m.params, c.grad_clip);
        sl_adamw_step(&m.params, &c, s + 2, sl_lr_at(&c, s + 2));
        loss = l->data[0];
        if (s >= 0) ms[s] = 1000 * (sl_seconds() - t0);
    }
    double med = cli_median(ms, steps), params = (double)sl_params_numel(&m.params);
    double flops = 6 * params * (double)n + 12.0 * (double)(c.n_layers * B * T * T * c.d_model);
    double floor_ms = 1000 * gemm_floor(&c, 3);
    int nt = sl_get_threads();
    printf("seqlab bench: nanoGPT char shape, %.2fM params, %d threads, %lld steps (loss %.3f)\n",
           params / 1e6, nt, (long long)steps, loss);
    printf("  %.1f ms/step  %.0f tokens/s  %.1f GFLOP/s\n", med, (double)n / (med / 1000),
           flops / (med / 1000) / 1e9);
    printf("  GEMM floor %.1f ms (the step's GEMMs alone); step / floor = %.2f\n", floor_ms,
           med / floor_ms);
    double torch_ms = 0;
    if (compare) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/bench_torch.py --threads %d --steps %lld",
                 nt, (long long)steps);
        FILE *p = popen(cmd, "r");
        char line[4096];
        while (p && fgets(line, sizeof line, p)) {
            const char *k = strstr(line, "\"ms_per_step\":");
            if (line[0] == '{' && k) torch_ms = strtod(k + 14, NULL);
        }
        int rc = p ? pclose(p) : -1;
        if (rc != 0 || torch_ms <= 0)
            fprintf(stderr, "seqlab bench: PyTorch comparison failed (is python3-torch installed?)\n");
        else
            printf("  PyTorch %.1f ms/step at %d threads; seqlab is %.2fx faster\n", torch_ms, nt,
                   torch_ms / med);
    }
    printf("{\"threads\":%d,\"ms_per_step\":%.2f,\"tokens_per_s\":%.1f,\"gflops\":%.2f,"
           "\"gemm_floor_ms\":%.2f,\"torch_ms_per_step\":%.2f}\n",
           nt, med, (double)n / (med / 1000), flops / (med / 1000) / 1e9, floor_ms, torch_ms);
    free(ms);
    free(tok);
    sl_ctx_free(&ctx);
    sl_model_free(&m);
    return 0;
}
