#!/usr/bin/python3
"""PyTorch oracle for seqlab's baseconv mixer (Zoology's BaseConv, Arora et
al. 2023; Based, Arora et al. 2024).

A naive float64 PyTorch version of the whole mixer, written from the papers'
reference code and docs/mixers.md, with the long convolution as a direct sum
over lags (no FFT):
    y = (h * x) (x W^T + b) + x
    short:    h * x = bias + sum_j w[:, j] x[t - 2 + j]          3 taps
    long:     h[:, l] = filter.weight[l] (zero past max_seq_len)
    implicit: h[:, l] = W_1 relu(W_0 z(l) + b_0) + b_1,  z(l) = [t_l, cos(1e-4 w_l),
              -sin(1e-4 w_l)],  t_l = l / (M - 1),  w_l = 2 pi l / M
Autograd gives the gradients. The fixture holds x, dy, every weight
("param.NAME"), y and the gradients of x and of every weight ("grad.NAME");
the metadata records the settings the C test applies (d_model, max_seq_len,
kernel) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--seed N] [--kernel implicit|long|short]
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

B, T, D, M = 2, 11, 16, 9   # M = max_seq_len < T: the long kernel's zero taps are reached
TOL = 1e-4


def shapes(kind):
    """Parameter name -> shape, in the C mixer's declaration order."""
    s = {"proj.weight": (D, D), "proj.bias": (D,)}
    if kind == "short":
        s.update({"conv.weight": (D, 3), "conv.bias": (D,)})
    elif kind == "long":
        s["filter.weight"] = (M, D)
    else:
        s.update({"filter.0.weight": (16, 3), "filter.0.bias": (16,),
                  "filter.1.weight": (D, 16), "filter.1.bias": (D,)})
    return s


def draw_weights(rng, kind):
    """Weights large enough that every path moves the output, as float32."""
    return {n: (0.3 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes(kind).items()}


def taps(p, kind, L):
    """h: [D, L] for lags 0 .. L-1."""
    if kind == "long":
        h = torch.zeros(L, D, dtype=torch.float64)
        n = min(L, M)
        h = torch.cat([p["filter.weight"][:n], h[n:]], 0)
        return h.T
    lag = torch.arange(L, dtype=torch.float64)
    w = 2 * math.pi * lag / M
    z = torch.stack([lag / (M - 1), torch.cos(1e-4 * w), -torch.sin(1e-4 * w)], 1)
    a = torch.relu(z @ p["filter.0.weight"].T + p["filter.0.bias"])
    return (a @ p["filter.1.weight"].T + p["filter.1.bias"]).T


def mixer_forward(x, p, kind):
    """x: [B, T, D] -> [B, T, D] in float64."""
    Tn = x.shape[1]
    if kind == "short":
        pad = torch.cat([torch.zeros(x.shape[0], 2, D, dtype=x.dtype), x], 1)
        hx = p["conv.bias"] + sum(p["conv.weight"][:, j] * pad[:, j:j + Tn] for j in range(3))
    else:
        h = taps(p, kind, Tn)
        hx = torch.stack([sum(h[:, t - s] * x[:, s] for s in range(t + 1)) for t in range(Tn)], 1)
    return hx * (x @ p["proj.weight"].T + p["proj.bias"]) + x


# The committed fixtures this oracle makes (`--all DIR` writes them all).
FIXTURES = {"mixer_baseconv": [], "mixer_baseconv_long": ["--kernel", "long"],
            "mixer_baseconv_short": ["--kernel", "short"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--kernel", default="implicit", choices=("implicit", "long", "short"))
    args = ap.parse_args()
    rng, w = fixtures.start(args, None, lambda r: draw_weights(r, args.kernel))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D),
                                    lambda x, p: mixer_forward(x, p, args.kernel))
    meta = {"mixer": "baseconv", "B": str(B), "T": str(T), "tol": str(TOL),
            "seed": str(args.seed), "d_model": str(D), "max_seq_len": str(M),
            "kernel": args.kernel}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: baseconv, B {B} T {T} D {D}, kernel {args.kernel}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
