#!/usr/bin/python3
"""PyTorch oracle for seqlab's lstm mixer (Hochreiter & Schmidhuber 1997;
the sequence-to-sequence baseline of Sutskever et al. 2014).

A naive float64 PyTorch version of the mixer, the cell as a plain token
loop in nn.LSTM's gate order (i, f, g, o):
    z_t = x_t W_ih^T + b + h_{t-1} W_hh^T
    c_t = sigmoid(z_f) c_{t-1} + sigmoid(z_i) tanh(z_g)
    y_t = h_t = sigmoid(z_o) tanh(c_t)
and, as a check of the one-to-one mapping the docs promise, torch.nn.LSTM
run with weight_ih_l0 = weight_ih, weight_hh_l0 = weight_hh, bias_ih_l0 =
bias, bias_hh_l0 = 0 must give the same output. Autograd gives the
gradients. The fixture holds x, an upstream gradient dy, every weight
("param.NAME", the C names without the layer prefix), y and the gradients of
x and of every weight ("grad.NAME"); the metadata records the shapes, the
settings the C test must apply (d_model, n_heads) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
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
    return {"weight_ih": (4 * D, D), "weight_hh": (4 * D, D), "bias": (4 * D,)}


def draw_weights(rng):
    """Weights large enough that every gate moves, the forget bias near its
    init of 1, as float32."""
    w = {n: (0.3 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes().items()}
    w["bias"][D:2 * D] += 1.0
    return w


def mixer_forward(x, p):
    """x: [B, T, D] -> h: [B, T, D] in float64, token by token."""
    h = torch.zeros(x.shape[0], D, dtype=x.dtype)
    c = torch.zeros_like(h)
    gx = x @ p["weight_ih"].T + p["bias"]
    hs = []
    for t in range(x.shape[1]):
        i, f, g, o = (gx[:, t] + h @ p["weight_hh"].T).split(D, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1)


def check_nn_lstm(x, p, y):
    """torch.nn.LSTM with the same weights gives the same output."""
    m = torch.nn.LSTM(D, D, batch_first=True).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(p["weight_ih"])
        m.weight_hh_l0.copy_(p["weight_hh"])
        m.bias_ih_l0.copy_(p["bias"])
        m.bias_hh_l0.zero_()
        ref, _ = m(x)
    err = float((ref - y).abs().max())
    if err > 1e-12:
        sys.exit(f"nn.LSTM disagrees with the token loop by {err:g}")


# The committed fixture this oracle makes (`--all DIR` writes it).
FIXTURES = {"mixer_lstm": []}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    args = fixtures.parser(__doc__).parse_args()
    rng, w = fixtures.start(args, shapes(), draw_weights)

    def forward(x, p):
        y = mixer_forward(x, p)
        check_nn_lstm(x.detach(), {n: t.detach() for n, t in p.items()}, y.detach())
        return y

    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), forward)
    fixtures.write(args.out, tensors, "lstm", (B, T), TOL, args.seed, {"d_model": D, "n_heads": H})
    print(f"{args.out}: lstm, B {B} T {T} D {D}, nn.LSTM agrees, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
