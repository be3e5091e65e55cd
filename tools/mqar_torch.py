#!/usr/bin/python3
"""One MQAR cell trained both ways: seqlab and the same model in PyTorch.

The PyTorch model is tools/oracle.py's (the spec's decoder, written apart
from the C code) in float32; the data are docs/tasks.md's MQAR generator as
tools/check_tasks_doc.py implements it: fresh training examples every step,
and the validation set's first --val-examples examples, the same ones
seqlab's evaluation walks. Both runs take their model, optimizer and
schedule from one config (configs/mqar.json by default), on the same
thread count, and log validation accuracy against wall time, so the result
answers two questions:

- do the two learn alike (same curve per step, up to the draw of the
  training examples and the initial weights)?
- how long does each take to reach --target accuracy (issue 11's speed
  claim: seqlab at least 2x faster)?

PyTorch's time counts its training steps and evaluations only: the Python
generator is slow, so each step's batch is drawn before its clock starts.
seqlab's time is its own elapsed_s (metrics.jsonl), data included.

  /usr/bin/python3 tools/mqar_torch.py [--config configs/mqar.json]
      [--lr 1e-3] [--steps N] [--threads 2] [--init seqlab|torch]
      [--target 0.99] [--seqlab build/seqlab] [--out results/mqar_cell.jsonl]
      [--set seq_len=128 --set max_seq_len=128 --set mqar.num_kv_pairs=8]

--init torch draws PyTorch's module defaults instead of seqlab's N(0, 0.02):
nn.Embedding's N(0, 1) for the embedding and learned positions,
nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
--set mixer=NAME (any mixer but attention) builds the PyTorch model from
tools/bench_mixers_torch.py's layer of that mixer (the same layer, written
apart from the C code, that its benchmark and --check use) inside the
oracle's blocks; --init torch is refused there. Without --seqlab only
PyTorch runs. Each evaluation prints (and appends to
--out) one JSON line: {"impl", "step", "examples", "seconds", "val_acc"}.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_mixers_torch as bmt  # noqa: E402
import check_tasks_doc as doc  # noqa: E402
import oracle  # noqa: E402

bmt.torch, bmt.F = torch, F

# seqlab's defaults for the config keys oracle.parse_config needs and
# configs/mqar.json leaves out (docs/formats.md).
DEFAULTS = {"vocab_size": 8192, "d_ff": 0, "rope_theta": 10000.0, "norm_eps": 1e-5,
            "bias": False, "causal": True, "window": 0, "dropout": 0.0, "beta1": 0.9,
            "beta2": 0.95, "adam_eps": 1e-8, "seq_len": 64}


def parse_value(v):
    """A --set value as seqlab reads it: a number when it is one, else a string."""
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v, v)


def load_config(path, lr, steps, sets=()):
    with open(path) as f:
        raw = json.load(f)
    opts = dict(raw.get("task_options", {}).get("mqar", {}))
    for key, value in sets:
        if key.startswith("mqar."):
            opts[key[5:]] = parse_value(value)
        else:
            raw[key] = parse_value(value)
    raw = {**DEFAULTS, **raw}
    if lr is not None:
        raw["lr"] = lr
    if steps is not None:
        raw["steps"] = steps
    mqar = {"V": int(opts.get("vocab", 8192)), "K": int(opts.get("num_kv_pairs", 8)),
            "a": float(opts.get("power_a", 0.01)), "zero": opts.get("filler") == "zero"}
    raw["vocab_size"] = mqar["V"]
    # The oracle models attention only; another mixer replaces its mixer
    # parameters and call (mixer_params, trunk), the rest of the block stays.
    cfg = oracle.parse_config({**{k: v for k, v in raw.items()
                                  if k not in ("task", "task_options")},
                               "mixer": "attention"}, path)
    cfg["mixer"] = raw.get("mixer", "attention")
    cfg["conv_size"] = int(raw.get("conv_size", 4))
    cfg["chunk_size"] = int(raw.get("chunk_size", 64))
    return raw, cfg, mqar


def mixer_params(params, cfg):
    """Swap the attention parameters of every block for cfg's mixer's, drawn as
    bench_mixers_torch.make_params draws them (seqlab's init, out projections
    scaled by 1/sqrt(2 n_layers))."""
    if cfg["mixer"] == "attention":
        return params
    bmt.N_LAYERS = cfg["n_layers"]
    gen = torch.Generator().manual_seed(int(cfg["seed"]) + 1)
    out = {k: v for k, v in params.items() if ".mixer." not in k}
    for i in range(cfg["n_layers"]):
        made = bmt.make_params(cfg["mixer"], cfg["d_model"], cfg["n_heads"], cfg["conv_size"],
                               gen, torch.float32)
        out.update({f"blocks.{i}.mixer.{k}": v.detach() for k, v in made.items()})
    return out


def trunk(params, cfg, x):
    """oracle.trunk with cfg's mixer in every block."""
    if cfg["mixer"] == "attention":
        return oracle.trunk(params, cfg, x)
    if cfg["pos"] == "learned":
        x = x + params["pos.weight"][: x.shape[1]]
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}"
        p = {k[len(b) + 7:]: v for k, v in params.items() if k.startswith(f"{b}.mixer.")}
        h = oracle.norm(x, params, f"{b}.norm1", cfg)
        x = x + bmt.mixer_forward(cfg["mixer"], h, p, cfg["n_heads"], cfg["chunk_size"])
        if cfg["mlp"] != "none":
            x = x + oracle.mlp(oracle.norm(x, params, f"{b}.norm2", cfg), params, f"{b}.mlp", cfg)
    return oracle.norm(x, params, "norm", cfg)


