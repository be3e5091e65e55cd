/* In-context regression (Garg et al. 2022, "What Can Transformers Learn
 * In-Context?"; Bai et al. 2023, "Transformers as Statisticians"): each row
 * is one prompt x_1, [y_1, 0..0], x_2, [y_2, 0..0], ... of real vectors,
 * y_i = f(x_i) for a function f drawn per prompt, and the regress head
 * predicts y_i at x_i from the i - 1 labelled examples before it
 * (docs/tasks.md, "icl_regression" and "icl_mixture").
 *
 * The generator is a pure function of a seed, a dimension d and a number
 * of points p (the curriculum's at the training step). */
#ifndef SL_TASKS_ICL_H
#define SL_TASKS_ICL_H

#include "tasks/icl_baselines.h"
#include "tasks/task.h"

/* The function families; a prompt of icl_regression is SL_ICL_LINEAR with
 * unscaled targets. */
typedef enum { SL_ICL_LINEAR, SL_ICL_SPARSE, SL_ICL_RELU, SL_ICL_TREE, SL_ICL_FAMILIES } sl_icl_family;

#define SL_ICL_TREE_DEPTH 4 /* Garg's trees: 15 splits, 16 leaves */

/* d and p grow from their start by their increment every `every` training
 * steps up to their end; every = 0: the end from step 0. Validation and
 * test use the end. */
typedef struct sl_icl_curriculum {
    int64_t dims_start, dims_inc, dims;       /* dims: the end, and n_in */
    int64_t points_start, points_inc, points; /* points: the end; rows of 2 points */
    int64_t every;
} sl_icl_curriculum;

typedef struct sl_icl_opts {
    sl_icl_curriculum cur;
    bool unit; /* false: y = w . x (icl_regression); true: every family's targets of unit variance */
    double weight[SL_ICL_FAMILIES]; /* a family's chance is its weight over their sum */
    int64_t sparsity, hidden;       /* sparse: nonzero coordinates of w; relu: hidden units */
} sl_icl_opts;

/* The dimension *d and points *p of a batch of split at training step
 * `step` (held-out splits: the ends). */
void sl_icl_size(const sl_icl_curriculum *c, sl_split split, int64_t step, int64_t *d, int64_t *p);
/* Example `seed` with d <= o->cur.dims dimensions and p points, as row of
 * T >= 2p positions: vectors [T, o->cur.dims], values [T], mask [T]
 * (zero past 2p). *family (may be NULL) receives the prompt's family.
 * SL_ERR_OOM for the function's weights. */
sl_status sl_icl_example(const sl_icl_opts *o, uint64_t seed, int64_t d, int64_t p, int64_t T,
                         float *vectors, float *values, uint8_t *mask, int *family);
/* "linear", "sparse", "relu", "tree"; NULL out of range. */
const char *sl_icl_family_name(int family);

/* The shape of an open icl task's held-out batches (n_in = dims = the
 * option dims, points, norm: dims for icl_regression, 1 for icl_mixture,
 * whose targets are normalised already); false for any other task. */
bool sl_icl_task_shape(const sl_task *t, sl_icl_shape *out);
/* The family of row b of the last batch an open icl task made; -1 when t
 * is not one or b is not a row of that batch. */
int sl_icl_row_family(const sl_task *t, int64_t b);

#endif
