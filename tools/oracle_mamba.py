#!/usr/bin/python3
"""PyTorch oracle for seqlab's mamba mixer (Gu & Dao 2023, "Mamba: Linear-Time
Sequence Modeling with Selective State Spaces").

A naive float64 PyTorch version of the whole layer, written from the paper
(S6 inside the Mamba block), with the convolution as a direct sum over taps
and the selective scan as a plain token-by-token loop:
    [x | z] = u W_in^T,  x <- silu(conv(x) + b)     (w[:, K-1] on the current token)
    [dt_low | B | C] = x W_x^T,  dt = softplus(dt_low W_dt^T + dt_bias)
    s_t = exp(dt_t A) s_{t-1} + dt_t B_t x_t,  A = -exp(A_log)
    y_t = C_t . s_t + D x_t,  out = (y * silu(z)) W_out^T
Autograd gives the gradients. The fixture holds x, an upstream gradient dy,
every weight ("param.NAME", the C names without the layer prefix), y and the
gradients of x and of every weight ("grad.NAME"); the metadata records the
shapes, the settings the C test must apply (d_model, n_heads, conv_size,
expand, d_state, dt_rank, chunk_size) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--conv_size K] [--expand e]
  [--d_state N] [--dt_rank R] [--chunk_size C]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T, D, H = 2, 11, 16, 2
TOL = 1e-4


def dims(args):
    """E, N, R, K from the settings (dt_rank 0 = ceil(D/16))."""
    R = args.dt_rank if args.dt_rank > 0 else math.ceil(D / 16)
    return args.expand * D, args.d_state, R, args.conv_size


def shapes(args):
    """Parameter name -> shape, in the C mixer's declaration order."""
    E, N, R, K = dims(args)
    s = {"in.weight": (2 * E, D)}
    if K > 0:
        s.update({"conv.weight": (E, K), "conv.bias": (E,)})
    s.update({"x.weight": (R + 2 * N, E), "dt.weight": (E, R), "dt_bias": (E,),
              "A_log": (E, N), "D": (E,), "out.weight": (D, E)})
    return s


def draw_weights(rng, args):
    """Weights large enough that every path moves the output, as float32:
    dt = softplus(...) around 0.1 .. 1, A_log near log(1..N)."""
    E, N, _, _ = dims(args)
    w = {}
    for name, shape in shapes(args).items():
        a = 0.3 * rng.standard_normal(shape)
        if name == "dt_bias":
            a = a - 1.0
        elif name == "A_log":
            a = 0.2 * a + np.log(np.arange(1, N + 1))[None, :]
        elif name == "D":
            a = a + 1.0
        w[name] = a.astype(np.float32)
    return w


def mixer_forward(x, p, args):
    """x: [B, T, D] -> [B, T, D] in float64."""
    E, N, R, K = dims(args)
    xz = x @ p["in.weight"].T
    xs, z = xz[..., :E], xz[..., E:]
    if K > 0:
        w = p["conv.weight"]
        conv = []
        for t in range(x.shape[1]):
            acc = p["conv.bias"].expand(x.shape[0], E)
            for j in range(K):
                src = t - (K - 1) + j
                if src >= 0:
                    acc = acc + w[:, j] * xs[:, src]
            conv.append(acc)
        xs = torch.stack(conv, 1)
    xs = F.silu(xs)
    xd = xs @ p["x.weight"].T
    dt = F.softplus(xd[..., :R] @ p["dt.weight"].T + p["dt_bias"])
    Bm, Cm = xd[..., R:R + N], xd[..., R + N:]
    A = -torch.exp(p["A_log"])
    s = torch.zeros(x.shape[0], E, N, dtype=x.dtype)
    ys = []
    for t in range(x.shape[1]):
        s = torch.exp(dt[:, t, :, None] * A) * s + \
            (dt[:, t] * xs[:, t])[:, :, None] * Bm[:, t, None, :]
        ys.append((s * Cm[:, t, None, :]).sum(-1) + p["D"] * xs[:, t])
    y = torch.stack(ys, 1)
    return (y * F.silu(z)) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all): the
# defaults, and no conv with a small state, expand 1, a rank-3 time step and
# chunks of 4 (saved states inside the 11 tokens).
FIXTURES = {"mixer_mamba": [],
            "mixer_mamba_small": ["--conv_size", "0", "--expand", "1", "--d_state", "5",
                                  "--dt_rank", "3", "--chunk_size", "4"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--conv_size", type=int, default=4)
    ap.add_argument("--expand", type=int, default=2)
    ap.add_argument("--d_state", type=int, default=16)
    ap.add_argument("--dt_rank", type=int, default=0)
    ap.add_argument("--chunk_size", type=int, default=64)
    args = ap.parse_args()
    rng, w = fixtures.start(args, shapes(args), lambda r: draw_weights(r, args))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, args))
    meta = {"mixer": "mamba", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "conv_size": str(args.conv_size),
            "chunk_size": str(args.chunk_size), "expand": str(args.expand),
            "d_state": str(args.d_state), "dt_rank": str(args.dt_rank)}
    safetensors_io.write(args.out, tensors, meta)
    E, N, R, K = dims(args)
    print(f"{args.out}: mamba, B {B} T {T} D {D}, E {E} N {N} R {R} K {K}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
