/* Bursty few-shot classification (Chan et al. 2022, "Data Distributional
 * Properties Drive Emergent In-Context Learning in Transformers"), with
 * vectors for images: N exemplar-label pairs, then a query exemplar whose
 * label is the target (docs/tasks.md, "bursty_classification").
 *
 * A class is a fixed random prototype (from the task seed), an exemplar
 * its prototype plus Gaussian noise. Trained classes 0 .. K-1 are drawn
 * with Zipf weights (c + 1)^-a and keep label c; held-out classes K ..
 * K+H-1 only appear in the in-context evaluation, labelled afresh in each
 * sequence. A row is e_1 l_1 ... e_N l_N e_q: exemplars are vector
 * positions (token -1), labels are token ids in [0, K). */
#ifndef SL_TASKS_BURSTY_H
#define SL_TASKS_BURSTY_H

#include "core/core.h"

/* What a sequence is drawn as. Training draws TRAIN_DIST; validation and
 * test draw the task's `eval` option. */
typedef enum {
    SL_BURSTY_IN_CONTEXT, /* 2 held-out classes, N/2 exemplars each, random labels */
    SL_BURSTY_IN_WEIGHTS, /* the query's class (trained) absent from the context */
    SL_BURSTY_TRAIN_DIST  /* bursty with probability p_bursty, else iid */
} sl_bursty_mode;

typedef struct sl_bursty_opts {
    int64_t classes;  /* K trained classes, and labels */
    int64_t holdout;  /* H held-out classes */
    int64_t dim;      /* D reals per exemplar */
    int64_t context;  /* N exemplar-label pairs before the query */
    int64_t shots;    /* exemplars of each of the two classes of a bursty sequence */
    double noise;     /* standard deviation of an exemplar's noise, per component */
    double zipf;      /* a: class c is drawn with weight (c + 1)^-a */
    double p_bursty;  /* probability that a training sequence is bursty */
    sl_bursty_mode eval;
} sl_bursty_opts;

/* What every example shares, made once from the options and task seed. */
typedef struct sl_bursty {
    sl_bursty_opts o;
    double *proto; /* [K + H, D]: class c's prototype */
    double *cum;   /* [K]: running sums of the Zipf weights */
} sl_bursty;

/* SL_OK when o can make rows of length T (T >= 2N + 1); else SL_ERR_CONFIG
 * naming the option (or seq_len) and what it needs. */
sl_status sl_bursty_check(const sl_bursty_opts *o, int64_t T);
/* The prototypes of task seed `seed` and the Zipf sums; SL_ERR_OOM.
 * sl_bursty_free releases them. */
sl_status sl_bursty_init(sl_bursty *g, const sl_bursty_opts *o, uint64_t seed);
void sl_bursty_free(sl_bursty *g);
/* Example `seed` drawn as `mode`, in a row of T >= 2N + 1 positions:
 * tokens [T] (-1 at exemplars), vectors [T, D] (0 at labels), targets [T]
 * (-1 except the query's label at 2N); *len = 2N + 1, and the rest of the
 * row is padding (token 0, zeros, -1). classes (may be NULL): [N + 1], the
 * class of each exemplar, the query's last. */
void sl_bursty_example(const sl_bursty *g, sl_bursty_mode mode, uint64_t seed, int64_t T,
                       int32_t *tokens, float *vectors, int32_t *targets, int64_t *len,
                       int32_t *classes);

#endif
