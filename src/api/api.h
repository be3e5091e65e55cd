/* The handle behind include/seqlab.h's opaque seqlab_model, for the
 * library's own tests (tests/test_api.c reads its context and model). */
#ifndef SL_API_H
#define SL_API_H

#include "seqlab.h"
#include "model/model.h"

struct seqlab_model {
    sl_model model;
    sl_ctx ctx;      /* inference mode: grad_enabled and training false */
    char vocab[257]; /* token id i is the byte vocab[i] */
    char **meta;     /* key, value, key, value, ... of the checkpoint's __metadata__ */
    size_t nmeta;
};

#endif
