/* The model: embed -> blocks -> norm -> head.
 *
 * A block is pre-norm: x = x + drop(mixer(norm1(x))); x = x + drop(mlp(norm2(x))).
 * Tensor names follow docs/formats.md so any tool can map a checkpoint onto
 * its own model by name. */
#ifndef SL_MODEL_H
#define SL_MODEL_H

#include "mixers/mixer.h"
#include "model/config.h"

typedef struct sl_block {
    sl_tensor *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    sl_mixer mixer;
    sl_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b; /* absent when mlp = none */
} sl_block;

/* Mixers point at cfg inside the struct: never copy an sl_model by value. */
typedef struct sl_model {
    sl_config cfg;
    sl_task_io io; /* cfg's inputs and head */
    sl_params params;
    sl_tensor *embed;  /* embed.weight [V, D]; NULL for vector input */
    sl_tensor *in_w;   /* in.weight [D, n_in]; NULL for token input */
    sl_tensor *pos, *norm_w, *norm_b;
    sl_tensor *head;   /* head.weight [V or n_out, D]; NULL when tied (lm) */
    sl_tensor *head_b; /* head.bias [n_out]; NULL for lm */
    sl_block blocks[SL_MAX_LAYERS];
} sl_model;

/* Builds the model for a validated config (vocab_size must be set where
 * tokens are read or predicted; inputs and head resolved, see
 * sl_config_adopt_io) and allocates its parameters (zeros; see
 * sl_model_init_weights). */
sl_status sl_model_create(sl_model *m, const sl_config *cfg);
void sl_model_init_weights(sl_model *m, uint64_t seed);
void sl_model_free(sl_model *m);

/* tokens: [B*T] ids in [0, V) -> logits [B, T, V]. */
sl_tensor *sl_model_forward(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t B, int64_t T);
/* A packed batch: tokens [T] holding seqs->n sequences end to end (see
 * sl_seqs) -> logits [1, T, V], each sequence's exactly as if it ran alone
 * (positions restart at its first token; no mixer looks across a bound). */
sl_tensor *sl_model_forward_packed(sl_model *m, sl_ctx *ctx, const int32_t *tokens, int64_t T,
                                   const sl_seqs *seqs);
/* Mean next-token cross-entropy; targets: [B*T], -1 = ignored. Returns [1]. */
sl_tensor *sl_model_loss(sl_model *m, sl_ctx *ctx, const int32_t *tokens, const int32_t *targets,
                         int64_t B, int64_t T);

/* A batch's outputs: [R, V] logits (lm) or [R, n_out] (tag, regress) for
 * the R positions of *rows, whose per-position arrays line up with them,
 * or [B, n_out] (classify, from the pooled positions of each row). *rows
 * is b itself, or (some row shorter than T) its rows packed end to end
 * into one (B = 1, arena copies in ctx), so padding is never computed.
 * b->lengths NULL: every row is T long. */
sl_tensor *sl_model_forward_batch(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_batch *rows);
/* The loss of a batch ([1]): mean cross-entropy over counted targets (lm,
 * tag, classify) or MSE over counted positions' values (regress); the
 * outputs and their rows in *out and *rows when those are not NULL. An lm
 * or tag head runs only at the positions whose target counts, so *out
 * holds those rows and *rows their targets alone. */
sl_tensor *sl_model_batch_loss(sl_model *m, sl_ctx *ctx, const sl_batch *b, sl_tensor **out,
                               sl_batch *rows);

/* Refuses (SL_ERR_OOM naming `key`, the flag or config key that set B) a
 * training (train) or evaluation batch of B sequences of T tokens whose
 * ids, logits and activations, estimated per token, exceed this machine's
 * memory. */
sl_status sl_model_plan_batch(const sl_config *c, int64_t B, int64_t T, bool train,
                              const char *key);

/* Incremental decoding of one sequence: every mixer's state plus scratch. */
typedef struct sl_decoder {
    sl_model *m;
    float *state[SL_MAX_LAYERS];
    float *scratch, *logits;
    sl_ctx ctx;  /* arena for one prefill or step, reset before each */
    int64_t pos; /* tokens consumed so far */
    /* Decodes past max_seq_len: no learned positions, and every layer's
     * mixer streams (mixer.h), as windowed attention's ring cache does. */
    bool streams;
} sl_decoder;

sl_status sl_decoder_init(sl_decoder *d, sl_model *m);
void sl_decoder_free(sl_decoder *d);
/* Consumes a prompt in one batched forward (prefill); logits of its last
 * token end up in d->logits [V]. */
sl_status sl_decoder_prefill(sl_decoder *d, const int32_t *tokens, int64_t T);
/* Consumes one token with each mixer's step(); logits in d->logits [V]. */
sl_status sl_decoder_step(sl_decoder *d, int32_t token);
/* Forgets everything consumed: every state zeroed, pos = 0. */
void sl_decoder_reset(sl_decoder *d);
/* Consumes a sampled id: one step() while the context has room (always,
 * when d->streams), else a restart from the last (L + 1) / 2 tokens, id
 * included, in one prefill. ctx_ids: [max_seq_len], of which [0, *len)
 * are the last tokens d holds (*len == d->pos until a streaming decoder
 * passes max_seq_len; then *len stays max_seq_len), so generation needs
 * max_seq_len ids however long it runs. */
sl_status sl_decoder_next(sl_decoder *d, int32_t *ctx_ids, int64_t *len, int32_t id);

#endif
