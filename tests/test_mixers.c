/* Every registered mixer through its vtable alone, as ggml's
 * test-backend-ops walks its ops: registering a mixer is what enrols it.
 * For each variant the mixer declares (sl_mixer_checks.variants: option
 * values and dimensions that reach all its paths; "" is the defaults):
 *
 *   causal:         step() == forward (T = 17 from scratch and after a
 *                   prefill of 7 that ends inside a chunk; T = 70 after 66,
 *                   across 64-token tiles and blocks), a forward split in
 *                   two with the state carried == one forward, a packed
 *                   batch == each sequence alone (with and without states),
 *                   finite differences of the input and every parameter,
 *                   the chunked recompute == the plain backward (outputs
 *                   and every gradient) where the mixer is chunkable,
 *                   finite outputs and gradients at T = 4096 with inputs of
 *                   scale 100;
 *   bidirectional:  the output at t = 0 sees the last token, packed == alone,
 *                   finite differences; for a mixer with only that form
 *                   (noncausal_only, no state or step) also the finite
 *                   outputs and gradients at T = 4096, scale 100.
 *
 * Tolerances come from the mixer (fp32 fast forms against each other), with
 * the defaults below. A variant "nofd" skips finite differences (a kink,
 * such as relu's, where the probe lands). Tests specific to one mixer live
 * in tests/test_mixer_NAME.c. */
#include "mixer_check.h"

/* fp32 chunked forms vs the token recurrence are ~1e-6 apart. At h = 5e-3
 * the h^2 truncation (~3e-5 times O(1) third derivatives through the
 * mixers' silu, norms and gates) and the float rounding of ~200 outputs
 * (~1e-6 / 1e-2 = 1e-4 in a central difference) stay under atol 5e-4; rtol
 * 1e-2 allows for the larger output-weight gradients and still fails a
 * 1%-wrong term. */
#define TOL 1e-4
#define FD_H 5e-3f
#define FD_ATOL 5e-4
#define FD_RTOL 1e-2

/* Applies a variant's "k=v,k=v" to c; *fd is cleared by "nofd". */
static bool apply_variant(mc_cfg *c, const sl_mixer_vtable *vt, const char *variant, bool *fd)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", variant);
    *fd = true;
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        if (strcmp(kv, "nofd") == 0) {
            *fd = false;
            continue;
        }
        char *eq = strchr(kv, '=');
        if (!eq) return false;
        *eq = '\0';
        if (!mc_set(c, vt, kv, eq + 1)) return false;
    }
    return true;
}

static double or_default(double v, double def) { return v > 0 ? v : def; }

/* T = 4096 at input scale 100, in chunks of 64. */
static void check_long(const sl_mixer_vtable *vt, const mc_cfg *c)
{
    mc_cfg longc = *c;
    longc.dims.chunk_size = 64;
    mc_check_long_finite(vt, &longc, 4096, 100.0f);
}

static void check_variant(const sl_mixer_vtable *vt, const char *variant)
{
    const sl_mixer_checks *k = &vt->checks;
    const double tol = or_default(k->tol, TOL), tol_packed = or_default(k->tol_packed, tol);
    const float h = (float)or_default(k->fd_h, FD_H);
    const double atol = or_default(k->fd_atol, FD_ATOL), rtol = or_default(k->fd_rtol, FD_RTOL);
    mc_cfg c;
    mc_tiny(&c, vt);
    bool fd;
    if (!apply_variant(&c, vt, variant, &fd)) {
        CHECK(0, "%s: variant \"%s\" does not apply: %s", vt->name, variant, sl_errmsg());
        return;
    }
    if (!c.dims.causal) {
        static const int64_t lens[] = {7, 0, 1, 5, 12};
        mc_check_sees_future(vt, &c, 5);
        mc_check_packed(vt, &c, lens, 5, tol_packed);
        if (fd) mc_check_gradient(vt, &c, 2, 7, h, atol, rtol, 12);
        if (vt->noncausal_only) check_long(vt, &c);
        return;
    }
    mc_check_step(vt, &c, 17, 0, tol);
    mc_check_step(vt, &c, 17, 7, tol);
    mc_check_step(vt, &c, 70, 66, tol);
    static const int64_t splits[] = {1, 4, 5, 6, 12};
    mc_check_split(vt, &c, 2, 17, splits, 5, tol);
    /* Empty sequences (first, inside, last), one token, and lengths on both
     * sides of the chunk (5) and the conv taps (4). */
    static const int64_t lens[] = {0, 7, 1, 2, 0, 3, 4, 5, 12, 11, 0};
    mc_check_packed(vt, &c, lens, 11, tol_packed);
    if (fd) mc_check_gradient(vt, &c, 2, 7, h, atol, rtol, 12);
    /* Chunks on the kernels' chunk bounds (5) and across them (7). */
    mc_check_recompute(vt, &c, 2, 23, 5, tol);
    mc_check_recompute(vt, &c, 2, 23, 7, tol);
    check_long(vt, &c);
}

/* One test per mixer and variant, named "mixer [variant]". */
static void run_every_mixer(void)
{
    static const char *const DEFAULTS[] = {"", NULL};
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *vt = sl_mixer_at(i);
        for (const char *const *v = vt->checks.variants ? vt->checks.variants : DEFAULTS; *v; v++) {
            char name[320];
            snprintf(name, sizeof name, "%s [%s]", vt->name, *v);
            RUN_AS(name, check_variant(vt, *v));
        }
    }
}

/* A bidirectional mixer's form is checked (a mixer with only a non-causal
 * form is checked in it without saying causal=false), and every option is
 * set by some variant. */
static void test_variants_cover_options(void)
{
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *vt = sl_mixer_at(i);
        bool bidir = false;
        for (const char *const *v = vt->checks.variants; v && *v; v++)
            bidir |= strstr(*v, "causal=false") != NULL;
        if (vt->noncausal_only)
            CHECK(!bidir && !vt->bidirectional, "%s: non-causal only: not also bidirectional",
                  vt->name);
        else
            CHECK(bidir == vt->bidirectional, "%s: a causal=false variant iff bidirectional",
                  vt->name);
        for (size_t k = 0; k < vt->options.n; k++) {
            const char *name = vt->options.opt[k].name;
            bool covered = false;
            for (const char *const *v = vt->checks.variants; v && *v; v++) {
                const char *at = strstr(*v, name);
                covered |= at && at[strlen(name)] == '=';
            }
            CHECK(covered, "%s: no check variant sets option '%s'", vt->name, name);
        }
    }
}

/* Names are unique and every mixer describes itself; a mixer with only a
 * non-causal form has no state or step, every other one has them. */
static void test_registry_entries(void)
{
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *vt = sl_mixer_at(i);
        CHECK(sl_mixer_lookup(vt->name) == vt, "%s: unique name", vt->name);
        CHECK(vt->paper && vt->equation && vt->state_desc && vt->init && vt->forward,
              "%s: paper, equation, state and forward", vt->name);
        const bool stepped = vt->state_floats && vt->scratch_floats && vt->step;
        const bool none = !vt->state_floats && !vt->scratch_floats && !vt->step;
        CHECK(vt->noncausal_only ? none : stepped, "%s: state and step %s", vt->name,
              vt->noncausal_only ? "absent (non-causal only)" : "present");
        sl_opts o;
        CHECK(sl_opts_defaults(&o, vt->options) == SL_OK, "%s: defaults parse: %s", vt->name,
              sl_errmsg());
    }
}

int main(void)
{
    RUN(test_registry_entries);
    RUN(test_variants_cover_options);
    run_every_mixer();
    return TEST_SUMMARY();
}
