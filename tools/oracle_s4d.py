#!/usr/bin/python3
"""PyTorch oracle for seqlab's s4d mixer (Gu, Gupta, Goel, Re 2022, "On the
Parameterization and Initialization of Diagonal State Space Models").

A naive float64 PyTorch version of the whole S4D block, written from the
paper with the state space model as its direct complex recurrence (ZOH),
token by token, never as a kernel or an FFT:
    dt = exp(log_dt),  A = -exp(A.log_re) + i A.im,  E = exp(dt A),  Bbar = (E - 1) / A
    x_t = E x_{t-1} + Bbar u_t,   y_t = 2 Re sum_n C_n x_{t,n} + D u_t
and, bidirectional (causal = false), a second C on the reversed recurrence
    r_t = E r_{t+1} + Bbar u_{t+1} (r_{T-1} = 0),   y_t += 2 Re sum_n C'_n r_{t,n}
(the kernel at lags -1, -2, ...), then GELU (tanh form), out.weight, out.bias
and the GLU a * sigmoid(g). Autograd gives the gradients. The fixture holds
x, an upstream gradient dy, every weight ("param.NAME", the C names without
the layer prefix), y and the gradients of x and of every weight
("grad.NAME"); the metadata records the shapes, the settings the C test must
apply (d_model, n_heads, d_state, init, causal) and the tolerance. The
weights are drawn around the option's init (A per init, with noise; dt
larger than the init's so 11 tokens see the kernel decay and turn).

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --out FIXTURE [--weights FILE] [--seed N] [--d_state N] [--init lin|inv|real]
  [--bidirectional]
With --all DIR, it writes every fixture it makes (FIXTURES) into DIR.
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
TOL = 1e-4


def shapes(M, S):
    """Parameter name -> shape, in the C mixer's declaration order."""
    return {"log_dt": (D,), "A.log_re": (D, M), "A.im": (D, M), "C": (S, D, M, 2), "D": (D,),
            "out.weight": (2 * D, D), "out.bias": (2 * D,)}


def init_a(init, M):
    """The paper's A per init as (log(-Re A), Im A), each [M]."""
    n = np.arange(M, dtype=np.float64)
    N = 2 * M
    re = np.log(n + 1) if init == "real" else np.full(M, math.log(0.5))
    im = {"lin": math.pi * n, "inv": N / math.pi * (N / (2 * n + 1) - 1),
          "real": np.zeros(M)}[init]
    return re, im


def draw_weights(rng, M, S, init):
    """Weights around the init, large enough that every path moves the
    output, as float32."""
    re, im = init_a(init, M)
    w = {"log_dt": rng.uniform(math.log(0.01), math.log(0.5), D),
         "A.log_re": re + 0.2 * rng.standard_normal((D, M)),
         "A.im": im + 0.2 * rng.standard_normal((D, M)),
         "C": 0.7 * rng.standard_normal((S, D, M, 2)),
         "D": rng.standard_normal(D),
         "out.weight": 0.3 * rng.standard_normal((2 * D, D)),
         "out.bias": 0.1 * rng.standard_normal(2 * D)}
    return {k: np.asarray(v).astype(np.float32) for k, v in w.items()}


def ssm(x, p, bidirectional, pre=""):
    """The diagonal SSM alone (parameters pre + "log_dt", ...): x: [B, T, D]
    -> y + D x, in float64."""
    dt = torch.exp(p[pre + "log_dt"])[:, None]
    A = torch.complex(-torch.exp(p[pre + "A.log_re"]), p[pre + "A.im"])
    E = torch.exp(dt * A)
    Bbar = (E - 1) / A
    C = torch.complex(p[pre + "C"][..., 0], p[pre + "C"][..., 1])
    u = x.to(torch.complex128)
    s = torch.zeros(x.shape[0], *E.shape, dtype=torch.complex128)
    ys = []
    for t in range(x.shape[1]):
        s = E * s + Bbar * u[:, t, :, None]
        ys.append(2 * (C[0] * s).sum(-1).real)
    y = torch.stack(ys, 1)
    if bidirectional:
        r = torch.zeros_like(s)
        back = [None] * x.shape[1]
        for t in reversed(range(x.shape[1])):
            back[t] = 2 * (C[1] * r).sum(-1).real
            r = E * r + Bbar * u[:, t, :, None]
        y = y + torch.stack(back, 1)
    return y + p[pre + "D"] * x


def mixer_forward(x, p, bidirectional):
    """x: [B, T, D] -> [B, T, D] in float64."""
    y = ssm(x, p, bidirectional)
    o = F.gelu(y, approximate="tanh") @ p["out.weight"].T + p["out.bias"]
    return o[..., :D] * torch.sigmoid(o[..., D:])


# The committed fixtures this oracle makes (`--all DIR` writes them all):
# each init, and the bidirectional form.
FIXTURES = {"mixer_s4d": [],
            "mixer_s4d_inv": ["--init", "inv", "--d_state", "16"],
            "mixer_s4d_real": ["--init", "real", "--d_state", "6"],
            "mixer_s4d_bidir": ["--bidirectional", "--d_state", "8"]}


def main():
    if fixtures.all_mode(__file__, FIXTURES):
        return
    ap = fixtures.parser(__doc__)
    ap.add_argument("--d_state", type=int, default=64)
    ap.add_argument("--init", choices=["lin", "inv", "real"], default="lin")
    ap.add_argument("--bidirectional", action="store_true")
    args = ap.parse_args()
    M, S = args.d_state // 2, 2 if args.bidirectional else 1
    rng, w = fixtures.start(args, shapes(M, S), lambda r: draw_weights(r, M, S, args.init))
    tensors, y = fixtures.run_mixer(w, rng, (B, T, D),
                                    lambda x, p: mixer_forward(x, p, args.bidirectional))
    meta = {"mixer": "s4d", "B": str(B), "T": str(T), "tol": str(TOL), "seed": str(args.seed),
            "d_model": str(D), "n_heads": str(H), "d_state": str(args.d_state),
            "init": args.init, "causal": "false" if args.bidirectional else "true"}
    safetensors_io.write(args.out, tensors, meta)
    print(f"{args.out}: s4d, B {B} T {T} D {D}, d_state {args.d_state}, init {args.init}, "
          f"{'bidirectional' if args.bidirectional else 'causal'}, "
          f"y rms {float(y.pow(2).mean().sqrt()):.4g}")


if __name__ == "__main__":
    main()
