#!/usr/bin/python3
"""PyTorch oracle for seqlab's h3 mixer (Fu, Dao, Saab, Thomas, Rudra, Re
2023, "Hungry Hungry Hippos: Towards Language Modeling with State Space
Models"), head dimension 1.

A naive float64 PyTorch version of the whole layer, written from the paper:
the shift SSM as its recurrence's kernel, a direct sum over the last S taps,
and the diagonal SSM as its complex recurrence token by token (oracle_s4d's
ssm):
    q, k, v = x W_q^T, x W_k^T, x W_v^T
    k~[t] = sum_{j < S} shift.weight[:, S-1-j] k[t - j]
    y = SSM_diag(k~ * v) (+ ssm.D (k~ * v)),   out = (q * y) W_out^T
Autograd gives the gradients. The fixture holds x, an upstream gradient dy,
every weight ("param.NAME"), y and the gradients of x and of every weight
("grad.NAME"); the metadata records the shapes, the settings the C test must
apply (d_model, n_heads, d_state, shift_size) and the tolerance.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--d_state N] [--shift_size S]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402  (needs the path above)
import oracle_s4d  # noqa: E402
import safetensors_io  # noqa: E402

B, T, D, H = 2, 11, 16, 2
TOL = 1e-4


def shapes(M, S):
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"q.weight": (D, D), "k.weight": (D, D), "v.weight": (D, D), "shift.weight": (D, S),
            "ssm.log_dt": (D,), "ssm.A.log_re": (D, M), "ssm.A.im": (D, M),
            "ssm.C": (1, D, M, 2), "ssm.D": (D,), "out.weight": (D, D)}


def draw_weights(rng, M, S):
    """Weights around the init (S4D-Lin A, with noise; larger dt), large
    enough that every path moves the output, as float32."""
    re, im = oracle_s4d.init_a("lin", M)
    w = {n: 0.3 * rng.standard_normal((D, D)) for n in ("q.weight", "k.weight", "v.weight")}
    w.update({"shift.weight": rng.uniform(-1, 1, (D, S)) / math.sqrt(S),
              "ssm.log_dt": rng.uniform(math.log(0.01), math.log(0.5), D),
              "ssm.A.log_re": re + 0.2 * rng.standard_normal((D, M)),
              "ssm.A.im": im + 0.2 * rng.standard_normal((D, M)),
              "ssm.C": 0.7 * rng.standard_normal((1, D, M, 2)),
              "ssm.D": rng.standard_normal(D),
              "out.weight": 0.3 * rng.standard_normal((D, D))})
    return {k: np.asarray(v).astype(np.float32) for k, v in w.items()}


def mixer_forward(x, p):
    """x: [B, T, D] -> [B, T, D] in float64."""
    q, k, v = (x @ p[n + ".weight"].T for n in "qkv")
    w = p["shift.weight"]
    S = w.shape[1]
    ks = torch.zeros_like(k)
    for t in range(x.shape[1]):
        for j in range(min(S, t + 1)):
            ks[:, t] = ks[:, t] + w[:, S - 1 - j] * k[:, t - j]
    y = oracle_s4d.ssm(ks * v, p, False, "ssm.")
    return (q * y) @ p["out.weight"].T


# The committed fixtures this oracle makes (`--all DIR` writes them all): the
# defaults (a shift longer than T), and a short shift with a small state.
FIXTURES = {"mixer_h3": [],
            "mixer_h3_small": ["--d_state", "8", "--shift_size", "4"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--d_state", type=int, default=64)
    ap.add_argument("--shift_size", type=int, default=64)
    args = ap.parse_args()
    M, S = args.d_state // 2, args.shift_size
    rng, w = fixtures.start(args, shapes(M, S), lambda r: draw_weights(r, M, S))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D), mixer_forward)
    meta = {"mixer": "h3", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "d_state": str(args.d_state),
            "shift_size": str(S)}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: h3, B {B} T {T} D {D}, d_state {args.d_state}, shift_size {S}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
