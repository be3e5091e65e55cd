#!/usr/bin/python3
"""PyTorch oracle for seqlab's lmu mixer (Voelker et al. 2019, "Legendre
Memory Units"; LMUFormer, Liu et al. 2024).

A naive float64 PyTorch version of the whole mixer, written from the papers
and docs/mixers.md, with the memory as a token loop of its recurrence:
    u = x W_u^T + b_u
    m_t = A_bar m_{t-1} + B_bar u_t        per u channel, q = order coefficients
    y = relu(m W_m^T + x W_x^T + b_h) W_out^T + b_out
A_ij = (2i+1)/theta (-1 if i < j else (-1)^(i-j+1)), B_i = (2i+1)(-1)^i/theta,
discretised by zero-order hold: exp([[A, B], [0, 0]]) (torch.matrix_exp) =
[[A_bar, B_bar], [0, 1]], an independent check of the C mixer's own matrix
exponential. Autograd gives the gradients. The fixture holds x, dy, every
weight ("param.NAME"), y and the gradients of x and of every weight
("grad.NAME"); the metadata records the settings the C test applies
(d_model, order, theta, memory_d) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--seed N] [--order Q] [--theta TH] [--memory_d U]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import safetensors_io  # noqa: E402

B, T, D = 2, 11, 16
TOL = 1e-4


def shapes(q, U):
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"u.weight": (U, D), "u.bias": (U,), "hm.weight": (D, U * q), "hx.weight": (D, D),
            "h.bias": (D,), "out.weight": (D, D), "out.bias": (D,)}


def draw_weights(rng, q, U):
    """Weights large enough that every path moves the output, as float32."""
    return {n: (0.3 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes(q, U).items()}


def system(q, theta):
    """A_bar [q, q], B_bar [q] by zero-order hold, float64."""
    i = torch.arange(q, dtype=torch.float64)
    r = (2 * i + 1) / theta
    ii, jj = torch.meshgrid(i, i, indexing="ij")
    A = r[:, None] * torch.where(ii < jj, -torch.ones_like(ii), (-1.0) ** (ii - jj + 1))
    Bc = r * (-1.0) ** i
    aug = torch.zeros(q + 1, q + 1, dtype=torch.float64)
    aug[:q, :q], aug[:q, q] = A, Bc
    e = torch.matrix_exp(aug)
    return e[:q, :q], e[:q, q]


def mixer_forward(x, p, q, theta, U):
    """x: [B, T, D] -> [B, T, D] in float64."""
    Ab, Bb = system(q, theta)
    u = x @ p["u.weight"].T + p["u.bias"]                           # [B, T, U]
    m = torch.zeros(x.shape[0], U, q, dtype=x.dtype)
    ms = []
    for t in range(x.shape[1]):
        m = m @ Ab.T + u[:, t, :, None] * Bb
        ms.append(m.reshape(x.shape[0], U * q))
    m = torch.stack(ms, 1)
    h = torch.relu(m @ p["hm.weight"].T + x @ p["hx.weight"].T + p["h.bias"])
    return h @ p["out.weight"].T + p["out.bias"]


# The committed fixtures this oracle makes (`--all DIR` writes them all): the
# defaults, and a short window of low order over two memory channels.
FIXTURES = {"mixer_lmu": [],
            "mixer_lmu_short": ["--order", "6", "--theta", "5", "--memory_d", "2"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--order", type=int, default=64)
    ap.add_argument("--theta", type=float, default=128.0)
    ap.add_argument("--memory_d", type=int, default=1)
    args = ap.parse_args()
    q, th, U = args.order, args.theta, args.memory_d
    rng, w = fixtures.start(args, None, lambda r: draw_weights(r, q, U))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), lambda x, p: mixer_forward(x, p, q, th, U))
    meta = {"mixer": "lmu", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "order": str(q), "theta": str(th), "memory_d": str(U)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: lmu, B {B} T {T} D {D}, order {q}, theta {th:g}, memory_d {U}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
