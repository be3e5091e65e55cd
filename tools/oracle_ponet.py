#!/usr/bin/python3
"""PyTorch oracle for seqlab's ponet mixer (Tan et al. 2021, "PoNet: Pooling
Network for Efficient Token Mixing in Long Sequences").

A naive float64 PyTorch version of the whole mixer, written from the paper's
multi-granularity pooling and the fusion of its code, every pooling as a
plain loop over tokens:
    [q | k | o | s | l] = x W_in^T                     heads of P = D/H
    g = mean_t q_t, a = softmax_t(g . k_t / sqrt P), v = sum_t a_t k_t
    s'_t = max of s over t's segment (runs of `segment` tokens)
    l'_t = max of l over tokens t - w/2 .. t + w/2 (w = `local_window`)
    y = ((v + s'_t) * o_t + l'_t) W_out^T
Autograd gives the gradients (a max sends its gradient to the argmax; the
random inputs have no ties). The fixture holds x, an upstream gradient dy,
every weight ("param.NAME"), y and the gradients of x and of every weight
("grad.NAME"); the metadata records the settings the C test applies
(d_model, n_heads, causal = false, segment, local_window) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--segment S] [--local_window W]
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

B, T, D, H = 2, 11, 16, 2
TOL = 1e-4


def shapes():
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"in.weight": (5 * D, D), "out.weight": (D, D)}


def draw_weights(rng):
    return {n: (0.3 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes().items()}


def mixer_forward(x, p, segment, local_window):
    """x: [B, T, D] -> [B, T, D] in float64."""
    P = D // H
    q, k, o, s, l = (x @ p["in.weight"].T).split(D, -1)
    Tn = x.shape[1]
    rows = []
    for b in range(x.shape[0]):
        g = q[b].mean(0).view(H, P)
        kh = k[b].view(Tn, H, P)
        a = torch.softmax((kh * g).sum(-1) / math.sqrt(P), 0)      # [T, H]
        v = (a.unsqueeze(-1) * kh).sum(0).reshape(D)                # [D]
        seg, loc = [], []
        for t in range(Tn):
            lo = t // segment * segment
            seg.append(s[b, lo:min(lo + segment, Tn)].max(0).values)
            h = local_window // 2
            loc.append(l[b, max(0, t - h):min(Tn, t + h + 1)].max(0).values)
        rows.append((v + torch.stack(seg)) * o[b] + torch.stack(loc))
    return torch.stack(rows) @ p["out.weight"].T


# The committed fixtures (`--all DIR` writes them all): the defaults (one
# segment holds the whole sequence) and short segments with a wider window.
FIXTURES = {"mixer_ponet": [],
            "mixer_ponet_segments": ["--segment", "4", "--local_window", "5"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--segment", type=int, default=32)
    ap.add_argument("--local_window", type=int, default=3)
    args = ap.parse_args()
    rng, w = fixtures.start(args, shapes(), draw_weights)
    tensors, y = fixtures.run_mixer(
        w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, args.segment, args.local_window))
    meta = {"mixer": "ponet", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "causal": "false",
            "segment": str(args.segment), "local_window": str(args.local_window)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: ponet, B {B} T {T} D {D}, segment {args.segment} "
          f"local_window {args.local_window}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
