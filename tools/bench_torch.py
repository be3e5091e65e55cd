#!/usr/bin/python3
"""PyTorch CPU baseline for `seqlab bench`: one nanoGPT-shaped training step.

Shape: the nanoGPT Shakespeare-char model (L=6, D=384, H=6, T=256, V=65,
B=16, learned positions, layernorm without bias, GELU tanh, tied head, fp32,
dropout 0). A step is forward + loss + backward + clip(1.0) + AdamW, using
the oracle's model (tools/oracle.py), so the C engine is timed against the
same computation it is checked against.

FLOPs per step = 6 * n_params * B*T + 12 * L * B * T^2 * D  (attention: QK^T and PV, 2*T^2*D each
per sequence and layer forward, times 3 for forward + backward, no causal discount)
(n_params: every parameter, the tied head once). The last line printed is
one JSON object for the C bench to parse.

--gemm-floor times only the matrix products of one step (forward x W^T,
backward dX and dW of every linear layer and of the head, the batched
attention products) through the same BLAS: no step can be faster than that.

Thread knobs must be in the environment before torch (and with it OpenMP
and OpenBLAS) is loaded, so this script sets them and only then imports torch.
"""
import argparse
import json
import os
import statistics
import sys
import time

SHAPE = {"n_layers": 6, "d_model": 384, "n_heads": 6, "seq_len": 256, "vocab_size": 65,
         "batch_size": 16}
WARMUP = 2


def parse_args(argv):
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    ap.add_argument("--steps", type=int, default=10, help=f"timed steps after {WARMUP} warmup steps")
    ap.add_argument("--gemm-floor", action="store_true", help="time only the GEMMs of one step")
    return ap.parse_args(argv)


