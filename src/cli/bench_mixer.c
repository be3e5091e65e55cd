/* seqlab bench --mixer NAME: one mixer layer's forward + backward time and
 * peak activation memory over sequence lengths, the fitted exponent of time
 * in T, and step() latency per token near the start and the end of the
 * sequence (0 for a mixer with only a non-causal form, measured in it).
 * With --compare, tools/bench_mixers_torch.py runs the same layer and
 * chunked algorithm in PyTorch on the same thread count.
 *
 * --rounds N alternates the two N times per length (ours, PyTorch, ours,
 * ...): this machine's speed drifts by up to 1.5x over seconds to minutes,
 * so a ratio of two measurements taken minutes apart measures the drift as
 * much as the code. Each round's ratio pairs neighbouring measurements; the
 * speed-up reported is their median, and the times are the medians of the
 * rounds' medians. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mixers/mixer.h"
#include "mixers/recompute.h"
#include "model/config.h"
#include "ops/ops.h"

typedef struct point {
    int64_t T;
    double ms, peak_mb, step_us_start, step_us_end, torch_ms, speedup;
} point;

/* step(): 64 tokens from position 0 and 64 ending at T - 1 of x0: [T, D].
 * The state's contents do not change the work, so the second run starts
 * there. */
static void measure_step(sl_mixer *m, const float *x0, int64_t T, int64_t D, point *pt)
{
    float *state = calloc((size_t)m->vt->state_floats(m, T), sizeof(float));
    float *scratch = calloc((size_t)m->vt->scratch_floats(m, T), sizeof(float));
    float *yt = malloc((size_t)D * sizeof(float));
    if (!state || !scratch || !yt)
        sl_out_of_memory("seqlab bench: the decoding state",
                         (size_t)m->vt->state_floats(m, T) * sizeof(float));
    int64_t k = T < 64 ? T : 64;
    for (int pass = 0; pass < 2; pass++) {
        int64_t start = pass == 0 ? 0 : T - k;
        double t0 = sl_seconds();
        for (int64_t t = start; t < start + k; t++)
            m->vt->step(m, state, x0 + t * D, yt, t, scratch);
        double us = 1e6 * (sl_seconds() - t0) / (double)k;
        if (pass == 0) pt->step_us_start = us;
        else pt->step_us_end = us;
    }
    free(state);
    free(scratch);
    free(yt);
}

/* Median of reps forward + backward runs over x: [1, T, D]. */
static sl_status measure(const sl_config *c, int64_t reps, point *pt)
{
    sl_params p;
    sl_params_init(&p);
    snprintf(p.prefix, sizeof p.prefix, "mixer.");
    sl_mixer m = {0};
    const sl_mixer_vtable *vt;
    sl_mixer_dims dims;
    sl_opts opts;
    sl_status st = sl_config_layer(c, 0, &vt, &dims, &opts);
    if (st == SL_OK) st = sl_mixer_create(&m, vt, &dims, &opts, 0, &p);
    if (st == SL_OK) {
        /* x, dy, y and dx of [T, D], and step()'s state and scratch. */
        const int64_t T = c->max_seq_len;
        int64_t floats = sl_size_mul(4 * c->d_model, T);
        if (m.vt->step)
            floats = sl_size_add(floats, sl_size_add(m.vt->state_floats(&m, T),
                                                     m.vt->scratch_floats(&m, T)));
        st = sl_mem_check(sl_size_mul(floats, sizeof(float)),
                          "--seq %lld --d-model %lld: the %s layer's inputs, outputs and "
                          "decoding state", (long long)T, (long long)c->d_model, vt->name);
    }
    if (st == SL_OK) st = sl_params_finalize(&p);
    if (st) {
        sl_mixer_destroy(&m);
        sl_params_free(&p);
        return st;
    }
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_params_randomize(&p, &rng);
    int64_t T = c->max_seq_len, D = c->d_model;
    float *x0 = malloc((size_t)(T * D) * sizeof(float)), *dy = malloc((size_t)(T * D) * sizeof(float));
    for (int64_t i = 0; i < T * D; i++) {
        x0[i] = sl_rng_normal(&rng);
        dy[i] = sl_rng_normal(&rng);
    }
    sl_ctx ctx;
    sl_ctx_init(&ctx, 0);
    double best[64];
    int64_t n = reps < 64 ? reps : 64;
    for (int64_t r = -1; r < n; r++) {
        sl_ctx_reset(&ctx);
        sl_params_zero_grad(&p);
        sl_tensor *x = SL_NEW(&ctx, 1, T, D);
        memcpy(x->data, x0, (size_t)(T * D) * sizeof(float));
        x->requires_grad = true;
        double t0 = sl_seconds();
        sl_tensor *y = c->recompute_tokens > 0 && T > c->recompute_tokens && sl_mixer_chunkable(&m)
                           ? sl_mixer_recompute(&ctx, &m, x, c->recompute_tokens)
                           : m.vt->forward(&m, &ctx, x, NULL, 0, NULL);
        sl_backward_with(&ctx, y, dy);
        if (r >= 0) best[r] = 1000 * (sl_seconds() - t0);
    }
    pt->ms = cli_median(best, n);
    pt->peak_mb = (double)sl_ctx_peak(&ctx) / (1 << 20);
    /* The activations go before the decoding state comes (a long
     * convolution's history at T = 1M is gigabytes of its own). */
    sl_ctx_free(&ctx);
    if (m.vt->step) measure_step(&m, x0, T, D, pt);
    free(x0);
    free(dy);
    sl_mixer_destroy(&m);
    sl_params_free(&p);
    return SL_OK;
}


