/* A causal mixer's forward and backward over a long sequence, in chunks of
 * Tc tokens, keeping only what cannot be cheaply recomputed.
 *
 * The forward runs the mixer's own stateful forward chunk after chunk in a
 * scratch context (sl_ctx_child) with no tape, carrying the state from one
 * chunk to the next as decoding does, and keeps only the layer's output and
 * the state entering each chunk ([chunks, B, state_floats]: kilobytes per
 * chunk). The backward walks the chunks in reverse: it runs chunk k's
 * forward again from its saved state, now with a tape and the state's
 * parts linked into the graph (sl_state_take, ctx->link_states), hands the
 * kernels the gradient w.r.t. the state leaving the chunk (from chunk
 * k + 1's backward), runs the chunk's backward, and keeps the gradient
 * w.r.t. the state entering it for chunk k - 1. Parameter gradients
 * accumulate chunk by chunk. Peak memory is one chunk's activations
 * instead of the whole sequence's; the cost is one more forward.
 *
 * The result equals the mixer's plain forward up to the rounding of a
 * split (tests/test_recompute.c holds every chunkable registered mixer to
 * its split == whole tolerance, outputs and gradients). */
#ifndef SL_MIXERS_RECOMPUTE_H
#define SL_MIXERS_RECOMPUTE_H

#include "mixers/mixer.h"

/* Whether m can run chunked: a causal form with a step and a state that
 * takes a gradient (not sl_mixer_vtable.state_no_grad, as attention's KV
 * cache, which grows with the length). Its every part must go through sl_state_take to kernels
 * that honour ds_final, or start afresh at the mixer's alignment:
 * tests/test_mixers.c checks the gradients of every such mixer. */
bool sl_mixer_chunkable(const sl_mixer *m);

/* x: [B, T, D] -> [B, T, D], m's training forward (no state, no packing)
 * in chunks of Tc tokens, Tc rounded up to a multiple of the mixer's
 * alignment (sl_mixer_vtable.align); m must be chunkable. Records one node
 * whose backward is the recompute; without gradients it is the chunked
 * forward alone. */
sl_tensor *sl_mixer_recompute(sl_ctx *ctx, sl_mixer *m, sl_tensor *x, int64_t Tc);

#endif
