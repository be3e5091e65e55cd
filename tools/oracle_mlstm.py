#!/usr/bin/python3
"""PyTorch oracle for seqlab's mlstm mixer (xLSTM's matrix memory, Beck et al.
2024).

A naive float64 PyTorch version of the whole mixer, written from the
equations in src/mixers/mlstm.c and src/ops/mlstm.h (and ../shared/PAPERS.md),
with the stabilised recurrence as a plain token-by-token loop:
    m_t = max(lf_t + m_{t-1}, it_t)
    C_t = exp(lf_t + m_{t-1} - m_t) C_{t-1} + exp(it_t - m_t) k_t v_t^T
    n_t = exp(lf_t + m_{t-1} - m_t) n_{t-1} + exp(it_t - m_t) k_t
    h_t = C_t^T q_t / max(|n_t . q_t|, exp(-m_t))
(m_0 = -inf: the first token's m is it_1 and the empty state contributes
nothing), and autograd through all of it, m included: agreement with the C
engine's chunked forward and hand-written backward (which holds m fixed)
means something. It writes a fixture holding the input x, an upstream
gradient dy, every weight ("param.NAME", the C parameter names without the
layer prefix), the output y and the gradients of x and of every weight
("grad.NAME"); the metadata records the shapes, the config keys the C test
must set and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
With --weights, the weights are read from a safetensors file (the names
above, with or without the "param." prefix) instead of drawn.
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
DK = D // H
FGATE_LO, FGATE_HI = 3.0, 6.0   # forget-gate bias offsets, linear over the heads
TOL = 1e-4
DEN_WINS = []  # per token: the fraction of (row, head) where |n . q| beat the floor
# Config keys the C side must use; chunk 5 over T = 11 gives two full chunks
# and a ragged one.
CONFIG = {"d_model": D, "n_heads": H, "chunk_size": 5, "norm_eps": 1e-5}


def shapes():
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"qkv.weight": (3 * D, D), "gate.weight": (2 * H, D), "gate.bias": (2 * H,),
            "norm.weight": (DK,), "ogate.weight": (D, D), "out.weight": (D, D)}


def draw_weights(rng):
    """Weights large enough that every path moves the output, as float32. The
    gate bias spreads the input gates over [-2, 2] and moves the forget gates
    down from the offsets, so some gates forget quickly."""
    w = {}
    for name, shape in shapes().items():
        if name == "norm.weight":
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name == "gate.bias":
            a = np.concatenate([rng.uniform(-2.0, 2.0, H), rng.uniform(-5.0, -1.0, H)])
        else:
            a = 0.3 * rng.standard_normal(shape)
        w[name] = a.astype(np.float32)
    return w


def heads(x):
    """[B, T, H*d] -> [B, T, H, d]."""
    return x.reshape(x.shape[0], x.shape[1], H, -1)


def gate_offsets():
    """[2H]: 0 for the input gates, linspace(3, 6, H) for the forget gates."""
    f = [FGATE_LO + (FGATE_HI - FGATE_LO) * h / (H - 1) if H > 1 else FGATE_LO for h in range(H)]
    return torch.tensor([0.0] * H + f, dtype=torch.float64)


def mlstm_recurrence(q, k, v, it, lf):
    """The stabilised recurrence token by token. q, k: [B, T, H, dk], v: [B, T, H, dv],
    it, lf: [B, T, H] -> h: [B, T, H, dv]."""
    Bn, Tn = q.shape[0], q.shape[1]
    C = torch.zeros(Bn, H, q.shape[3], v.shape[3], dtype=q.dtype)
    n = torch.zeros(Bn, H, q.shape[3], dtype=q.dtype)
    m = None
    out = []
    for t in range(Tn):
        if m is None:  # m_0 = -inf: only the new token
            mt = it[:, t]
            a = torch.zeros_like(mt)
        else:
            mt = torch.maximum(lf[:, t] + m, it[:, t])
            a = torch.exp(lf[:, t] + m - mt)
        b = torch.exp(it[:, t] - mt)
        kt, vt, qt = k[:, t], v[:, t], q[:, t]
        C = a[..., None, None] * C + b[..., None, None] * kt.unsqueeze(-1) * vt.unsqueeze(-2)
        n = a[..., None] * n + b[..., None] * kt
        num = torch.einsum("bhkv,bhk->bhv", C, qt)
        den = (n * qt).sum(-1)
        z = torch.maximum(den.abs(), torch.exp(-mt))
        DEN_WINS.append(float((den.abs() > torch.exp(-mt)).double().mean()))
        out.append(num / z[..., None])
        m = mt
    return torch.stack(out, 1)


def mixer_forward(x, p):
    """x: [B, T, D] -> [B, T, D] in float64."""
    q, k, v = (x @ p["qkv.weight"].T).split(D, -1)
    q, k, v = heads(q), heads(k) / math.sqrt(DK), heads(v)
    gates = x @ p["gate.weight"].T + p["gate.bias"] + gate_offsets()
    it, lf = gates[..., :H], F.logsigmoid(gates[..., H:])
    h = mlstm_recurrence(q, k, v, it, lf)
    hn = h / torch.sqrt((h * h).mean(-1, keepdim=True) + CONFIG["norm_eps"]) * p["norm.weight"]
    o = hn.reshape(x.shape) * torch.sigmoid(x @ p["ogate.weight"].T)
    return o @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all).
FIXTURES = {"mixer_mlstm": []}

def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    args = ap.parse_args()
    rng, w = fixtures.start(args, shapes(), draw_weights)
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p))
    meta = {"mixer": "mlstm", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed)}
    meta.update({key: str(val) for key, val in CONFIG.items()})
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: mlstm, B {B} T {T} D {D} H {H}, y rms "
          f"{float(y.pow(2).mean().sqrt()):.4g}, |n.q| beats the floor in "
          f"{100 * sum(DEN_WINS) / len(DEN_WINS):.0f}% of (token, head)")


if __name__ == "__main__":
    main()