def draw(seeds, T, mqar):
    """tokens, targets: int64 [len(seeds), T] of MQAR examples."""
    rows = [doc.mqar(s, T, mqar["V"], mqar["K"], mqar["a"], mqar["zero"]) for s in seeds]
    return (torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows]))


def val_seeds(n, task_seed=0):
    """Examples 0 .. n-1 of the validation split (docs/tasks.md, Splits)."""
    return [doc.mix(doc.mix(doc.mix(task_seed) ^ 1) ^ i) for i in range(n)]


def torch_init(cfg, seed):
    """PyTorch's module defaults for the same parameters."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in oracle.param_shapes(cfg):
        if name in ("embed.weight", "pos.weight"):
            params[name] = torch.randn(shape, generator=gen)
        elif len(shape) == 2 or name.endswith(".bias") and "norm" not in name:
            fan_in = shape[1] if len(shape) == 2 else cfg["d_model"]
            bound = 1 / math.sqrt(fan_in)
            params[name] = (torch.rand(shape, generator=gen) * 2 - 1) * bound
        else:
            params[name] = torch.zeros(shape) if name.endswith(".bias") else torch.ones(shape)
    return params


def labelled_logits(params, cfg, tokens, targets):
    """Logits [N, V] at the N labelled positions only, and their targets: as seqlab
    does, the head over the 8192-id vocabulary runs where a label is (one position
    in sixteen), not at every position."""
    h = trunk(params, cfg, oracle.read_in(params, cfg, tokens, None))
    keep = targets >= 0
    return oracle.head_of(params, cfg, h[keep]), targets[keep]


def accuracy(params, cfg, tokens, targets, batch):
    correct = counted = 0
    with torch.no_grad():
        for i in range(0, tokens.shape[0], batch):
            logits, tgt = labelled_logits(params, cfg, tokens[i:i + batch], targets[i:i + batch])
            correct += (logits.argmax(-1) == tgt).sum().item()
            counted += tgt.numel()
    return correct / max(counted, 1)


def run_torch(args, cfg, mqar, val, log):
    torch.manual_seed(args.seed)
    init = oracle.init_params(cfg) if args.init == "seqlab" else torch_init(cfg, args.seed)
    init = mixer_params(init, cfg)
    params = oracle.as_leaves(init, torch.float32)
    opt = oracle.make_optimizer(params, cfg)
    rng = doc.Rng(args.seed)
    B, T = cfg["batch_size"], cfg["seq_len"]
    clock = 0.0
    for step in range(cfg["steps"] + 1):
        if step % args.eval_every == 0 or step == cfg["steps"]:
            t0 = time.perf_counter()
            acc = accuracy(params, cfg, val[0], val[1], B)
            clock += time.perf_counter() - t0
            if log("torch", step, step * B, clock, acc):
                return
        if step == cfg["steps"]:
            return
        tokens, targets = draw([rng.u64() for _ in range(B)], T, mqar)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits, tgt = labelled_logits(params, cfg, tokens, targets)
        loss = F.cross_entropy(logits, tgt)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg["grad_clip"])
        for group in opt.param_groups:
            group["lr"] = oracle.lr_at(step, cfg)
        opt.step()
        clock += time.perf_counter() - t0


def run_seqlab(args, raw, cfg, log):
    """seqlab train on the same config; its validation lines become log lines."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [args.seqlab, "train", args.config, f"--out_dir={out}/run", f"--lr={cfg['lr']}",
               f"--steps={cfg['steps']}", f"--threads={args.threads}",
               f"--eval_every={args.eval_every}", f"--seed={args.seed}",
               f"--mqar.val_examples={args.val_examples}", "--eval_batches=0"]
        cmd += [f"--{key}={value}" for key, value in args.set]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = 0.0
        with open(f"{out}/run/metrics.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                elapsed = rec.get("elapsed_s", elapsed)
                if rec.get("split") == "val" and log("seqlab", rec["step"],
                                                     rec["step"] * cfg["batch_size"], elapsed,
                                                     rec["accuracy"]):
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/mqar.json")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", choices=("seqlab", "torch"), default="seqlab")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--val-examples", type=int, default=1000)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--seqlab", help="the seqlab binary; omitted: PyTorch only")
    ap.add_argument("--out", help="append the JSON lines here too")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for both runs, as seqlab train --KEY=VALUE takes "
                         "it (mqar.num_kv_pairs=8, seq_len=128); repeatable")
    args = ap.parse_args()
    args.set = [tuple(s.split("=", 1)) for s in args.set]
    if any(len(s) != 2 for s in args.set):
        ap.error("--set takes KEY=VALUE")
    torch.set_num_threads(args.threads)
    raw, cfg, mqar = load_config(args.config, args.lr, args.steps, args.set)
    if cfg["mixer"] != "attention" and args.init == "torch":
        ap.error("--init torch: PyTorch defaults are drawn for attention's parameters only")
    val = draw(val_seeds(args.val_examples), cfg["seq_len"], mqar)
    reached = {}

    def log(impl, step, examples, seconds, acc):
        rec = {"impl": impl, "init": args.init if impl == "torch" else "seqlab",
               "lr": cfg["lr"], "step": step, "examples": examples,
               "seconds": round(seconds, 2), "val_acc": round(acc, 4)}
        print(json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if acc >= args.target and impl not in reached:
            reached[impl] = seconds
        return impl in reached

    if args.seqlab:
        run_seqlab(args, raw, cfg, log)
    run_torch(args, cfg, mqar, val, log)
    summary = {k: reached.get(k) for k in ("seqlab", "torch")}
    if args.seqlab and summary["seqlab"] and summary["torch"]:
        summary["speedup"] = round(summary["torch"] / summary["seqlab"], 2)
    print(json.dumps({"target": args.target, "seconds_to_target": summary}), flush=True)


if __name__ == "__main__":
    main()
