/* Metrics of a split: accumulation and formatting. */
#include <math.h>
#include <string.h>

#include "train/metrics.h"

void sl_metrics_init(sl_metrics *mt, sl_head_kind head)
{
    memset(mt, 0, sizeof *mt);
    mt->head = head;
    sl_scores_init(&mt->task);
}

void sl_metrics_free(sl_metrics *mt) { sl_scores_free(&mt->task); }

void sl_metrics_add(sl_metrics *mt, double loss, const sl_tensor *out, const sl_batch *rows)
{
    mt->batches++;
    const int64_t R = sl_rows(out), C = sl_last(out), counted = mt->counted, values = mt->values;
    for (int64_t r = 0; r < R; r++) {
        const float *o = out->data + r * C;
        if (mt->head == SL_HEAD_REGRESS) {
            if (rows->mask && !rows->mask[r]) continue;
            for (int64_t j = 0; j < C; j++) {
                const double e = (double)o[j] - rows->values[r * C + j];
                mt->sq_sum += e * e;
                mt->abs_sum += fabs(e);
            }
            mt->values += C;
        } else if (rows->targets[r] >= 0) {
            mt->counted++;
            mt->correct += sl_argmax(o, C) == rows->targets[r];
        }
    }
    /* The batch's loss is a mean over its counted items: weighted by them,
     * the split's loss is the mean over all of its items, a short last
     * batch included. */
    const double w = (double)(mt->head == SL_HEAD_REGRESS ? mt->values - values : mt->counted - counted);
    if (w > 0) {
        mt->loss_sum += loss * w;
        mt->weight += w;
    }
}

double sl_metrics_loss(const sl_metrics *mt)
{
    return mt->weight > 0 ? mt->loss_sum / mt->weight : NAN;
}

/* One "name":value member, null when x is not finite; appended at *at. */
static void member(char *buf, size_t n, size_t *at, const char *name, double x)
{
    if (*at >= n) return;
    int k = isfinite(x) ? snprintf(buf + *at, n - *at, "%s\"%s\":%.6f", *at ? "," : "", name, x)
                        : snprintf(buf + *at, n - *at, "%s\"%s\":null", *at ? "," : "", name);
    *at += k > 0 ? (size_t)k : 0;
}

/* The derived metrics; NaN where nothing counted, and where the loss is
 * not finite (outputs with NaN have no meaningful argmax). */
static double accuracy(const sl_metrics *mt)
{
    return mt->counted && isfinite(sl_metrics_loss(mt)) ? (double)mt->correct / (double)mt->counted
                                                         : NAN;
}

static double mean_err(const sl_metrics *mt, double sum)
{
    return mt->values ? sum / (double)mt->values : NAN;
}

/* The head's metric names, in the order of its JSON. */
static const char *const *head_names(sl_head_kind head)
{
    static const char *const LM[] = {"loss", "bpc", "accuracy", NULL};
    static const char *const REG[] = {"loss", "mse", "mae", NULL};
    static const char *const CLS[] = {"loss", "accuracy", NULL};
    return head == SL_HEAD_LM ? LM : head == SL_HEAD_REGRESS ? REG : CLS;
}

bool sl_metrics_value(const sl_metrics *mt, const char *name, double *v)
{
    const double loss = sl_metrics_loss(mt);
    for (const char *const *h = head_names(mt->head); *h; h++) {
        if (strcmp(*h, name) != 0) continue;
        *v = strcmp(name, "loss") == 0       ? loss
             : strcmp(name, "bpc") == 0      ? loss / M_LN2
             : strcmp(name, "accuracy") == 0 ? accuracy(mt)
             : strcmp(name, "mse") == 0      ? mean_err(mt, mt->sq_sum)
                                             : mean_err(mt, mt->abs_sum);
        return true;
    }
    for (size_t k = 0; k < mt->task.n; k++)
        if (!mt->task.s[k].curve && strcmp(mt->task.s[k].name, name) == 0) {
            *v = sl_scores_mean(&mt->task, name, 0);
            return true;
        }
    return false;
}

void sl_metrics_json(const sl_metrics *mt, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (const char *const *h = head_names(mt->head); *h; h++) {
        double v;
        sl_metrics_value(mt, *h, &v);
        member(buf, n, &at, *h, v);
    }
}

void sl_metrics_names(const sl_metrics *mt, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (const char *const *h = head_names(mt->head); *h && at < n; h++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? ", " : "", *h);
    for (size_t k = 0; k < mt->task.n && at < n; k++)
        if (!mt->task.s[k].curve)
            at += (size_t)snprintf(buf + at, n - at, ", %s", mt->task.s[k].name);
}

void sl_metrics_text(const sl_metrics *mt, char *buf, size_t n)
{
    const double loss = sl_metrics_loss(mt);
    if (mt->head == SL_HEAD_REGRESS)
        snprintf(buf, n, "loss %.4f, mse %.4f, mae %.4f", loss, mean_err(mt, mt->sq_sum),
                 mean_err(mt, mt->abs_sum));
    else if (mt->head == SL_HEAD_LM)
        snprintf(buf, n, "loss %.4f, %.4f bits/token, accuracy %.4f", loss, loss / M_LN2,
                 accuracy(mt));
    else
        snprintf(buf, n, "loss %.4f, accuracy %.4f", loss, accuracy(mt));
}
