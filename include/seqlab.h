/* seqlab: sequence models in C11. Train, evaluate and run the Transformer
 * and its long-sequence competitors on a CPU.
 *
 * The library's API is its module headers; this umbrella pulls in the ones a
 * program needs to build a model from a config, train it, load and save
 * checkpoints, and decode. Compile with `pkg-config --cflags --libs seqlab`.
 *
 *   sl_config c; sl_config_defaults(&c); sl_config_load(&c, "cfg.json");
 *   sl_train(&c, NULL, NULL);                       train, write a checkpoint
 *   sl_model m; char vocab[257];
 *   sl_checkpoint_load("ckpt.safetensors", &m, vocab, NULL);
 *   sl_decoder d; sl_decoder_init(&d, &m); sl_decoder_prefill(&d, ids, n);
 *   sl_decoder_step(&d, id);                        logits in d.logits
 *
 * Every call that can fail returns an sl_status; sl_errmsg() says why. */
#ifndef SEQLAB_H
#define SEQLAB_H

#include "core/core.h"
#include "infer/sample.h"
#include "mixers/mixer.h"
#include "model/config.h"
#include "model/model.h"
#include "ops/ops.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/safetensors.h"
#include "train/trainer.h"

#endif
