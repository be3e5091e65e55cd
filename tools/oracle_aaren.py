#!/usr/bin/python3
"""PyTorch oracle for seqlab's aaren mixer (Feng et al. 2024, "Attention as
an RNN").

A naive float64 PyTorch version of the mixer, with every prefix's softmax
computed afresh (no scan, no running max):
    k = x W_k^T,  v = x W_v^T                      H heads of P = D/H
    s_{t,h} = q_h . k_{t,h} / sqrt(P)              q: [H, P], learned
    o_t = softmax(s_{1..t}) v_{1..t}               per head, for every t
    y = o W_out^T
The C mixer folds q into the key projection (s = x A^T, A_h = q_h W_k,h /
sqrt(P)) and computes o by a blocked scan over (max, sum of exp, weighted
sum), so the fixture checks both against this direct form. Autograd gives
the gradients. The fixture holds x, an upstream gradient dy, every weight
("param.NAME", the C names without the layer prefix), y and the gradients of
x and of every weight ("grad.NAME"); the metadata records the shapes, the
settings the C test must apply (d_model, n_heads) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--n_heads H]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T, D = 2, 11, 16
TOL = 1e-4


def shapes(H):
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"query": (H, D // H), "k.weight": (D, D), "v.weight": (D, D), "out.weight": (D, D)}


def draw_weights(rng, H):
    """Weights large enough that the scores spread the attention, as float32."""
    return {n: ((1.0 if n == "query" else 0.3) * rng.standard_normal(s)).astype(np.float32)
            for n, s in shapes(H).items()}


def mixer_forward(x, p, H):
    """x: [B, T, D] -> [B, T, D] in float64, one softmax per prefix."""
    P = D // H
    k = (x @ p["k.weight"].T).reshape(x.shape[0], x.shape[1], H, P)
    v = (x @ p["v.weight"].T).reshape(x.shape[0], x.shape[1], H, P)
    s = (k * p["query"]).sum(-1) / math.sqrt(P)                    # [B, T, H]
    o = [torch.einsum("bih,bihp->bhp", torch.softmax(s[:, :t + 1], 1), v[:, :t + 1])
         for t in range(x.shape[1])]
    return torch.stack(o, 1).reshape(x.shape) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all): two
# heads of 8 channels and four of 4.
FIXTURES = {"mixer_aaren": [], "mixer_aaren_h4": ["--n_heads", "4"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--n_heads", type=int, default=2)
    args = ap.parse_args()
    H = args.n_heads
    rng, w = fixtures.start(args, shapes(H), lambda r: draw_weights(r, H))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, H))
    fixtures.write(args.out, tensors, "aaren", (B, T), TOL, args.seed, {"d_model": D, "n_heads": H})
    print(f"{args.out}: aaren, B {B} T {T} D {D} H {H}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
