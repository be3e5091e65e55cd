"""What the mixer oracles (tools/oracle_*.py) share: one float64 run of a
mixer into a fixture's tensors, the `--all DIR` mode, and (used by the
lstm and aaren oracles) the common command line and the fixture's file.

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

import safetensors_io


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
    """The command line a mixer oracle takes (--out FIXTURE, --weights FILE,
    --seed N); the oracle adds its own settings."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--seed", type=int, default=1)
    return ap


def start(args, shapes, draw):
    """torch on one thread, the rng of --seed, and the weights: those named
    in --weights (shapes: name -> shape, or None to take them from a draw),
    else draw(rng). Returns (rng, weights)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    if args.weights and shapes is None:
        shapes = {n: a.shape for n, a in draw(np.random.default_rng(0)).items()}
    w = safetensors_io.read_named(args.weights, shapes) if args.weights else draw(rng)
    return rng, w


def write(path, tensors, mixer, shape, tol, seed, settings):
    """A fixture's file: the tensors and the metadata the C test reads (the
    mixer, B, T, tol, seed, and settings: name -> value)."""
    meta = {"mixer": mixer, "B": str(shape[0]), "T": str(shape[1]), "tol": str(tol),
            "seed": str(seed)}
    meta.update({k: str(v) for k, v in settings.items()})
    safetensors_io.write(path, tensors, meta)
