#!/usr/bin/python3
"""PyTorch oracle for seqlab's hyena mixer (Poli et al. 2023, "Hyena
Hierarchy"; HyenaDNA, Nguyen et al. 2023).

A naive float64 PyTorch version of the whole mixer, written from the paper
and docs/mixers.md, with every long convolution as a direct sum over lags
(no FFT):
    [x_0 | ... | x_{N-1} | v] = shortconv_3(x W_in^T)
    for o = 0 .. N-2:  u = v x_{N-1-o};  v = sum_{s<=t} h_o[t-s] u_s + skip_o u
    y = (v x_0) W_out^T
    h[c, l] = (W_f a(l))_c exp(-t_l |delta_c|),  a = three sin(f (W_j a + b_j)) layers
              on z(l) = [t_l, cos(f_b w_l), -sin(f_b w_l)]
Autograd gives the gradients. The fixture holds x, dy, every weight
("param.NAME"), y and the gradients of x and of every weight ("grad.NAME");
the metadata records the settings the C test applies (d_model, max_seq_len,
order, filter_width, filter_emb) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--seed N] [--order N] [--filter_width W] [--filter_emb E]
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

B, T, D, M = 2, 11, 16, 32   # M: max_seq_len, the filter's position scale
K = 3
TOL = 1e-4


def shapes(N, W, E):
    """Parameter name -> shape, in the C mixer's declaration order."""
    P, C = (N + 1) * D, (N - 1) * D
    s = {"in.weight": (P, D), "conv.weight": (P, K), "conv.bias": (P,)}
    for j in range(3):
        fan = W if j else E
        s[f"filter.{j}.weight"] = (W, fan)
        s[f"filter.{j}.bias"] = (W,)
    s.update({"filter.freq": (W,), "filter.out.weight": (C, W), "filter.skip": (C,),
              "out.weight": (D, D)})
    return s


def draw_weights(rng, N, W, E):
    """Weights large enough that every path moves the output, as float32."""
    w = {}
    for name, shape in shapes(N, W, E).items():
        if name == "filter.freq":
            a = 1.0 + 0.3 * rng.standard_normal(shape)
        elif name.startswith("filter.") and name != "filter.skip":
            a = rng.standard_normal(shape) / math.sqrt(shape[-1] if len(shape) > 1 else W)
        else:
            a = 0.3 * rng.standard_normal(shape)
        w[name] = a.astype(np.float32)
    return w


def filters(p, N, E, L):
    """The taps [C, L] of lags 0 .. L-1."""
    C, nb = (N - 1) * D, (E - 1) // 2
    lag = torch.arange(L, dtype=torch.float64)
    t = lag / (M - 1)
    w = 2 * math.pi * lag / M
    f = torch.linspace(1e-4, nb - 1, nb, dtype=torch.float64) if nb > 1 else \
        torch.tensor([1e-4], dtype=torch.float64)
    z = torch.cat([t[:, None], torch.cos(f[None] * w[:, None]), -torch.sin(f[None] * w[:, None])],
                  1)
    a = z
    for j in range(3):
        a = torch.sin(p["filter.freq"] * (a @ p[f"filter.{j}.weight"].T + p[f"filter.{j}.bias"]))
    h = a @ p["filter.out.weight"].T                                   # [L, C]
    lo, hi = math.log(1e-2) / 1.5, math.log(1e-2) / 0.3
    delta = torch.linspace(lo, hi, C, dtype=torch.float64).abs()
    return (h * torch.exp(-t[:, None] * delta[None])).T                # [C, L]


def mixer_forward(x, p, N, E):
    """x: [B, T, D] -> [B, T, D] in float64."""
    Tn = x.shape[1]
    pr = x @ p["in.weight"].T
    pad = torch.cat([torch.zeros(x.shape[0], K - 1, pr.shape[-1], dtype=x.dtype), pr], 1)
    pc = p["conv.bias"] + sum(p["conv.weight"][:, j] * pad[:, j:j + Tn] for j in range(K))
    xs = [pc[..., i * D:(i + 1) * D] for i in range(N + 1)]
    h = filters(p, N, E, Tn)
    v = xs[N]
    for o in range(N - 1):
        u = v * xs[N - 1 - o]
        ho = h[o * D:(o + 1) * D]                                      # [D, T]
        conv = torch.stack([sum(ho[:, t - s] * u[:, s] for s in range(t + 1))
                            for t in range(Tn)], 1)
        v = conv + p["filter.skip"][o * D:(o + 1) * D] * u
    return (v * xs[0]) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all):
# order 2 with the default filter, order 3 with a narrow one.
FIXTURES = {"mixer_hyena": [],
            "mixer_hyena_order3": ["--order", "3", "--filter_width", "8", "--filter_emb", "3"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--order", type=int, default=2)
    ap.add_argument("--filter_width", type=int, default=64)
    ap.add_argument("--filter_emb", type=int, default=5)
    args = ap.parse_args()
    N, W, E = args.order, args.filter_width, args.filter_emb
    rng, w = fixtures.start(args, None, lambda r: draw_weights(r, N, W, E))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, N, E))
    meta = {"mixer": "hyena", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "max_seq_len": str(M), "order": str(N),
            "filter_width": str(W), "filter_emb": str(E)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: hyena, B {B} T {T} D {D}, order {N}, filter {E} -> {W}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