/* PyTorch's time for the same layer, or 0 when it cannot run. */
static double torch_ms(const char *name, const sl_config *c, int64_t reps)
{
    char cmd[512], line[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/bench_mixers_torch.py --mixer %s --seq %lld --d-model %lld "
             "--heads %lld --chunk %lld --threads %d --reps %lld 2>/dev/null",
             name, (long long)c->max_seq_len, (long long)c->d_model, (long long)c->n_heads,
             (long long)c->chunk_size, sl_get_threads(), (long long)reps);
    FILE *p = popen(cmd, "r");
    double ms = 0;
    while (p && fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "\"ms\":");
        if (line[0] == '{' && k) ms = strtod(k + 5, NULL);
    }
    int rc = p ? pclose(p) : -1;
    if (rc != 0 || ms <= 0) {
        fprintf(stderr, "seqlab bench: the PyTorch comparison failed (tools/bench_mixers_torch.py "
                        "exit status %d; is python3-torch installed? `make bench` installs it)\n", rc);
        ms = 0;
    }
    return ms;
}

/* pt: one length over rounds (at most 64): ours, then PyTorch's when
 * compare, alternately. torch_ms and speedup stay 0 if PyTorch failed. */
static sl_status measure_rounds(const char *name, const sl_config *c, int64_t reps, int64_t rounds,
                                bool compare, point *pt)
{
    double ours[64], torch[64], ratio[64];
    int64_t n = rounds < 64 ? rounds : 64, ok = 0;
    for (int64_t r = 0; r < n; r++) {
        point p = *pt;
        sl_status st = measure(c, reps, &p);
        if (st) return st;
        if (r == 0) *pt = p;
        ours[r] = p.ms;
        torch[r] = compare ? torch_ms(name, c, reps) : 0;
        if (torch[r] > 0) ratio[ok++] = torch[r] / p.ms;
    }
    pt->ms = cli_median(ours, n);
    if (compare && ok == n) {
        pt->torch_ms = cli_median(torch, n);
        pt->speedup = cli_median(ratio, n);
    }
    return SL_OK;
}

int bench_mixer(const char *name, const int64_t *Ts, int nT, int64_t D, int64_t H, int64_t reps,
                int64_t rounds, int64_t recompute, bool compare)
{
    point pts[16];
    printf("seqlab bench --mixer %s: d_model %lld, %lld heads, batch 1, %d threads, %lld rounds\n",
           name, (long long)D, (long long)H, sl_get_threads(), (long long)rounds);
    printf("%8s %12s %10s %14s %14s%s\n", "T", "fwd+bwd ms", "peak MB", "step us @0",
           "step us @T-1", compare ? "   PyTorch ms  speed-up" : "");
    for (int i = 0; i < nT; i++) {
        sl_config c;
        sl_config_defaults(&c);
        c.d_model = D;
        c.n_heads = H;
        c.n_layers = 1;
        c.max_seq_len = c.seq_len = Ts[i];
        c.recompute_tokens = recompute;
        snprintf(c.mixer, sizeof c.mixer, "%s", name);
        const sl_mixer_vtable *vt = sl_mixer_lookup(name);
        c.causal = !(vt && vt->noncausal_only);
        if (sl_config_validate(&c)) return cli_error("bench");
        point *pt = &pts[i];
        memset(pt, 0, sizeof *pt);
        pt->T = Ts[i];
        if (measure_rounds(name, &c, reps, rounds, compare, pt)) return cli_error("bench");
        printf("%8lld %12.2f %10.1f %14.1f %14.1f", (long long)pt->T, pt->ms, pt->peak_mb,
               pt->step_us_start, pt->step_us_end);
        if (compare && pt->torch_ms > 0) printf(" %12.2f %8.2fx", pt->torch_ms, pt->speedup);
        else if (compare) printf(" %12s", "n/a");
        printf("\n");
        fflush(stdout);
    }
    /* Least-squares slope of log time against log T. */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < nT; i++) {
        double lx = log((double)pts[i].T), ly = log(pts[i].ms);
        sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
    }
    double slope = nT > 1 ? (nT * sxy - sx * sy) / (nT * sxx - sx * sx) : 0;
    if (nT > 1) printf("time ~ T^%.2f\n", slope);
    for (int i = 0; i < nT; i++)
        printf("{\"mixer\":\"%s\",\"seq\":%lld,\"threads\":%d,\"rounds\":%lld,\"ms\":%.3f,"
               "\"peak_mb\":%.2f,\"step_us_start\":%.2f,\"step_us_end\":%.2f,\"torch_ms\":%.3f,"
               "\"speedup\":%.3f,\"exponent\":%.3f}\n",
               name, (long long)pts[i].T, sl_get_threads(), (long long)rounds, pts[i].ms,
               pts[i].peak_mb, pts[i].step_us_start, pts[i].step_us_end, pts[i].torch_ms,
               pts[i].speedup, slope);
    return 0;
}
