/* The public API's handle: loading a checkpoint with its vocabulary and
 * metadata, text <-> ids, errors. The status codes are sl_status's. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "train/checkpoint.h"

_Static_assert(SEQLAB_ERR_IO == (int)SL_ERR_IO && SEQLAB_ERR_ARG == (int)SL_ERR_ARG &&
                   SEQLAB_ERR_OOM == (int)SL_ERR_OOM,
               "seqlab_status mirrors sl_status");

const char *seqlab_version(void) { return SEQLAB_VERSION; }
const char *seqlab_errmsg(void) { return sl_errmsg(); }
void seqlab_set_threads(int n) { sl_set_threads(n); }

/* Copies f's metadata into m (keys and values alternating). */
static sl_status copy_meta(seqlab_model *m, const sl_st_file *f, const char *path)
{
    m->meta = calloc(2 * f->nmeta + 1, sizeof *m->meta);
    if (!m->meta) return sl_fail(SL_ERR_OOM, "%s: out of memory for the metadata", path);
    for (size_t i = 0; i < f->nmeta; i++) {
        m->meta[2 * i] = strdup(f->meta[i].key);
        m->meta[2 * i + 1] = strdup(f->meta[i].value);
        m->nmeta = i + 1;
        if (!m->meta[2 * i] || !m->meta[2 * i + 1])
            return sl_fail(SL_ERR_OOM, "%s: out of memory for the metadata", path);
    }
    return SL_OK;
}

static void free_meta(seqlab_model *m)
{
    for (size_t i = 0; i < 2 * m->nmeta; i++) free(m->meta[i]);
    free(m->meta);
}

seqlab_status seqlab_load(const char *path, seqlab_model **out)
{
    *out = NULL;
    sl_checkpoint ck;
    sl_status st = sl_checkpoint_open(&ck, path);
    if (st) return (seqlab_status)st;
    seqlab_model *m = calloc(1, sizeof *m);
    if (!m) {
        sl_checkpoint_close(&ck);
        return (seqlab_status)sl_fail(SL_ERR_OOM, "out of memory for a model handle");
    }
    sl_ctx_init(&m->ctx, 0);
    m->ctx.grad_enabled = false;
    m->ctx.training = false;
    const sl_st_file *f = &ck.file;
    if (sl_st_meta_find(f, SL_VOCAB_KEY))
        st = sl_charvocab_from_meta(&m->vocab, f->meta, f->nmeta, ck.cfg.vocab_size, path);
    if (!st) st = copy_meta(m, f, path);
    if (!st) st = sl_model_create(&m->model, &ck.cfg);
    if (!st && (st = sl_checkpoint_restore(&ck, &m->model, NULL))) sl_model_free(&m->model);
    sl_checkpoint_close(&ck);
    if (st) {
        free_meta(m);
        sl_ctx_free(&m->ctx);
        free(m);
        return (seqlab_status)st;
    }
    *out = m;
    return SEQLAB_OK;
}

void seqlab_free(seqlab_model *m)
{
    if (!m) return;
    free_meta(m);
    sl_ctx_free(&m->ctx);
    sl_model_free(&m->model);
    free(m);
}

int64_t seqlab_vocab_size(const seqlab_model *m) { return m->model.cfg.vocab_size; }
int64_t seqlab_max_seq_len(const seqlab_model *m) { return m->model.cfg.max_seq_len; }
const char *seqlab_vocab(const seqlab_model *m) { return m->vocab.bytes; }

const char *seqlab_metadata(const seqlab_model *m, const char *key)
{
    for (size_t i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta[2 * i], key) == 0) return m->meta[2 * i + 1];
    return NULL;
}

seqlab_status seqlab_encode(const seqlab_model *m, const char *text, int64_t n, int32_t *ids)
{
    if (!m->vocab.n)
        return (seqlab_status)sl_fail(SL_ERR_ARG, "the checkpoint has no character vocabulary");
    return (seqlab_status)sl_charvocab_encode(&m->vocab, text, n, ids);
}

seqlab_status seqlab_decode(const seqlab_model *m, const int32_t *ids, int64_t n, char *text)
{
    const int64_t V = m->vocab.n;
    if (!V) return (seqlab_status)sl_fail(SL_ERR_ARG, "the checkpoint has no character vocabulary");
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= V)
            return (seqlab_status)sl_fail(SL_ERR_ARG, "token id %d at %lld: expected 0 .. %lld",
                                          (int)ids[i], (long long)i, (long long)(V - 1));
        text[i] = m->vocab.bytes[ids[i]];
    }
    text[n] = '\0';
    return SEQLAB_OK;
}
