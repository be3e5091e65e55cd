#!/usr/bin/python3
"""PyTorch oracle for seqlab's decayed linear-attention mixers
(linear_attention, retnet, gla) and the Mamba-2 SSD mixer (mamba2).

A naive float64 PyTorch version of each mixer, written from the equations in
src/mixers/linear_attention.c, retnet.c, gla.c and mamba2.c (and
../shared/PAPERS.md), with the recurrence S_t = diag(exp(g_t)) S_{t-1} +
k_t v_t^T (for mamba2 the SSD state update H_t = exp(dt_t A) H_{t-1} +
B_t (dt_t x_t)^T) as a plain token-by-token loop, so that agreement with the
C engine's chunked forward and hand-written backward means something. It
writes a fixture holding the input x, an upstream gradient dy, every weight
("param.NAME", the C parameter names without the layer prefix), the output y
and the gradients of x and of every weight ("grad.NAME"); the metadata
records the shapes, the config keys the C test must set and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --mixer linear_attention|retnet|gla|mamba2 --out FIXTURE [--weights FILE]
        [--seed N]
        [--feature-map elu1|taylor] [--normalize true|false]
                                      (linear_attention's phi and normaliser;
                                       default elu1 with the normaliser)
        [--conv-size K]               (mamba2's short conv kernel, 0 for none;
                                       default 4)
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

B, T, D, H = 2, 11, 16, 2
DK = D // H
GATE_RANK = 16            # gla: rank of the gate projection
GATE_NORM = 16.0          # gla: logits divided by this after logsigmoid
LINEAR_EPS = 1e-6         # linear_attention: the normaliser's guard
MIXERS = ("linear_attention", "retnet", "gla", "mamba2")
TOL = 1e-4
# Config keys the C side must use; chunk 5 over T = 11 gives two full chunks
# and a ragged one. feature_map and normalize come from the command line.
CONFIG = {"d_model": D, "n_heads": H, "chunk_size": 5, "norm_eps": 1e-5,
          "rope_theta": 10000.0, "feature_map": "elu1", "normalize": "true"}
# Keys only some mixers have, recorded only in their fixtures (conv_size from
# the command line).
MIXER_CONFIG = {"mamba2": {"conv_size": 4}}


def config_of(mixer):
    """The config keys of mixer's fixture."""
    return {**CONFIG, **MIXER_CONFIG.get(mixer, {})}


def shapes(mixer):
    """Parameter name -> shape, in the C mixer's declaration order."""
    if mixer == "linear_attention":
        return {"qkv.weight": (3 * D, D), "out.weight": (D, D)}
    if mixer == "retnet":
        return {"qkv.weight": (3 * D, D), "gate.weight": (D, D), "norm.weight": (DK,),
                "out.weight": (D, D)}
    if mixer == "mamba2":
        k = MIXER_CONFIG["mamba2"]["conv_size"]
        conv = {"conv.weight": (3 * D, k), "conv.bias": (3 * D,)} if k > 0 else {}
        return {"in.weight": (4 * D + H, D), **conv, "A_log": (H,), "dt_bias": (H,), "D": (H,),
                "norm.weight": (D,), "out.weight": (D, D)}
    return {"qkvz.weight": (4 * D, D), "gate1.weight": (GATE_RANK, D),
            "gate2.weight": (D, GATE_RANK), "gate2.bias": (D,), "norm.weight": (DK,),
            "out.weight": (D, D)}


