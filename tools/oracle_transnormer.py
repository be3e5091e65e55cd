#!/usr/bin/python3
"""PyTorch oracle for seqlab's transnormer mixer (Qin et al. 2022, "The Devil
in Linear Transformer"), one fixture per layer kind.

A naive float64 version written from the equations in src/mixers/transnormer.c
and ../shared/PAPERS.md, token by token, so that agreement with the C
engine's chunked recurrence op, fused block attention and hand-written
backwards means something:

  norm  NormAttention (upper layers): q, k = elu + 1, S_t = lambda_h S_{t-1}
        + k_t v_t^T, o_t = S_t^T q_t as a loop over t; with --decay the
        TransNormerLLM rate log lambda_h = -s_h (1 - l/(L-1) + 1e-5), s_h the
        ALiBi slopes of H heads
  diag  DiagAttention (lower layers): per query t a softmax over the keys of
        its block [t - t % w, t], q . k / sqrt(dk), as a loop over t
  both  y = RMSNorm(o) over all D channels, times norm.weight, then out.weight

It writes a fixture holding the input x, an upstream gradient dy, every
weight ("param.NAME", the C parameter names without the layer prefix), the
output y and the gradients of x and of every weight ("grad.NAME"); the
metadata records the shapes, the config keys the C test must set (d_model,
n_heads, n_layers, chunk_size, block_size, decay, norm_eps), the layer index
and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --kind norm|diag --out FIXTURE [--seed N] [--weights FILE]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
With --weights, the weights are read from a safetensors file (the names
above, with or without the "param." prefix) instead of drawn.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T = 2, 11
TOL = 1e-4
# Per kind: the config the C side must use and the layer index. norm: three
# heads (not a power of two: the ALiBi interleave) at layer 2 of 4 with the
# decay, chunks of 4 over T = 11 (two full chunks and a ragged one). diag:
# layer 0 of 4, blocks of 4 over T = 11 (two full blocks and a ragged one).
KINDS = {
    "norm": {"config": {"d_model": 18, "n_heads": 3, "n_layers": 4, "chunk_size": 4,
                        "block_size": 4, "decay": "true", "norm_eps": 1e-5}, "layer": 2},
    "diag": {"config": {"d_model": 16, "n_heads": 2, "n_layers": 4, "chunk_size": 4,
                        "block_size": 4, "decay": "false", "norm_eps": 1e-5}, "layer": 0},
}


def shapes(D):
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"qkv.weight": (3 * D, D), "norm.weight": (D,), "out.weight": (D, D)}


def draw_weights(D, rng):
    """Weights large enough that every path moves the output, as float32."""
    w = {}
    for name, shape in shapes(D).items():
        if name == "norm.weight":
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        w[name] = a.astype(np.float32)
    return w


def alibi_slopes(H):
    """ALiBi's slopes for H heads: 2^(-8(h+1)/P) for the largest power of two
    P <= H, then every other slope of 2P heads."""
    P = 1
    while 2 * P <= H:
        P *= 2
    s = [2.0 ** (-8.0 * (h + 1) / P) for h in range(P)]
    s += [2.0 ** (-8.0 * (2 * j + 1) / (2 * P)) for j in range(H - P)]
    return s


def log_decay(H, layer, n_layers):
    """TransNormerLLM's per-head log lambda for layer `layer` of `n_layers`."""
    depth = 1.0 - layer / (n_layers - 1) + 1e-5 if n_layers > 1 else 1.0 + 1e-5
    return torch.tensor([-s * depth for s in alibi_slopes(H)], dtype=torch.float64)


def norm_attention(q, k, v, log_lambda):
    """q, k, v: [B, T, H, d]; S_t = lambda S_{t-1} + phi(k_t) v_t^T, o_t = S_t^T phi(q_t)."""
    q, k = F.elu(q) + 1, F.elu(k) + 1
    Bq, Tq, H, d = q.shape
    S = torch.zeros(Bq, H, d, v.shape[-1], dtype=q.dtype)
    lam = torch.ones(H, dtype=q.dtype) if log_lambda is None else torch.exp(log_lambda)
    out = []
    for t in range(Tq):
        S = lam[None, :, None, None] * S + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        out.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return torch.stack(out, 1)


def diag_attention(q, k, v, w):
    """q, k, v: [B, T, H, d]; query t attends to keys [t - t % w, t] by softmax."""
    d = q.shape[-1]
    out = []
    for t in range(q.shape[1]):
        b = t - t % w
        s = torch.einsum("bhd,bshd->bhs", q[:, t], k[:, b:t + 1]) / math.sqrt(d)
        p = torch.softmax(s, -1)
        out.append(torch.einsum("bhs,bshd->bhd", p, v[:, b:t + 1]))
    return torch.stack(out, 1)


def mixer_forward(kind, x, p, cfg, layer):
    """x: [B, T, D] -> [B, T, D] in float64."""
    D, H = cfg["d_model"], cfg["n_heads"]
    q, k, v = (a.reshape(x.shape[0], x.shape[1], H, -1) for a in (x @ p["qkv.weight"].T).split(D, -1))
    if kind == "norm":
        lg = log_decay(H, layer, cfg["n_layers"]) if cfg["decay"] == "true" else None
        o = norm_attention(q, k, v, lg)
    else:
        o = diag_attention(q, k, v, cfg["block_size"])
    o = o.reshape(x.shape)
    n = o / torch.sqrt((o * o).mean(-1, keepdim=True) + cfg["norm_eps"]) * p["norm.weight"]
    return n @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all).
FIXTURES = {"mixer_transnormer_norm": ["--kind", "norm"], "mixer_transnormer_diag": ["--kind", "diag"]}

def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=tuple(KINDS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, layer = KINDS[args.kind]["config"], KINDS[args.kind]["layer"]
    D = cfg["d_model"]
    rng = np.random.default_rng(args.seed)
    w = safetensors_io.read_named(args.weights, shapes(D)) if args.weights else draw_weights(D, rng)
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D),
                                    lambda x, p: mixer_forward(args.kind, x, p, cfg, layer))
    meta = {"mixer": "transnormer", "kind": args.kind, "layer": str(layer), "B": str(B),
            "T": str(T), "tol": str(TOL), "seed": str(args.seed)}
    meta.update({key: str(val) for key, val in cfg.items()})
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: transnormer {args.kind} (layer {layer} of {cfg['n_layers']}), "
          f"B {B} T {T} D {D} H {cfg['n_heads']}, y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
