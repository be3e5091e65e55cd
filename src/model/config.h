/* The run configuration: model shape, mixer choice, training and data
 * settings. One flat JSON object; every key is listed once in the field
 * table of config.c, which drives parsing, type checks, `--key=value`
 * overrides, `seqlab train --help` and the copy stored in checkpoints. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdio.h>

#include "core/core.h"

#define SL_MAX_LAYERS 64
#define SL_NAME_LEN 32
#define SL_PATH_LEN 512

typedef struct sl_config {
    /* model */
    int64_t vocab_size; /* 0: taken from the data */
    int64_t d_model, n_layers, n_heads, d_ff, max_seq_len;
    char mixer[SL_NAME_LEN];
    char layer_mixers[SL_MAX_LAYERS][SL_NAME_LEN]; /* "" entries use `mixer` */
    int64_t n_layer_mixers;
    char pos[SL_NAME_LEN];  /* learned | rope | none */
    double rope_theta;
    char norm[SL_NAME_LEN]; /* layernorm | rmsnorm */
    double norm_eps;
    char mlp[SL_NAME_LEN];  /* gelu | swiglu | none */
    bool bias, tie_embeddings, causal;
    int64_t window;
    double dropout, init_std;
    /* recurrent mixers (linear attention, delta rule, SSD family) */
    int64_t chunk_size;              /* tokens per chunk of the chunkwise-parallel form */
    char feature_map[SL_NAME_LEN];   /* linear_attention: elu1 | relu | identity | taylor */
    bool normalize;                  /* linear_attention: divide by phi(q) . sum phi(k) */
    int64_t feature_dim;             /* linear_attention: q, k width per head; 0 = D/H */
    int64_t conv_size;               /* short causal depthwise conv kernel; 0 = none */
    int64_t block_size;              /* transnormer: tokens per DiagAttention block */
    bool decay;                      /* transnormer: per-head decay in NormAttention */
    /* training */
    int64_t seed, steps, batch_size, seq_len, grad_accum;
    double lr, min_lr, weight_decay, beta1, beta2, adam_eps, grad_clip;
    int64_t warmup_steps, eval_every, eval_batches, log_every, ckpt_every, threads;
    double time_limit; /* seconds; 0 = none. Stops early and still saves. */
    int64_t stop_step; /* stop after this many updates (-1: off), keeping the schedule of `steps` */
    char out_dir[SL_PATH_LEN];
    /* data */
    char task[SL_NAME_LEN]; /* text */
    char data[SL_PATH_LEN];
} sl_config;

void sl_config_defaults(sl_config *c);
/* Reads a JSON file over the defaults. Unknown keys and wrong types fail,
 * naming the file and key. */
sl_status sl_config_load(sl_config *c, const char *path);
/* Parses a JSON text (name is used in messages). */
sl_status sl_config_parse(sl_config *c, const char *json, const char *name);
/* Applies one "key=value" override (value parsed by the key's type). */
sl_status sl_config_set(sl_config *c, const char *key, const char *value);
/* Cross-field checks: heads divide d_model, positive sizes, known names. */
sl_status sl_config_validate(const sl_config *c);
/* The whole config as a JSON object text (malloc'd). */
char *sl_config_to_json(const sl_config *c);
/* The first model-shape key (vocab_size .. init_std) whose value differs
 * between a and b, or NULL: a resumed run may change training keys only. */
const char *sl_config_model_diff(const sl_config *a, const sl_config *b);
/* Name of the mixer of layer i. */
const char *sl_config_layer_mixer(const sl_config *c, int64_t i);
/* Prints every key, its type and default, for --help. */
void sl_config_print_keys(FILE *f);

#endif
