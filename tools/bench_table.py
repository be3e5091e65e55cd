#!/usr/bin/env python3
"""Markdown table of tools/bench_sweep.sh's JSON lines, one row per mixer.

Per length: seqlab's forward + backward ms and, where PyTorch ran, the
speed-up (median over rounds of PyTorch's time / ours); peak activation MB
at the longest length; the exponent k of time ~ T^k fitted by least squares
on log time against log T over every length from --fit-from (65536: past
the chunked recompute's threshold, so every point does the same kind of
work, and past fixed costs); and the longest T whose peak, at the per-token
memory of the longest measured length, fits in MEMORY_GIB (an estimate:
past the chunk size, the chunked recompute's memory grows linearly).
  tools/bench_table.py results/bench_mixers.jsonl [--threads 2] [--memory-gib 24]
      [--fit-from 65536]
"""
import argparse
import json
import math


def fit_exponent(points):
    """Least-squares slope of log ms against log T; None with fewer than 2 points."""
    if len(points) < 2:
        return None
    xs = [math.log(t) for t, _ in points]
    ys = [math.log(ms) for _, ms in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def seq_label(t):
    """1024 -> 1k, 1048576 -> 1M."""
    return f"{t >> 20}M" if t >= 1 << 20 else f"{t >> 10}k"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-gib", type=float, default=24.0)
    ap.add_argument("--fit-from", type=int, default=65536)
    args = ap.parse_args()
    rows = {}
    for line in open(args.results):
        r = json.loads(line)
        if r["threads"] == args.threads:
            rows.setdefault(r["mixer"], {})[r["seq"]] = r
    seqs = sorted({t for m in rows.values() for t in m})
    head = ["mixer"] + [seq_label(t) for t in seqs] + [
        "peak at longest", f"T^k (>= {seq_label(args.fit_from)})", "longest T in memory (est.)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for mixer, pts in rows.items():
        cells = [mixer]
        for t in seqs:
            r = pts.get(t)
            if not r:
                cells.append("")
                continue
            c = f"{r['ms']:.0f}" if r["ms"] >= 100 else f"{r['ms']:.1f}"
            if r.get("torch_ms", 0) > 0:
                c += f" ({r['speedup']:.1f}x)"
            cells.append(c)
        longest = max(pts)
        per_token = pts[longest]["peak_mb"] * (1 << 20) / longest
        cells.append(f"{pts[longest]['peak_mb']:.0f} MB ({per_token / 1024:.1f} KB/token)")
        k = fit_exponent([(t, r["ms"]) for t, r in sorted(pts.items()) if t >= args.fit_from])
        cells.append(f"{k:.2f}" if k is not None else "")
        cap = args.memory_gib * (1 << 30) / per_token
        cells.append(f"~{cap / (1 << 20):.1f}M" if cap >= 1 << 20 else f"~{cap / 1024:.0f}k")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