def draw_weights(mixer, rng):
    """Weights large enough that every path moves the output, as float32.
    mamba2's dt_bias and A_log give dt ~ 0.1 .. 2.5 and A in (0.37, 2.7), so
    exp(dt A) spans strong and weak decay and the state carries across the
    chunk edges; its D is away from its init of 1 so that the skip's
    gradient is not a special case."""
    w = {}
    for name, shape in shapes(mixer).items():
        if name == "norm.weight":
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name in ("gate2.bias", "dt_bias", "D", "conv.bias"):
            a = 0.5 * rng.standard_normal(shape)
        elif name == "conv.weight":
            a = rng.uniform(-0.5, 0.5, shape)
        elif name == "A_log":
            a = rng.uniform(-1.0, 1.0, shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        w[name] = a.astype(np.float32)
    return w


def heads(x):
    """[B, T, H*d] -> [B, T, H, d]."""
    return x.reshape(x.shape[0], x.shape[1], H, -1)


def recurrence(q, k, v, g):
    """S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t, token by token.
    q, k: [B, T, H, dk], v: [B, T, H, dv], g: broadcastable to q (or None)."""
    S = torch.zeros(q.shape[0], H, q.shape[3], v.shape[3], dtype=q.dtype)
    out = []
    for t in range(q.shape[1]):
        if g is not None:
            S = torch.exp(g[:, t]).unsqueeze(-1) * S
        S = S + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        out.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return torch.stack(out, 1)


def taylor(x):
    """Based's feature map: [1, u, vec(u u^T) / sqrt(2)] with u = x / dk^(1/4)."""
    u = x / DK ** 0.25
    sq = (u.unsqueeze(-1) * u.unsqueeze(-2)).flatten(-2) / math.sqrt(2.0)
    return torch.cat([torch.ones_like(u[..., :1]), u, sq], -1)


def rope(x, theta):
    """Rotate pairs (i, i + dk/2) of each head by t * theta^(-2i/dk). x: [B, T, H, dk]."""
    half = DK // 2
    freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / DK)
    ang = torch.arange(x.shape[1], dtype=torch.float64).unsqueeze(1) * freq
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def gated_rmsnorm(o, z, w):
    """RMSNorm of each head's o times w, times silu(z). o: [B, T, H, dv], z: [B, T, D]."""
    n = o / torch.sqrt((o * o).mean(-1, keepdim=True) + CONFIG["norm_eps"]) * w
    return n.reshape(z.shape) * F.silu(z)


def short_conv(x, w, b):
    """Causal depthwise conv with bias: y_t = b + sum_j w[:, j] x_{t + j - (K-1)},
    zeros before token 0 (PyTorch's Conv1d, groups = channels, padding K-1)."""
    y = F.conv1d(x.transpose(1, 2), w.unsqueeze(1), b, padding=w.shape[1] - 1, groups=w.shape[0])
    return y[..., :x.shape[1]].transpose(1, 2)


def mamba2_forward(x, p):
    """Mamba-2's SSD mixer (Dao & Gu 2024) with mamba2.c's simplifications:
    state size N = head dim P = D/H, B and C per head (ngroups = H); the
    output norm as the reference code's default: gate first, then one RMSNorm
    over all D channels. Per head h:
        [z | x | B | C | dt_in] = u W_in^T,  x, B, C <- silu(conv(x, B, C))
        dt_t = softplus(dt_in_t + dt_bias_h),  A_h = -exp(A_log_h)
        H_t = exp(dt_t A_h) H_{t-1} + B_t (dt_t x_t)^T   (H_t: [N, P])
        y_t = H_t^T C_t + D_h x_t
        out = RMSNorm(y * silu(z)) w W_out^T
    with the state update a plain token loop."""
    bsz, tlen = x.shape[0], x.shape[1]
    z, xbc, dt_in = (x @ p["in.weight"].T).split([D, 3 * D, H], -1)
    if "conv.weight" in p:
        xbc = short_conv(xbc, p["conv.weight"], p["conv.bias"])
    xs, Bm, Cm = (heads(a) for a in F.silu(xbc).split(D, -1))   # [B, T, H, P or N]
    dt = F.softplus(dt_in + p["dt_bias"])                       # [B, T, H]
    A = -torch.exp(p["A_log"])                                  # [H]
    state = torch.zeros(bsz, H, DK, DK, dtype=x.dtype)          # [B, H, N, P]
    ys = []
    for t in range(tlen):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        dx = dt[:, t, :, None] * xs[:, t]                       # [B, H, P]
        state = decay * state + Bm[:, t, :, :, None] * dx[:, :, None, :]
        yt = torch.einsum("bhnp,bhn->bhp", state, Cm[:, t]) + p["D"][:, None] * xs[:, t]
        ys.append(yt)
    y = torch.stack(ys, 1)                                      # [B, T, H, P]
    g = y.reshape(z.shape) * F.silu(z)
    n = g / torch.sqrt((g * g).mean(-1, keepdim=True) + CONFIG["norm_eps"]) * p["norm.weight"]
    return n @ p["out.weight"].T


