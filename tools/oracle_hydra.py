#!/usr/bin/python3
"""PyTorch oracle for seqlab's hydra mixer (Hwang, Lahoti, Dao & Gu 2024,
"Hydra: Bidirectional State Space Models Through Generalized Matrix
Mixers").

A naive float64 PyTorch version of the whole mixer, the two SSD passes as
plain token loops, one forward in time and one backward (no flips):
    [z | x | B_f | C_f | B_b | C_b | dt_f | dt_b] = u W_in^T
    x, B_f, C_f, B_b, C_b <- silu(conv1d(..., groups = 5D, padding = K/2))
    dt = softplus(dt_in + dt_bias), A = -exp(A_log)           per head
    forward:  H_t = exp(dt_t A) H_{t-1} + B_t (dt_t x_t)^T, f_t = C_t^T H_t
    backward: G_t = exp(dt_t A) G_{t+1} + B_t (dt_t x_t)^T, b_t = C_t^T G_t
    y_t = f_{t-1} + b_{t+1} + x_t (x_t W_D^T + D)            (f_{-1} = b_T = 0)
    out = (RMSNorm(y) w * silu(z)) W_out^T
Heads of P = D/H channels with B and C per head (N = P), as seqlab's mamba2.
Autograd gives the gradients. The fixture holds x, an upstream gradient dy,
every weight ("param.NAME"), y and the gradients of x and of every weight
("grad.NAME"); the metadata records the settings the C test applies
(d_model, n_heads, causal = false, conv_kernel) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--conv_kernel K]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T, D, H = 2, 11, 16, 2
P = D // H
TOL = 1e-4
EPS = 1e-5


def shapes(K):
    """Parameter name -> shape, in the C mixer's declaration order."""
    s = {"in.weight": (6 * D + 2 * H, D)}
    if K > 0:
        s.update({"conv.weight": (5 * D, K), "conv.bias": (5 * D,)})
    s.update({"A_log": (H,), "dt_bias": (H,), "D": (H,), "fc_D.weight": (H, D),
              "norm.weight": (D,), "out.weight": (D, D)})
    return s


def draw_weights(rng, K):
    """Weights large enough that every path moves the output, as float32;
    the per-head scalars and the norm near their initial values."""
    centre = {"D": 1.0, "norm.weight": 1.0, "dt_bias": -1.0}
    w = {}
    for name, shape in shapes(K).items():
        scale = 0.1 if name in centre else 0.3
        w[name] = (scale * rng.standard_normal(shape) + centre.get(name, 0.0)).astype(np.float32)
    return w


def ssd(x, Bm, Cm, dt, A, order):
    """One direction over tokens in `order`: x: [T, D], Bm, Cm: [T, D], dt:
    [T, H] -> [T, D]."""
    out = [None] * x.shape[0]
    S = [torch.zeros(P, P, dtype=x.dtype) for _ in range(H)]
    for t in order:
        row = []
        for h in range(H):
            c = slice(h * P, (h + 1) * P)
            S[h] = torch.exp(dt[t, h] * A[h]) * S[h] + torch.outer(Bm[t, c], dt[t, h] * x[t, c])
            row.append(S[h].T @ Cm[t, c])
        out[t] = torch.cat(row)
    return torch.stack(out)


def mixer_forward(u, p, K):
    """u: [B, T, D] -> [B, T, D] in float64."""
    proj = u @ p["in.weight"].T
    z, xbc, dt_in = proj[..., :D], proj[..., D:6 * D], proj[..., 6 * D:]
    if K > 0:
        xbc = F.conv1d(xbc.transpose(1, 2), p["conv.weight"].unsqueeze(1), p["conv.bias"],
                       padding=K // 2, groups=5 * D).transpose(1, 2)
    xbc = F.silu(xbc)
    x, Bf, Cf, Bb, Cb = xbc.split(D, -1)
    dt = F.softplus(dt_in + p["dt_bias"].repeat(2))
    A = -torch.exp(p["A_log"])
    Tn = u.shape[1]
    zero = torch.zeros(1, D, dtype=u.dtype)
    rows = []
    for b in range(u.shape[0]):
        f = ssd(x[b], Bf[b], Cf[b], dt[b, :, :H], A, range(Tn))
        r = ssd(x[b], Bb[b], Cb[b], dt[b, :, H:], A, range(Tn - 1, -1, -1))
        dg = (x[b] @ p["fc_D.weight"].T + p["D"]).repeat_interleave(P, -1)
        rows.append(torch.cat([zero, f[:-1]]) + torch.cat([r[1:], zero]) + x[b] * dg)
    y = torch.stack(rows)
    y = y / torch.sqrt((y * y).mean(-1, keepdim=True) + EPS) * p["norm.weight"] * F.silu(z)
    return y @ p["out.weight"].T


# The committed fixtures (`--all DIR` writes them all): the reference's conv
# of 7 taps, and none.
FIXTURES = {"mixer_hydra": [], "mixer_hydra_noconv": ["--conv_kernel", "0"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--conv_kernel", type=int, default=7)
    args = ap.parse_args()
    K = args.conv_kernel
    rng, w = fixtures.start(args, shapes(K), lambda r: draw_weights(r, K))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, K))
    meta = {"mixer": "hydra", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "norm_eps": str(EPS), "causal": "false",
            "conv_kernel": str(K)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: hydra, B {B} T {T} D {D}, conv_kernel {K}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