def set_thread_env(threads):
    """One thread count for OpenMP and OpenBLAS, passive waiting so idle pools do not spin.

    OMP_WAIT_POLICY is only defaulted, so a caller can measure ACTIVE too.
    """
    if "torch" in sys.modules:
        raise RuntimeError("thread environment must be set before torch is imported")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def blas_library():
    """Path of the BLAS the process actually mapped (OpenMP or pthread OpenBLAS build)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    return ",".join(sorted(p for p in paths if "openblas" in os.path.basename(p)) or sorted(paths))


def model_config():
    """The oracle config for the benchmark shape."""
    s = SHAPE
    return {"vocab_size": s["vocab_size"], "d_model": s["d_model"], "n_layers": s["n_layers"],
            "n_heads": s["n_heads"], "d_ff": 0, "max_seq_len": s["seq_len"], "mixer": "attention",
            "pos": "learned", "rope_theta": 10000.0, "norm": "layernorm", "norm_eps": 1e-5,
            "mlp": "gelu", "bias": False, "tie_embeddings": True, "causal": True, "window": 0,
            "dropout": 0.0, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "steps": 5000,
            "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99, "adam_eps": 1e-8, "grad_clip": 1.0,
            "batch_size": s["batch_size"], "seq_len": s["seq_len"], "seed": 1337}


def time_calls(fn, steps):
    """Wall times of fn() in ms over `steps` calls, after WARMUP untimed calls.

    Callers report the median, and the minimum too, since on a shared machine
    the fastest step is the one least disturbed by other processes.
    """
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def train_step_fn(torch, oracle, cfg):
    """A closure running one full training step; returns it and the parameter count."""
    params = {n: p.requires_grad_(True) for n, p in oracle.init_params(cfg).items()}
    opt = oracle.make_optimizer(params, cfg)
    gen = torch.Generator().manual_seed(cfg["seed"])
    shape = (cfg["batch_size"], cfg["seq_len"])
    tokens = torch.randint(0, cfg["vocab_size"], shape, generator=gen)
    targets = torch.randint(0, cfg["vocab_size"], shape, generator=gen)

    def step():
        """forward + loss + backward + clip + AdamW, as one training iteration."""
        opt.zero_grad(set_to_none=True)
        loss = oracle.loss_of(oracle.forward(params, cfg, tokens), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg["grad_clip"])
        opt.step()

    return step, sum(p.numel() for p in params.values())


def linear_gemms(torch, m, n_out, n_in):
    """The 3 products of a linear layer y = x W^T: forward, dX = dY W, dW = dY^T x."""
    x, w, dy = torch.randn(m, n_in), torch.randn(n_out, n_in), torch.randn(m, n_out)
    return [(x, w.t(), torch.empty(m, n_out)), (dy, w, torch.empty(m, n_in)),
            (dy.t(), x, torch.empty(n_out, n_in))]


def attention_gemms(torch, bh, t_len, dh):
    """The 6 batched products of attention: S = Q K^T, O = P V; dP, dV, dQ, dK."""
    q, k, v, do = (torch.randn(bh, t_len, dh) for _ in range(4))
    p, ds = torch.randn(bh, t_len, t_len), torch.randn(bh, t_len, t_len)
    sq, vec = (bh, t_len, t_len), (bh, t_len, dh)
    return [(q, k.transpose(1, 2), torch.empty(sq)), (p, v, torch.empty(vec)),
            (do, v.transpose(1, 2), torch.empty(sq)), (p.transpose(1, 2), do, torch.empty(vec)),
            (ds, k, torch.empty(vec)), (ds.transpose(1, 2), q, torch.empty(vec))]


def step_gemms(torch, cfg):
    """Operands of every GEMM one training step performs, with the step's shapes."""
    m, d, t_len = cfg["batch_size"] * cfg["seq_len"], cfg["d_model"], cfg["seq_len"]
    per_layer = (linear_gemms(torch, m, 3 * d, d) + linear_gemms(torch, m, d, d)
                 + linear_gemms(torch, m, 4 * d, d) + linear_gemms(torch, m, d, 4 * d)
                 + attention_gemms(torch, cfg["batch_size"] * cfg["n_heads"], t_len, d // cfg["n_heads"]))
    return per_layer * cfg["n_layers"] + linear_gemms(torch, m, cfg["vocab_size"], d)


def gemm_floor_fn(torch, cfg):
    """A closure running every GEMM of a step into preallocated outputs; and their FLOPs."""
    gemms = step_gemms(torch, cfg)
    flops = sum(2 * a.numel() * b.shape[-1] for a, b, _ in gemms)  # 2 * [batch] * M * K * N

    def run():
        """The GEMMs only, in step order."""
        for a, b, out in gemms:
            (torch.bmm if a.dim() == 3 else torch.mm)(a, b, out=out)

    return run, flops


def step_flops(cfg, n_params):
    """The benchmark's FLOP convention: 6 N tokens + 6 L B T^2 D (no causal discount)."""
    tokens = cfg["batch_size"] * cfg["seq_len"]
    return 6 * n_params * tokens + 12 * cfg["n_layers"] * tokens * cfg["seq_len"] * cfg["d_model"]


def main(argv=None):
    """Set the thread environment, import torch, run the chosen measurement."""
    args = parse_args(argv)
    set_thread_env(args.threads)
    import torch  # noqa: E402  (after set_thread_env, on purpose)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import oracle  # noqa: E402
    torch.set_num_threads(args.threads)
    cfg = oracle.parse_config(model_config(), "bench")
    tokens = cfg["batch_size"] * cfg["seq_len"]
    result = {"bench": "torch", "torch_version": torch.__version__, "threads": args.threads,
              "blas": blas_library(), "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
              "loadavg_1m": os.getloadavg()[0], "steps": args.steps, **SHAPE}
    if args.gemm_floor:
        run, flops = gemm_floor_fn(torch, cfg)
        times = time_calls(run, args.steps)
        ms = statistics.median(times)
        result.update(mode="gemm_floor", floor_ms=round(ms, 3), min_ms=round(min(times), 3),
                      gemm_gflop=round(flops / 1e9, 3), gemm_gflops_per_s=round(flops / ms / 1e6, 2))
        print(f"GEMM floor: {ms:.1f} ms/step median, {min(times):.1f} min "
              f"({flops / 1e9:.1f} GFLOP, {flops / ms / 1e6:.1f} GFLOP/s) at {args.threads} threads")
    else:
        step, n_params = train_step_fn(torch, oracle, cfg)
        times = time_calls(step, args.steps)
        ms = statistics.median(times)
        flops = step_flops(cfg, n_params)
        result.update(mode="train_step", ms_per_step=round(ms, 3), min_ms=round(min(times), 3),
                      tokens_per_s=round(tokens / ms * 1e3, 1),
                      gflops=round(flops / ms / 1e6, 2), n_params=n_params, flops_per_step=flops,
                      step_ms=[round(t, 1) for t in times])
        print(f"train step: {ms:.1f} ms median, {min(times):.1f} min, {tokens / ms * 1e3:.0f} tokens/s, "
              f"{flops / ms / 1e6:.1f} GFLOP/s, {n_params} params, at {args.threads} threads")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
