/* Mixer names -> vtables. */
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"

/* Every mixer, in the order `seqlab mixers` lists them. Adding one is one
 * line here: X(NAME) for the vtable sl_mixer_NAME its file defines. */
#define MIXERS(X)         \
    X(attention)          \
    X(linear_attention)   \
    X(retnet)             \
    X(gla)                \
    X(deltanet)           \
    X(gated_deltanet)     \
    X(mamba2)             \
    X(transnormer)        \
    X(mlstm)              \
    X(hgrn)               \
    X(ponet)              \
    X(hydra)              \
    X(s4d)                \
    X(h3)                \
    X(lstm)               \
    X(aaren)              \
    X(mamba)              \
    X(hyena)              \
    X(baseconv)           \
    X(lmu)

#define DECLARE(name) extern const sl_mixer_vtable sl_mixer_##name;
#define ENTRY(name) &sl_mixer_##name,
MIXERS(DECLARE)
static const sl_mixer_vtable *const REGISTRY[] = {MIXERS(ENTRY)};

size_t sl_mixer_count(void) { return sizeof REGISTRY / sizeof REGISTRY[0]; }

const sl_mixer_vtable *sl_mixer_at(size_t i) { return i < sl_mixer_count() ? REGISTRY[i] : NULL; }

const sl_mixer_vtable *sl_mixer_lookup(const char *name)
{
    for (size_t i = 0; i < sl_mixer_count(); i++)
        if (strcmp(REGISTRY[i]->name, name) == 0) return REGISTRY[i];
    return NULL;
}

sl_status sl_mixer_create(sl_mixer *m, const sl_mixer_vtable *vt, const sl_mixer_dims *dims,
                          const sl_opts *opts, int64_t layer, sl_params *p)
{
    memset(m, 0, sizeof *m);
    sl_require(opts->table.opt == vt->options.opt, "sl_mixer_create", "options of the mixer's table");
    m->vt = vt;
    m->dims = *dims;
    m->opts = *opts;
    m->layer = layer;
    if (dims->causal && vt->noncausal_only)
        return sl_fail(SL_ERR_CONFIG,
                       "config: layer %lld: mixer \"%s\" has only a non-causal form; set config "
                       "key 'causal' = false",
                       (long long)layer, vt->name);
    if (!dims->causal && !vt->bidirectional && !vt->noncausal_only)
        return sl_fail(SL_ERR_CONFIG,
                       "config: layer %lld: mixer \"%s\" has no bidirectional form (causal = "
                       "false); see `seqlab mixers`",
                       (long long)layer, vt->name);
    return vt->init(m, p);
}

void sl_mixer_destroy(sl_mixer *m)
{
    free(m->impl);
    m->impl = NULL;
}
