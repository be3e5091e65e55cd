/* The run configuration: model shape, mixer choice, training and data
 * settings. One JSON object; every global key is listed once in the field
 * table of config.c, which drives parsing, type checks, `--key=value`
 * overrides, `seqlab train --help` and the copy stored in checkpoints.
 *
 * Mixers and tasks own their options (core/options.h, declared in their
 * vtables); the config only routes them, as settings kept as text until a
 * layer's options are resolved against its mixer's table:
 *   "mixer_options": {"attention": {"window": 64}}   every layer of that mixer
 *   "layer_mixers": ["attention", {"mixer": "attention", "window": 0}]
 *                                                    one layer's mixer and options
 *   "task_options": {"text": {"holdout_every": 20}}
 * and on the command line --attention.window=64, --layers.1.window=0,
 * --text.holdout_every=20. A layer's options are its mixer's defaults, then
 * the mixer-wide settings, then the layer's own; an override on the command
 * line (--NAME.option) also replaces the per-layer values the config gave
 * that option for NAME's layers. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdio.h>

#include "core/core.h"
#include "mixers/mixer.h"
#include "tasks/task.h"

#define SL_MAX_LAYERS 64
#define SL_NAME_LEN 32
#define SL_PATH_LEN 512
#define SL_MAX_SETTINGS (SL_MAX_LAYERS * SL_MAX_OPTS)

/* One option setting, as given. */
typedef struct sl_setting {
    char owner[SL_NAME_LEN]; /* a mixer or task name; "" for a layer's own */
    int64_t layer;           /* -1: every use of owner; else that layer's mixer */
    char key[SL_NAME_LEN];
    char value[SL_OPT_LEN];
    sl_opt_from from;
} sl_setting;

typedef struct sl_config {
    /* model */
    int64_t vocab_size; /* 0: taken from the data */
    int64_t d_model, n_layers, n_heads, d_ff, max_seq_len;
    char mixer[SL_NAME_LEN];
    char layer_mixers[SL_MAX_LAYERS][SL_NAME_LEN]; /* n_layer_mixers = 0: every layer `mixer` */
    int64_t n_layer_mixers;
    char pos[SL_NAME_LEN];  /* learned | rope | none */
    double rope_theta;
    char norm[SL_NAME_LEN]; /* layernorm | rmsnorm */
    double norm_eps;
    char mlp[SL_NAME_LEN];  /* gelu | swiglu | none */
    bool bias, tie_embeddings, causal;
    /* inputs and head (sl_task_io): "auto" and 0 take the task's */
    char input[SL_NAME_LEN]; /* tokens | vectors | both */
    int64_t n_in;
    char head[SL_NAME_LEN]; /* lm | tag | regress | classify */
    int64_t n_out;
    char pool[SL_NAME_LEN]; /* mean | last | first (classify) */
    double dropout, init_std;
    /* knobs several mixers share (sl_mixer_dims) */
    int64_t chunk_size; /* tokens per chunk of the chunkwise-parallel form */
    /* Training runs a longer sequence through each chunkable mixer in
     * chunks of this many tokens, recomputed in the backward
     * (mixers/recompute.h); 0 = never. */
    int64_t recompute_tokens;
    int64_t conv_size;  /* short causal depthwise conv kernel; 0 = none */
    /* mixer and task options, as given (see above) */
    sl_setting settings[SL_MAX_SETTINGS];
    int64_t n_settings;
    /* training */
    int64_t seed, steps, batch_size, seq_len, grad_accum;
    double lr, min_lr, weight_decay, beta1, beta2, adam_eps, grad_clip;
    int64_t max_skipped_steps; /* updates skipped in a row (NaN/Inf) before the run stops */
    int64_t warmup_steps, eval_every, eval_batches, log_every, ckpt_every, threads;
    double time_limit; /* seconds; 0 = none. Stops early and still saves. */
    int64_t stop_step; /* stop after this many updates (-1: off), keeping the schedule of `steps` */
    /* Early stop: a validation line whose metric stop_metric ("" = off)
     * reaches stop_at (>= or <=, sl_metric_direction) ends the run. */
    char stop_metric[SL_SCORE_NAME];
    double stop_at;
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
/* The same for a config stored in a checkpoint: also takes the flat keys
 * of checkpoints written before mixers owned their options ("window",
 * "feature_map", ...), giving each to every mixer that declares it. */
sl_status sl_config_parse_stored(sl_config *c, const char *json, const char *name);
/* Applies one "key=value" override (value parsed by the key's type);
 * "NAME.option" sets a mixer's or task's option, "layers.N.option" one
 * layer's. */
sl_status sl_config_set(sl_config *c, const char *key, const char *value);
/* Refuses what cJSON takes but JSON (RFC 8259) does not, or would read
 * silently wrong: a number with a leading zero (010) and a \u0000 escape.
 * name is used in messages. */
sl_status sl_json_check_lexemes(const char *json, const char *name);
/* Cross-field checks: heads divide d_model, positive sizes, known names,
 * every layer's and the task's options resolved. */
sl_status sl_config_validate(const sl_config *c);
/* The whole config as a JSON object text (malloc'd), with every layer's
 * resolved options written out ("layer_mixers" as objects, "task_options"
 * of the task): a checkpoint's stored config. NULL (sl_errmsg says why)
 * when the config does not validate or memory runs out. */
char *sl_config_to_json(const sl_config *c);
/* The first model-shape difference between a and b ("d_model", "layer 1
 * mixer", "layer 1 option 'window'"), or NULL: a resumed run may change
 * training keys only. Both must validate. */
const char *sl_config_model_diff(const sl_config *a, const sl_config *b);
/* Name of the mixer of layer i. */
const char *sl_config_layer_mixer(const sl_config *c, int64_t i);
/* Layer i's mixer, its dimensions and its resolved options. */
sl_status sl_config_layer(const sl_config *c, int64_t i, const sl_mixer_vtable **vt,
                          sl_mixer_dims *dims, sl_opts *opts);
/* The task's vtable and resolved options. */
sl_status sl_config_task(const sl_config *c, const sl_task_vtable **vt, sl_opts *opts);
/* The inputs and head c describes; "auto" (no task set it: a model built
 * alone, or a checkpoint from before these keys) reads tokens and predicts
 * the next one, pooling the last position. SL_ERR_CONFIG for an unknown
 * name. */
sl_status sl_config_io(const sl_config *c, sl_task_io *io);
/* "tokens", "vectors", "both"; "lm", "tag", "regress", "classify". */
const char *sl_input_name(sl_input_kind k);
const char *sl_head_name(sl_head_kind k);
/* Resolves c's "auto" and 0 inputs and head from io, the task's (named
 * `who` in messages), and refuses a value set otherwise than the task's;
 * pool may differ (a choice of the model). */
sl_status sl_config_adopt_io(sl_config *c, const sl_task_io *io, const char *who);
/* Prints every key, its type and default, then every mixer's and task's
 * options, for --help. */
void sl_config_print_keys(FILE *f);

#endif
