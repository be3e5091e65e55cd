#!/usr/bin/env python3
"""Makes the small real sweeps behind docs/report.png, laid out as `seqlab
sweep` lays out its directories (docs/report.md): OUT/mqar and
OUT/timeseries, each with sweep.json, summary.csv, best.csv (when the spec
has best_over) and runs/NAME/ (a `seqlab train` out_dir plus result.json,
whose "test" object is `seqlab eval --split test`'s JSON line). Then runs
`seqlab report OUT --bench results/bench_mixers.jsonl` and, with --png,
screenshots the page in headless Chromium.

    tools/report_example.py build/seqlab /tmp/report-example --png docs/report.png

Tiny runs on one thread each (2.5 minutes of training on the 2-core machine):
their accuracies say nothing about the mixers, only that the page shows
them. A run whose result.json exists is kept (remove OUT to start over).
The screenshot is quantized with pngquant when it is installed. Standard
library only."""
import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
import time

MQAR = {
    "base": "configs/mqar.json",
    "grid": {
        "mixer": ["attention", "linear_attention", "hgrn"],
        "d_model": [16, 32, 64],
        "lr": [0.003, 0.01],
        "cell": [{"seq_len": 16, "mqar.num_kv_pairs": 2},
                 {"seq_len": 32, "mqar.num_kv_pairs": 4}],
    },
    "set": {"max_seq_len": 32, "n_heads": 1, "mqar.vocab": 32, "mqar.val_examples": 500,
            "mqar.test_examples": 500, "batch_size": 32, "steps": 600, "eval_every": 150,
            "eval_batches": 4, "log_every": 15, "threads": 1},
    "target": {"metric": "val_accuracy", "value": 0.99},
    "best_over": ["lr"],
    "eval_split": "test",
}

TIMESERIES = {
    "base": "configs/timeseries_nottem.json",
    "grid": {"mixer": ["attention", "hgrn"]},
    "set": {"steps": 300, "eval_every": 50, "log_every": 10, "threads": 1},
    "target": None,
    "best_over": [],
    "eval_split": "test",
}

SHORT = {"d_model": "d", "lr": "lr", "seq_len": "T", "mqar.num_kv_pairs": "kv"}


def points(grid):
    """Every combination of the grid, object axes expanded into their keys."""
    axes = list(grid)
    for combo in itertools.product(*(grid[a] for a in axes)):
        params = {}
        for a, v in zip(axes, combo):
            params.update(v if isinstance(v, dict) else {a: v})
        yield params


def name_of(params):
    parts = []
    for k, v in params.items():
        parts.append(str(v) if k == "mixer" else f"{SHORT.get(k, k)}{v}")
    return "-".join(parts)


def last_val(metrics):
    val = {}
    with open(metrics) as f:
        for line in f:
            j = json.loads(line)
            if j.get("split") == "val":
                val = j
    return {k: v for k, v in val.items() if k not in ("step", "split")}


def run(seqlab, spec, out):
    runs = os.path.join(out, "runs")
    os.makedirs(runs, exist_ok=True)
    rows = []
    for params in points(spec["grid"]):
        name = name_of(params)
        rdir = os.path.join(runs, name)
        done = os.path.join(rdir, "result.json")
        if os.path.exists(done):  # resumable: a finished run is kept
            with open(done) as f:
                rows.append(json.load(f))
            continue
        flags = [f"--{k}={v}" for k, v in {**spec["set"], **params}.items()]
        t0 = time.time()
        tr = subprocess.run([seqlab, "train", spec["base"], *flags, f"--out_dir={rdir}",
                             "--overwrite"], capture_output=True, text=True)
        wall = time.time() - t0
        ok = tr.returncode == 0
        test = {}
        if ok:
            ev = subprocess.run([seqlab, "eval", os.path.join(rdir, "checkpoint.safetensors"),
                                 "--split", "test"], capture_output=True, text=True)
            ok = ev.returncode == 0
            test = json.loads(ev.stdout) if ok else {}
        val = last_val(os.path.join(rdir, "metrics.jsonl")) if ok else {}
        result = {"name": name, "params": params, "status": "done" if ok else "failed",
                  "steps": spec["set"]["steps"], "wall_s": round(wall, 2),
                  "stopped_early": False, "val": val, "test": test}
        with open(os.path.join(rdir, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
        print(f"{name}: {result['status']}, {wall:.1f} s", file=sys.stderr)
        rows.append(result)
    keys = list(rows[0]["params"])
    scal = lambda d: [k for k, v in d.items() if isinstance(v, (int, float))]
    vkeys = [k for k in scal(rows[0]["val"])]
    tkeys = [k for k in scal(rows[0]["test"])]
    header = ["name", *keys, "status", "steps", "wall_s", "stopped_early",
              *(f"val_{k}" for k in vkeys), *(f"test_{k}" for k in tkeys)]

    def row(r):
        return [r["name"], *(r["params"][k] for k in keys), r["status"], r["steps"], r["wall_s"],
                str(r["stopped_early"]).lower(), *(r["val"].get(k, "") for k in vkeys),
                *(r["test"].get(k, "") for k in tkeys)]

    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(row(r) for r in rows)
    if spec["best_over"]:
        over = set()
        for a in spec["best_over"]:
            vals = spec["grid"][a]
            over |= set(vals[0]) if isinstance(vals[0], dict) else {a}
        groups = {}
        for r in rows:
            key = tuple((k, v) for k, v in r["params"].items() if k not in over)
            groups.setdefault(key, []).append(r)
        metric = spec["target"]["metric"].removeprefix("val_")
        with open(os.path.join(out, "best.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*header, "best_of"])
            for g in groups.values():
                best = max(g, key=lambda r: r["val"].get(metric, float("-inf")))
                w.writerow([*row(best), len(g)])
    with open(os.path.join(out, "sweep.json"), "w") as f:
        json.dump({"out_dir": out, **spec}, f, indent=1)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    seqlab, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    png = sys.argv[sys.argv.index("--png") + 1] if "--png" in sys.argv else None
    run(seqlab, MQAR, os.path.join(out, "mqar"))
    run(seqlab, TIMESERIES, os.path.join(out, "timeseries"))
    html = os.path.join(out, "report.html")
    subprocess.run([seqlab, "report", out, "--bench", "results/bench_mixers.jsonl", "-o", html],
                   check=True)
    if png:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-background-networking", "--hide-scrollbars",
                        "--window-size=1400,3900", f"--screenshot={os.path.abspath(png)}",
                        "file://" + os.path.abspath(html)], check=True,
                       stderr=subprocess.DEVNULL)
        if shutil.which("pngquant"):
            subprocess.run(["pngquant", "--force", "--skip-if-larger", "--output", png, "64", png],
                           check=False)


if __name__ == "__main__":
    main()
