/* The handle behind include/seqlab.h's opaque seqlab_model, for the
 * library's own tests (tests/test_api.c reads its context and model). */
#ifndef SL_API_H
#define SL_API_H

#include "seqlab.h"
#include "model/model.h"
#include "tasks/charvocab.h"

struct seqlab_model {
    sl_model model;
    sl_ctx ctx;      /* inference mode: grad_enabled and training false */
    sl_charvocab vocab; /* n = 0 when the checkpoint has none */
    char **meta;     /* key, value, key, value, ... of the checkpoint's __metadata__ */
    size_t nmeta;
};

#endif
