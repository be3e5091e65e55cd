/* Gated per-head RMSNorm: its kernels, the row function they and step()
 * share, and the op that records them.
 * Per row and head, with n = o rs w and rs = 1 / sqrt(mean(o^2) + eps):
 *     y = n . silu(z)
 *     dz = dy . n . sigma(z) (1 + z (1 - sigma(z)))
 *     g = dy . silu(z) . w,   do = rs (g - o rs^2 mean(g . o))
 *     dw += dy . silu(z) . o rs  (summed over rows and heads) */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/gated_norm.h"
#include "ops/internal.h"
#include "ops/ops.h"

void sl_gated_rmsnorm_row(const float *o, const float *z, const float *w, int64_t G, int64_t gs,
                          float eps, float *y, float *rs)
{
    for (int64_t h = 0; h < G; h++) {
        const float *oh = o + h * gs, *zh = z + h * gs;
        float ss = 0.0f;
        for (int64_t j = 0; j < gs; j++) ss += oh[j] * oh[j];
        const float r = 1.0f / sqrtf(ss / (float)gs + eps);
        if (rs) rs[h] = r;
#pragma omp simd
        for (int64_t j = 0; j < gs; j++)
            y[h * gs + j] = oh[j] * r * w[j] * (zh[j] * sl_sigmoidf(zh[j]));
    }
}

void sl_gated_rmsnorm_fwd(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, float *y, float *rs)
{
    const int64_t R = d->R, G = d->G, gs = d->gs, D = G * gs;
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        sl_gated_rmsnorm_row(o + r * D, z + r * d->zs, w, G, gs, d->eps, y + r * D,
                             rs ? rs + r * G : NULL);
}

/* The backward's team: one thread below SL_PAR_MIN. */
static int bwd_threads(const sl_gated_norm_desc *d)
{
    return d->R * d->G * d->gs >= SL_PAR_MIN ? omp_get_max_threads() : 1;
}

/* Each thread's dw slice. */
int64_t sl_gated_rmsnorm_bwd_scratch(const sl_gated_norm_desc *d)
{
    return (int64_t)bwd_threads(d) * d->gs;
}

void sl_gated_rmsnorm_bwd(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, const float *rss, const float *dy, float *dO, float *dz,
                          float *dw, float *scratch)
{
    const int64_t R = d->R, G = d->G, gs = d->gs, D = G * gs, W = d->zs;
    const int nt = bwd_threads(d);
    float *part = dw ? scratch : NULL;
    if (part) memset(part, 0, (size_t)(nt * gs) * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        float *dwp = part ? part + (int64_t)omp_get_thread_num() * gs : NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++)
            for (int64_t h = 0; h < G; h++) {
                const float *orow = o + r * D + h * gs, *zr = z + r * W + h * gs;
                const float *dyr = dy + r * D + h * gs, rs = rss[r * G + h];
                float *dor = dO ? dO + r * D + h * gs : NULL, sgo = 0.0f;
#pragma omp simd reduction(+ : sgo)
                for (int64_t j = 0; j < gs; j++) {
                    const float sg = sl_sigmoidf(zr[j]), n = orow[j] * rs * w[j];
                    const float gate = dyr[j] * zr[j] * sg;
                    if (dz)
                        dz[r * W + h * gs + j] += dyr[j] * n * sg * (1.0f + zr[j] * (1.0f - sg));
                    if (dwp) dwp[j] += gate * orow[j] * rs;
                    if (dor) dor[j] += rs * gate * w[j];
                    sgo += gate * w[j] * orow[j];
                }
                /* The normaliser's term needs the whole row's sum first. */
                if (dor) {
                    const float c = rs * rs * rs * sgo / (float)gs;
#pragma omp simd
                    for (int64_t j = 0; j < gs; j++) dor[j] -= orow[j] * c;
                }
            }
    }
    if (dw)
        for (int t = 0; t < nt; t++)
            for (int64_t j = 0; j < gs; j++) dw[j] += part[(int64_t)t * gs + j];
}

/* The kernels' descriptor and where z's gate columns start. */
typedef struct gated_norm_op {
    sl_gated_norm_desc d;
    int64_t z_off;
} gated_norm_op;

/* Node: in = {o, z's tensor, w}, saved = rs: [rows, G] (each head's
 * 1 / rms), desc: gated_norm_op. */
static void gated_rmsnorm_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *o = nd->in[0], *z = nd->in[1], *w = nd->in[2];
    const gated_norm_op *op = nd->desc;
    const sl_gated_norm_desc d = op->d;
    const int64_t z_off = op->z_off;
    float *dw = w->requires_grad ? sl_grad(ctx, w) : NULL;
    sl_gated_rmsnorm_bwd(&d, o->data, z->data + z_off, w->data, nd->saved, nd->out->grad,
                         o->requires_grad ? sl_grad(ctx, o) : NULL,
                         z->requires_grad ? sl_grad(ctx, z) + z_off : NULL, dw,
                         dw ? sl_arena_floats(ctx, sl_gated_rmsnorm_bwd_scratch(&d)) : NULL);
}

/* o: [B, T, G*gs], z: [B, T, W] read at columns z_off.., w: [gs] -> y: [B, T, G*gs]. */
sl_tensor *sl_gated_rmsnorm(sl_ctx *ctx, sl_tensor *o, sl_tensor *z, int64_t z_off, sl_tensor *w,
                            int64_t G, float eps)
{
    const int64_t gs = w->n, D = G * gs;
    sl_require(o->ndim == 3 && z->ndim == 3 && o->shape[2] == D && z->shape[0] == o->shape[0] &&
                   z->shape[1] == o->shape[1] && z_off >= 0 && z_off + D <= z->shape[2],
               "sl_gated_rmsnorm",
               "o [B, T, G*gs], z [B, T, W] with G*gs columns from z_off, w [gs]");
    const sl_gated_norm_desc d = {sl_rows(o), G, gs, z->shape[2], eps};
    sl_tensor *y = sl_tensor_like(ctx, o);
    sl_node *nd = SL_RECORD(ctx, gated_rmsnorm_backward, y, o, z, w);
    float *rs = sl_arena_floats(ctx, d.R * G);
    sl_gated_rmsnorm_fwd(&d, o->data, z->data + z_off, w->data, y->data, rs);
    if (nd) {
        const gated_norm_op op = {d, z_off};
        nd->saved = rs;
        SL_KEEP_DESC(ctx, nd, op);
    }
    return y;
}

/* Per row and head in double, straight from the equation. */
void sl_gated_rmsnorm_ref(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, double *y)
{
    const int64_t G = d->G, gs = d->gs;
    for (int64_t r = 0; r < d->R; r++) {
        const float *orow = o + r * G * gs, *zrow = z + r * d->zs;
        double *yr = y + r * G * gs;
        for (int64_t h = 0; h < G; h++) {
            double ss = 0;
            for (int64_t j = 0; j < gs; j++) ss += (double)orow[h * gs + j] * orow[h * gs + j];
            double rs = 1.0 / sqrt(ss / gs + d->eps);
            for (int64_t j = 0; j < gs; j++) {
                double zz = zrow[h * gs + j];
                yr[h * gs + j] = orow[h * gs + j] * rs * w[j] * zz / (1.0 + exp(-zz));
            }
        }
    }
}
