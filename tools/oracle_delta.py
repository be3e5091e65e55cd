#!/usr/bin/python3
"""PyTorch oracle for seqlab's delta-rule mixers (deltanet, gated_deltanet).

A naive float64 PyTorch version of each mixer, written from the equations in
src/mixers/deltanet.c and gated_deltanet.c (and ../shared/PAPERS.md), with
the delta rule as a plain token-by-token loop, so that agreement with the C
engine's chunked WY/UT forward and hand-written backward means something.
It writes a fixture holding the input x, an upstream gradient dy, every
weight ("param.NAME", the C parameter names without the layer prefix), the
output y and the gradients of x and of every weight ("grad.NAME"); the
metadata records the shapes, the config keys the C test must use and the
tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --mixer deltanet|gated_deltanet --out FIXTURE [--weights FILE] [--seed N]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
With --weights, the weights are read from a safetensors file (the names
above, with or without the "param." prefix) instead of drawn.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T, D, H, K = 2, 11, 16, 2, 4
NORM_EPS = 1e-5
L2_EPS = 1e-6
TOL = 1e-4


def shapes(mixer):
    """Parameter name -> shape, in the C mixer's declaration order."""
    dk = D // H
    s = {"q.weight": (D, D), "k.weight": (D, D), "v.weight": (D, D),
         "q_conv.weight": (D, K), "k_conv.weight": (D, K), "v_conv.weight": (D, K),
         "beta.weight": (H, D), "out_norm.weight": (dk,), "out.weight": (D, D)}
    if mixer == "gated_deltanet":
        s.update({"a.weight": (H, D), "A_log": (H,), "dt_bias": (H,), "gate.weight": (D, D)})
    return s


def draw_weights(mixer, rng):
    """Weights large enough that every path moves the output, as float32."""
    w = {}
    for name, shape in shapes(mixer).items():
        if name.endswith("conv.weight"):
            a = rng.uniform(-0.5, 0.5, shape)
        elif name == "out_norm.weight":
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name == "A_log":
            a = rng.uniform(-1.0, 1.0, shape)
        elif name == "dt_bias":
            a = 0.5 * rng.standard_normal(shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        w[name] = a.astype(np.float32)
    return w


def short_conv(x, w):
    """Causal depthwise conv: y_t = sum_j w[:, j] x_{t + j - (K-1)}, zeros before 0."""
    y = F.conv1d(x.transpose(1, 2), w.unsqueeze(1), padding=w.shape[1] - 1, groups=w.shape[0])
    return y[..., :x.shape[1]].transpose(1, 2)


def l2norm_heads(x):
    xh = x.reshape(B, T, H, D // H)
    return (xh / torch.sqrt((xh * xh).sum(-1, keepdim=True) + L2_EPS)).reshape(B, T, D)


def mixer_forward(mixer, x, p):
    """x: [B, T, D] -> y: [B, T, D], the delta rule as a token loop."""
    dk = D // H
    q = l2norm_heads(F.silu(short_conv(x @ p["q.weight"].T, p["q_conv.weight"])))
    k = l2norm_heads(F.silu(short_conv(x @ p["k.weight"].T, p["k_conv.weight"])))
    v = F.silu(short_conv(x @ p["v.weight"].T, p["v_conv.weight"]))
    beta = torch.sigmoid(x @ p["beta.weight"].T)
    if mixer == "gated_deltanet":
        g = -torch.exp(p["A_log"]) * F.softplus(x @ p["a.weight"].T + p["dt_bias"])
    else:
        g = torch.zeros_like(beta)
    q, k, v = (t.reshape(B, T, H, dk) for t in (q, k, v))
    S = torch.zeros(B, H, dk, dk, dtype=x.dtype)
    outs = []
    for t in range(T):
        kt, vt, qt = k[:, t], v[:, t], q[:, t]
        bt, at = beta[:, t, :, None, None], torch.exp(g[:, t])[:, :, None, None]
        kS = torch.einsum("bhi,bhij->bhj", kt, S)
        S = at * (S - bt * kt[..., :, None] * kS[..., None, :]) + bt * kt[..., :, None] * vt[..., None, :]
        outs.append(torch.einsum("bhij,bhi->bhj", S, qt))
    o = torch.stack(outs, 1)
    o = o / torch.sqrt((o * o).mean(-1, keepdim=True) + NORM_EPS) * p["out_norm.weight"]
    o = o.reshape(B, T, D)
    if mixer == "gated_deltanet":
        o = o * F.silu(x @ p["gate.weight"].T)
    return o @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all).
FIXTURES = {"mixer_deltanet": ["--mixer", "deltanet"],
            "mixer_gated_deltanet": ["--mixer", "gated_deltanet"]}

def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixer", required=True, choices=("deltanet", "gated_deltanet"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    w = safetensors_io.read_named(a.weights, shapes(a.mixer)) if a.weights else draw_weights(a.mixer, rng)
    out, _ = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(a.mixer, x, p))
    meta = {"mixer": a.mixer, "B": str(B), "T": str(T), "d_model": str(D), "n_heads": str(H),
            "conv_size": str(K), "norm_eps": repr(NORM_EPS), "tol": repr(TOL), "seed": str(a.seed)}
    safetensors_io.write(a.out, out, meta)


if __name__ == "__main__":
    main()
