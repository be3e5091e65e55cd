"""What the mixer oracles (tools/oracle_*.py) share: one float64 run of a
mixer into a fixture's tensors, and the `--all DIR` mode.

Each oracle lists the committed fixtures it makes as FIXTURES, file name ->
its own command-line arguments; `make parity` runs every oracle with
`--all DIR`, so adding a mixer's fixture touches only its oracle.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch


def make_all(script, fixtures, out_dir):
    """Runs script once per fixture, writing out_dir/NAME.safetensors."""
    os.makedirs(out_dir, exist_ok=True)
    for name, args in fixtures.items():
        out = os.path.join(out_dir, name + ".safetensors")
        subprocess.run([sys.executable, script, *args, "--out", out], check=True)


def all_mode(script, fixtures):
    """True (after making every fixture) when the command line is --all DIR."""
    if len(sys.argv) == 3 and sys.argv[1] == "--all":
        make_all(script, fixtures, sys.argv[2])
        return True
    return False


def run_mixer(w, rng, shape, forward):
    """One fixture's tensors: x and dy drawn from rng (float32, in that
    order, after the weights), forward(x, p) run in float64 on the weights w
    (name -> float32 array) and differentiated against dy. Returns the
    tensors (x, dy, param.NAME, y, grad.x, grad.NAME) and y."""
    x32 = rng.standard_normal(shape).astype(np.float32)
    dy32 = rng.standard_normal(shape).astype(np.float32)
    p = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in w.items()}
    x = torch.tensor(x32, dtype=torch.float64, requires_grad=True)
    y = forward(x, p)
    y.backward(torch.tensor(dy32, dtype=torch.float64))
    tensors = {"x": x32, "dy": dy32}
    tensors.update({"param." + n: a for n, a in w.items()})
    tensors["y"] = y.detach().numpy().astype(np.float32)
    tensors["grad.x"] = x.grad.numpy().astype(np.float32)
    tensors.update({"grad." + n: t.grad.numpy().astype(np.float32) for n, t in p.items()})
    return tensors, y


def parser(doc):
    """An oracle's command line: --out FIXTURE and --seed N; it adds its own settings."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    return ap


def start(ap):
    """Parses the command line; one torch thread (the same sums every run) and the
    fixture's generator, seeded. Returns (args, rng)."""
    args = ap.parse_args()
    torch.set_num_threads(1)
    return args, np.random.default_rng(args.seed)