def mixer_forward(mixer, x, p):
    """x: [B, T, D] -> [B, T, D] in float64."""
    if mixer == "mamba2":
        return mamba2_forward(x, p)
    if mixer == "linear_attention":
        q, k, v = (heads(a) for a in (x @ p["qkv.weight"].T).split(D, -1))
        if CONFIG["feature_map"] == "taylor":
            q, k = taylor(q), taylor(k)
        else:
            q, k = F.elu(q) + 1, F.elu(k) + 1
        o = recurrence(q, k, v, None)
        if CONFIG["normalize"] == "true":
            den = recurrence(q, k, torch.ones_like(v[..., :1]), None)
            o = o / (den + LINEAR_EPS)
        return o.reshape(x.shape) @ p["out.weight"].T
    if mixer == "retnet":
        q, k, v = (heads(a) for a in (x @ p["qkv.weight"].T).split(D, -1))
        q, k = rope(q, CONFIG["rope_theta"]), rope(k, CONFIG["rope_theta"])
        q = q / math.sqrt(DK)
        gamma = 1.0 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float64))
        g = torch.log(gamma)[None, None, :, None]
        o = recurrence(q, k, v, g.expand(q.shape[0], q.shape[1], H, 1))
        z = x @ p["gate.weight"].T
        return gated_rmsnorm(o, z, p["norm.weight"]) @ p["out.weight"].T
    q, k, v, z = (x @ p["qkvz.weight"].T).split(D, -1)
    q, k, v = heads(q) / math.sqrt(DK), heads(k), heads(v)
    logit = (x @ p["gate1.weight"].T) @ p["gate2.weight"].T + p["gate2.bias"]
    gk = heads(F.logsigmoid(logit) / GATE_NORM)
    o = recurrence(q, k, v, gk)
    return gated_rmsnorm(o, z, p["norm.weight"]) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all).
FIXTURES = {
    "mixer_linear_attention": ["--mixer", "linear_attention"],
    "mixer_linear_attention_taylor": ["--mixer", "linear_attention", "--feature-map", "taylor",
                                      "--normalize", "false"],
    "mixer_retnet": ["--mixer", "retnet"],
    "mixer_gla": ["--mixer", "gla"],
    "mixer_mamba2": ["--mixer", "mamba2"],
    "mixer_mamba2_noconv": ["--mixer", "mamba2", "--conv-size", "0"],
}

def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixer", required=True, choices=MIXERS)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--feature-map", choices=("elu1", "taylor"), default="elu1")
    ap.add_argument("--normalize", choices=("true", "false"), default="true")
    ap.add_argument("--conv-size", type=int, default=4)
    args = ap.parse_args()
    if args.conv_size < 0:
        ap.error("--conv-size must be >= 0")
    torch.set_num_threads(1)
    CONFIG["feature_map"] = args.feature_map
    CONFIG["normalize"] = args.normalize
    MIXER_CONFIG["mamba2"]["conv_size"] = args.conv_size
    rng = np.random.default_rng(args.seed)
    w = safetensors_io.read_named(args.weights, shapes(args.mixer)) if args.weights else draw_weights(args.mixer, rng)
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D),
                                    lambda x, p: mixer_forward(args.mixer, x, p))
    meta = {"mixer": args.mixer, "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed)}
    meta.update({key: str(val) for key, val in config_of(args.mixer).items()})
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: {args.mixer}, B {B} T {T} D {D} H {H}, y rms "
          f"{float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
