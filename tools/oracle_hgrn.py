#!/usr/bin/python3
"""PyTorch oracle for seqlab's hgrn mixer (Qin et al. 2023, "Hierarchically
Gated Recurrent Neural Network for Sequence Modeling").

A naive float64 PyTorch version of the whole mixer, written from the paper's
real-valued recurrence (as flash-linear-attention's HGRN layer), with the
recurrence as a plain token-by-token loop:
    f_t = lb + (1 - lb) sigmoid(x_t W_f^T)
    h_t = f_t h_{t-1} + (1 - f_t) silu(x_t W_i^T)
    y_t = (RMSNorm(h_t) w * silu(x_t W_g^T)) W_out^T
The lower bound is the paper's per-layer schedule cumsum(softmax(Gamma))_l
- softmax(Gamma)_0 at Gamma = 0 (uniform over the layers), scaled by the
option lower_bound_max; the C mixer computes it as lower_bound_max * l / L,
so the fixture checks that the two agree. Autograd gives the gradients.
The fixture holds x, an upstream gradient dy, every weight ("param.NAME",
the C names without the layer prefix), y and the gradients of x and of every
weight ("grad.NAME"); the metadata records the shapes, the settings the C
test must apply (d_model, n_heads, n_layers, layer, lower_bound_max) and the
tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--n_layers L] [--layer l]
  [--lower_bound_max M]
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
TOL = 1e-4
EPS = 1e-5


def shapes():
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"i.weight": (D, D), "f.weight": (D, D), "g.weight": (D, D), "norm.weight": (D,),
            "out.weight": (D, D)}


def draw_weights(rng):
    """Weights large enough that every path moves the output, as float32."""
    w = {}
    for name, shape in shapes().items():
        scale = 0.1 if name == "norm.weight" else 0.3
        a = scale * rng.standard_normal(shape) + (1.0 if name == "norm.weight" else 0.0)
        w[name] = a.astype(np.float32)
    return w


def lower_bound(n_layers, layer, lb_max):
    """The paper's cumulative-softmax bound of layer `layer` at Gamma = 0."""
    g = torch.softmax(torch.zeros(n_layers, dtype=torch.float64), 0)
    return lb_max * float(torch.cumsum(g, 0)[layer] - g[0])


def mixer_forward(x, p, lb):
    """x: [B, T, D] -> [B, T, D] in float64."""
    f = lb + (1 - lb) * torch.sigmoid(x @ p["f.weight"].T)
    u = F.silu(x @ p["i.weight"].T)
    h = torch.zeros(x.shape[0], D, dtype=x.dtype)
    hs = []
    for t in range(x.shape[1]):
        h = f[:, t] * h + (1 - f[:, t]) * u[:, t]
        hs.append(h)
    h = torch.stack(hs, 1)
    hn = h / torch.sqrt((h * h).mean(-1, keepdim=True) + EPS) * p["norm.weight"]
    return (hn * F.silu(x @ p["g.weight"].T)) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all): the
# top of 4 layers (lb = 3/4) and a reduced bound in the middle of 2.
FIXTURES = {"mixer_hgrn": [],
            "mixer_hgrn_bound": ["--n_layers", "2", "--layer", "1", "--lower_bound_max", "0.6"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--n_layers", type=int, default=4)
    ap.add_argument("--layer", type=int, default=3)
    ap.add_argument("--lower_bound_max", type=float, default=1.0)
    args = ap.parse_args()
    rng, w = fixtures.start(args, shapes(), draw_weights)
    lb = lower_bound(args.n_layers, args.layer, args.lower_bound_max)
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, lb))
    meta = {"mixer": "hgrn", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "norm_eps": str(EPS),
            "n_layers": str(args.n_layers), "layer": str(args.layer),
            "lower_bound_max": str(args.lower_bound_max)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: hgrn, B {B} T {T} D {D}, layer {args.layer} of {args.n_layers}, "
          f"lb {lb:.4g}, y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
